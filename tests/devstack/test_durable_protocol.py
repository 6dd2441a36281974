"""Pure pieces of the local Durable runner: timestamps, actions, state, compaction, routes, NCRONTAB."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from devstack.durable import protocol as p
from devstack.durable.functions import compile_route
from devstack.durable.runner import parse_schedule as parse_cron
from tests.devstack.durable_apps import basics
from tests.fixtures.durable import VIRTUAL_EPOCH


def test_timestamps_round_trip_with_seven_digit_fractions():
    text = p.format_ts(VIRTUAL_EPOCH + 1.25)
    assert text == "2030-01-01T00:00:01.2500000Z"
    assert p.parse_ts(text) == VIRTUAL_EPOCH + 1.25
    assert p.parse_ts("2030-01-01T00:00:01.250000Z") == VIRTUAL_EPOCH + 1.25
    assert p.parse_ts("2030-01-01T00:00:01") == VIRTUAL_EPOCH + 1
    assert p.format_status_time(VIRTUAL_EPOCH + 59.9) == "2030-01-01T00:00:59Z"


def test_flatten_walks_compound_actions_depth_first():
    actions = [
        [
            {"actionType": 0, "functionName": "a"},
            {
                "actionType": 12,
                "compoundActions": [
                    {"actionType": 0, "functionName": "b"},
                    {
                        "actionType": 11,
                        "compoundActions": [
                            {"actionType": 6, "externalEventName": "e"},
                            {"actionType": 5, "fireAt": "x"},
                        ],
                    },
                ],
            },
            {"actionType": 4, "input": "1"},
        ]
    ]
    flat = p.flatten_actions(actions)
    assert [a["actionType"] for a in flat] == [0, 0, 6, 5, 4]
    assert [p.action_signature(a) for a in flat[:3]] == ["0:a", "0:b", "6:e"]


def test_parse_state_splits_the_out_of_proc_failure():
    state = {
        "isDone": False,
        "actions": [[{"actionType": 0, "functionName": "a", "input": "1"}]],
        "error": "boom",
        "schemaVersion": 2,
    }
    raised = Exception(f"boom{p.OUT_OF_PROC_MARKER}{json.dumps(state)}")
    result = p.parse_state(None, raised)
    assert result.error == "boom" and not result.done and len(result.actions) == 1
    done = {"isDone": True, "actions": [[]], "output": 3, "customStatus": {"s": 1}}
    ok = p.parse_state(json.dumps(done), None)
    assert ok.done and ok.output == 3 and ok.has_custom_status and ok.error is None
    quiet = p.parse_state(json.dumps({"isDone": False, "actions": [[]]}), None)
    assert not quiet.has_custom_status
    assert p.parse_state(None, RuntimeError("no marker")).error == "no marker"


def test_compact_history_merges_scheduled_into_completed():
    t = VIRTUAL_EPOCH
    events = [
        p.event(p.ORCHESTRATOR_STARTED, t),
        p.execution_started(t, "orch", "i", "e", '"in"'),
        p.event(p.TASK_SCHEDULED, t, 0, Name="act", Version="", Input="1"),
        p.event(p.TIMER_CREATED, t, 1, FireAt="2030-01-01T01:00:00.0000000Z"),
        p.event(p.ORCHESTRATOR_COMPLETED, t),
        p.event(p.ORCHESTRATOR_STARTED, t + 5),
        p.event(p.TASK_COMPLETED, t + 5, TaskScheduledId=0, Result='{"v": 2}'),
        p.event(p.EVENT_RAISED, t + 5, Name="go", Input="7"),
        p.event(p.TASK_SCHEDULED, t + 5, 2, Name="pending", Version="", Input="null"),
        p.event(p.EXECUTION_COMPLETED, t + 5, OrchestrationStatus="Completed", Result="3"),
        p.event(p.ORCHESTRATOR_COMPLETED, t + 5),
    ]
    compact = p.compact_history(events, show_output=True)
    assert [e["EventType"] for e in compact] == [
        "ExecutionStarted",
        "TimerCreated",
        "TaskCompleted",
        "EventRaised",
        "TaskScheduled",
        "ExecutionCompleted",
    ]
    started, _, completed, raised, pending, done = compact
    assert started["FunctionName"] == "orch"
    assert "Input" not in started and "OrchestrationInstance" not in started
    assert completed["FunctionName"] == "act" and completed["Result"] == {"v": 2}
    assert completed["ScheduledTime"] == p.format_ts(t) and "TaskScheduledId" not in completed
    assert "Input" not in raised and "Input" not in pending and pending["Name"] == "pending"
    assert done["Result"] == 3
    assert all("EventId" not in e and "IsPlayed" not in e for e in compact)
    hidden = p.compact_history(events, show_output=False)
    assert all("Result" not in e for e in hidden)


def test_route_templates():
    route = compile_route("backups/{cluster}/{filer}")
    assert route.fullmatch("backups/c1/f1").groupdict() == {"cluster": "c1", "filer": "f1"}
    assert route.fullmatch("BACKUPS/c1/f1") is not None  # ASP.NET routing ignores case
    assert route.fullmatch("backups/c1") is None
    optional = compile_route("items/{id:int?}")
    assert optional.fullmatch("items") and optional.fullmatch("items/12")
    assert not optional.fullmatch("items/x")
    rest = compile_route("files/{*path}")
    assert rest.fullmatch("files/a/b/c").group("path") == "a/b/c"


def test_ncrontab_next_fire_times():
    start = dt.datetime(2030, 1, 1, 0, 1, 30, tzinfo=dt.UTC).timestamp()
    every5 = parse_cron("0 */5 * * * *")
    assert every5.next_after(start) == dt.datetime(2030, 1, 1, 0, 5, tzinfo=dt.UTC).timestamp()
    weekdays = parse_cron("0 30 9 * * 1-5")  # 2030-01-05 is a Saturday
    saturday = dt.datetime(2030, 1, 5, 12, tzinfo=dt.UTC).timestamp()
    assert weekdays.next_after(saturday) == dt.datetime(2030, 1, 7, 9, 30, tzinfo=dt.UTC).timestamp()
    named = parse_cron("15 0 2 1 jan,jul sun")
    assert named.fields[4] == frozenset({1, 7}) and named.fields[5] == frozenset({0})
    for bad in ("* * * * *", "61 * * * * *", "0 */0 * * * *", "x * * * * *"):
        with pytest.raises(ValueError):
            parse_cron(bad)


def test_scheduled_timer_fires_on_the_virtual_clock(durable_runner):
    basics.reset()
    runner = durable_runner(basics, schedule_timers=True)
    runner.run_until(lambda: runner.status("ticker-singleton") is not None, timeout=30)
    assert runner.clock.now() == VIRTUAL_EPOCH + 300  # the next `0 */5 * * * *` after the epoch


def test_runner_logs_carry_no_payloads(durable_runner, caplog):
    caplog.set_level(logging.DEBUG)
    runner = durable_runner(basics)
    secret = "pa55-phrase-never-logged"
    runner.wait_for(runner.start_new("sequence", client_input=secret))
    runner.wait_for(runner.start_new("catches_activity_failure"))
    assert "sequence" in caplog.text  # the runner does log, by id and name
    assert secret not in caplog.text and secret.upper() not in caplog.text
