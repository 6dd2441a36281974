"""Timers on the virtual clock, approval vs timeout, external events, determinism, custom status."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from devstack.durable import protocol as p
from tests.devstack.durable_apps import flow, timers_events
from tests.fixtures.durable import VIRTUAL_EPOCH, http_call


@pytest.fixture
def runner(durable_runner):
    return durable_runner(timers_events)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def test_two_day_timer_finishes_on_the_virtual_clock(runner):
    # Two days of timer inside the polling deadline: only the virtual clock moved that far (no wall-clock bound).
    status = runner.wait_for(runner.start_new("long_timer"), timeout=60)
    assert status["output"] == {"fire_at": _iso(VIRTUAL_EPOCH + 2 * 86400), "woke_at": _iso(VIRTUAL_EPOCH + 2 * 86400)}
    assert runner.clock.now() == VIRTUAL_EPOCH + 2 * 86400
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TimerCreated", "TimerFired", "ExecutionCompleted"]


def test_idle_runner_does_not_move_the_clock_by_itself(runner):
    iid = runner.start_new("long_timer")
    runner.run_until_idle()
    assert runner.clock.now() == VIRTUAL_EPOCH
    assert runner.status(iid)["runtimeStatus"] == "Running"
    assert runner.next_timer() == VIRTUAL_EPOCH + 2 * 86400
    runner.advance(86400)  # half way: still waiting
    assert runner.status(iid)["runtimeStatus"] == "Running"
    runner.advance(86400)
    assert runner.status(iid)["runtimeStatus"] == "Completed"


def test_approval_before_timeout_cancels_the_timer(runner):
    iid = runner.start_new("approval", client_input=4)
    runner.run_until_idle()
    assert runner.status(iid)["customStatus"] == {"waiting_for": "approve"}
    # Raised through the public webhook with a raw JSON body: the orchestrator receives the object.
    url = runner.management_urls(iid)["sendEventPostUri"].replace("{eventName}", "approve")
    assert http_call("POST", url, {"by": "ops"}).status == 202
    status = runner.wait_for(iid)
    assert status["output"] == {"approved": {"by": "ops"}}
    assert runner.clock.now() == VIRTUAL_EPOCH  # the cancelled 4-hour timer never had to fire
    assert runner.next_timer() is None
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TimerCreated", "EventRaised", "ExecutionCompleted"]


def test_approval_times_out(runner):
    status = runner.wait_for(runner.start_new("approval", client_input=2))
    assert status["output"] == {"approved": None, "timed_out_at": _iso(VIRTUAL_EPOCH + 2 * 3600)}


def test_event_raised_through_the_client_arrives_double_encoded(runner):
    client = runner.client()
    iid = runner.start_new("approval")
    runner.run_until_idle()
    runner.call(client.raise_event(iid, "approve", {"by": "client"}))
    assert runner.wait_for(iid)["output"] == {"approved": '{"by": "client"}'}  # the host quirk (#295)


def test_uncancelled_timer_keeps_the_instance_running_until_it_fires(runner):
    iid = runner.start_new("forgets_cancel")
    runner.run_until_idle()
    runner.raise_event(iid, "approve", True)
    runner.run_until_idle()
    status = runner.status(iid)
    assert status["runtimeStatus"] == "Running" and status["output"] is None
    final = runner.wait_for(iid)
    assert final["output"] == "approved"
    assert runner.clock.now() == VIRTUAL_EPOCH + 3 * 3600


def test_events_before_and_after_the_wait(runner):
    iid = runner.start_new("two_events")
    runner.raise_event(iid, "second", "two")  # raised before the instance even started: buffered
    runner.run_until_idle()
    assert runner.status(iid)["runtimeStatus"] == "Running"
    runner.raise_event(iid, "first", "one")
    assert runner.wait_for(iid)["output"] == ["one", "two"]


def test_task_all_fails_fast_but_completion_waits_for_open_tasks(runner):
    iid = runner.start_new("fail_fast")
    runner.run_until_idle()
    assert runner.status(iid)["runtimeStatus"] == "Running"
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'fail_fast' failed: Activity function 'refuse' failed: PermissionError: refused x"
    )
    assert runner.clock.now() == VIRTUAL_EPOCH + 3600


def test_new_uuid_and_time_are_deterministic_across_replays(runner):
    iid = runner.start_new("determinism", "det-1")
    runner.run_until_idle()
    first_uuid = runner.status(iid)["customStatus"]["first_uuid"]
    out = runner.wait_for(iid)["output"]
    assert out["uuids"][0] == first_uuid  # regenerated in three later replays, always the same
    started = [e["Timestamp"] for e in runner.store.history(iid) if e["EventType"] == p.ORCHESTRATOR_STARTED]
    namespace = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
    first_time = dt.datetime.fromtimestamp(p.parse_ts(started[0]), dt.UTC)
    assert first_uuid == str(uuid.uuid5(namespace, f"det-1_{first_time:%Y-%m-%dT%H:%M:%S.%fZ}_0"))
    assert out["times"] == [_iso(VIRTUAL_EPOCH), _iso(VIRTUAL_EPOCH), _iso(VIRTUAL_EPOCH + 600)]
    assert out["replaying"] == [True, True, False]
    assert len(set(out["uuids"])) == 3


def test_runner_serves_the_client_binding_urls(runner):
    binding = runner.client_binding()
    assert '"rpcBaseUrl": "' + runner.base_url + '/durabletask/"' in binding
    assert "INSTANCEID" in binding


# ---- flow app: sub-orchestrations, continue_as_new, custom status ---------------------------------


@pytest.fixture
def flow_runner(durable_runner):
    return durable_runner(flow)


def test_sub_orchestrations_named_unnamed_and_failing(flow_runner):
    runner = flow_runner
    iid = runner.start_new("parent", "fam")
    status = runner.wait_for(iid)
    out = status["output"]
    assert out["named"] == {"doubled": 2, "me": "fam-named", "parent": "fam"}
    assert out["unnamed"]["doubled"] == 4 and out["unnamed"]["parent"] == "fam"
    execution_id = runner.store.instance("fam")["execution_id"]
    assert out["unnamed"]["me"] == f"{execution_id}:1"  # the host's "{parentExecutionId}:{taskId}"
    assert out["caught"].startswith("Orchestrator function 'child_boom' failed: child exploded")
    assert runner.status("fam-boom")["runtimeStatus"] == "Failed"
    assert runner.status("fam-named")["runtimeStatus"] == "Completed"
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == [
        "ExecutionStarted",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceFailed",
        "ExecutionCompleted",
    ]
    assert [e["FunctionName"] for e in status["historyEvents"][1:4]] == ["child", "child", "child_boom"]


def test_continue_as_new_bounds_history_and_drops_unprocessed_events(flow_runner):
    runner = flow_runner
    iid = runner.start_new("eternal", client_input={"n": 0, "limit": 3})
    runner.run_until_idle()
    runner.raise_event(iid, "late", "too early")  # execution 0 never waits for it: continue_as_new drops it
    status = runner.wait_for(iid)
    assert status["output"] == {"rounds": 3, "late": "dropped by continue_as_new"}
    assert runner.clock.now() == VIRTUAL_EPOCH + 3 * 3600 + 300
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TimerCreated", "TimerFired", "ExecutionCompleted"]
    assert len(runner.store.history(iid)) <= 8


def test_continue_as_new_delivers_events_to_the_new_execution_and_keeps_custom_status(flow_runner):
    runner = flow_runner
    iid = runner.start_new("eternal", client_input={"n": 0, "limit": 1})
    runner.run_until(lambda: '"n": 1' in (runner.status(iid)["input"] or "") and runner.is_idle())
    assert runner.status(iid)["customStatus"] == {"round": 0}  # round 1 set none: the last one stays
    runner.raise_event(iid, "late", "on time")
    assert runner.wait_for(iid)["output"] == {"rounds": 1, "late": "on time"}


def test_custom_status_is_kept_when_a_later_episode_sets_none(flow_runner):
    runner = flow_runner
    iid = runner.start_new("status_steps")
    runner.run_until_idle()
    assert runner.status(iid)["customStatus"] == {"step": "two", "progress": [1, 2]}
    runner.raise_event(iid, "go", "went")
    status = runner.wait_for(iid)
    assert status["output"] == "went" and status["customStatus"] == {"step": "two", "progress": [1, 2]}


def test_custom_status_over_16_kb_fails_the_instance(flow_runner):
    status = flow_runner.wait_for(flow_runner.start_new("huge_status"))
    assert status["runtimeStatus"] == "Failed"
    assert "must not exceed 16 KB" in status["output"]
