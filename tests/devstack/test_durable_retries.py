"""Retries on the local runner in DTFx's RetryInterceptor shape: retry timers, the dummy timer, new ids."""

from __future__ import annotations

import pytest

from devstack.durable import protocol as p
from tests.devstack.durable_apps import retries


@pytest.fixture
def runner(durable_runner):
    retries.reset()
    return durable_runner(retries)


def _raw(runner, iid):
    """Stored history without the episode markers: (type, id-ish, extra)."""
    out = []
    for e in runner.store.history(iid):
        kind = e["EventType"]
        if kind in (p.ORCHESTRATOR_STARTED, p.ORCHESTRATOR_COMPLETED):
            continue
        ref = e.get("TaskScheduledId", e.get("TimerId", e["EventId"]))
        out.append((p.EVENT_NAMES[kind], ref))
    return out


def test_retry_succeeds_on_third_attempt_with_exact_history(runner):
    iid = runner.start_new("retry_ok")
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "plain(ok ok on attempt 3)"
    assert _raw(runner, iid) == [
        ("ExecutionStarted", -1),
        ("TaskScheduled", 0),
        ("TaskFailed", 0),
        ("TimerCreated", 1),
        ("TimerFired", 1),
        ("TaskScheduled", 2),
        ("TaskFailed", 2),
        ("TimerCreated", 3),
        ("TimerFired", 3),
        ("TaskScheduled", 4),
        ("TaskCompleted", 4),
        ("TaskScheduled", 5),
        ("TaskCompleted", 5),
        ("ExecutionCompleted", -1),
    ]
    events = runner.store.history(iid)
    failed_at = {e["TaskScheduledId"]: p.parse_ts(e["Timestamp"]) for e in events if e["EventType"] == p.TASK_FAILED}
    timers = {e["EventId"]: p.parse_ts(e["FireAt"]) for e in events if e["EventType"] == p.TIMER_CREATED}
    # Each retry waits firstRetryInterval (1 s) after the failure was processed.
    assert timers[1] - failed_at[0] == pytest.approx(1.0, abs=0.01)
    assert timers[3] - failed_at[2] == pytest.approx(1.0, abs=0.01)
    compact = [e["EventType"] for e in status["historyEvents"]]
    assert compact == [
        "ExecutionStarted",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "TaskCompleted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]


def test_retry_exhaustion_waits_for_the_dummy_timer_then_raises(runner):
    iid = runner.start_new("retry_exhausted")
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"].startswith("Activity function 'flaky' failed: ConnectionError: attempt 2 of never")
    assert retries.ATTEMPTS["never"] == 2
    assert _raw(runner, iid) == [
        ("ExecutionStarted", -1),
        ("TaskScheduled", 0),
        ("TaskFailed", 0),
        ("TimerCreated", 1),
        ("TimerFired", 1),
        ("TaskScheduled", 2),
        ("TaskFailed", 2),
        ("TimerCreated", 3),
        ("TimerFired", 3),
        ("ExecutionCompleted", -1),
    ]
    events = runner.store.history(iid)
    last_failure = next(e for e in events if e["EventType"] == p.TASK_FAILED and e["TaskScheduledId"] == 2)
    dummy = next(e for e in events if e["EventType"] == p.TIMER_CREATED and e["EventId"] == 3)
    first_timer = next(e for e in events if e["EventType"] == p.TIMER_CREATED and e["EventId"] == 1)
    first_failure = next(e for e in events if e["EventType"] == p.TASK_FAILED and e["TaskScheduledId"] == 0)
    assert p.parse_ts(first_timer["FireAt"]) - p.parse_ts(first_failure["Timestamp"]) == pytest.approx(2.0)
    # The final timer fires at once: the failure reaches the orchestrator only after it.
    assert p.parse_ts(dummy["FireAt"]) == pytest.approx(p.parse_ts(last_failure["Timestamp"]), abs=0.01)


def test_uncaught_retry_failure_fails_the_orchestration(runner):
    status = runner.wait_for(runner.start_new("retry_uncaught"))
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Orchestrator function 'retry_uncaught' failed: Activity function 'flaky' failed: "
        "ConnectionError: attempt 2 of boom failed"
    )


def test_retries_inside_a_fan_out_keep_ids_in_step_with_the_sdk(runner):
    iid = runner.start_new("retry_fan_out")
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == ["a ok on attempt 3", "plain(b)", "c ok on attempt 2", "plain(d)"]
    ids = [ref for kind, ref in _raw(runner, iid) if kind in ("TaskScheduled", "TimerCreated")]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # handed out once each, in order
    completions = [ref for kind, ref in _raw(runner, iid) if kind in ("TaskCompleted", "TaskFailed", "TimerFired")]
    assert len(completions) == len(set(completions))


def test_sub_orchestration_retry_reuses_the_fixed_child_id(runner):
    iid = runner.start_new("sub_retry", "parent-1")
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == {"value": "child ok on attempt 3", "me": "parent-1-kid"}
    kinds = [k for k, _ in _raw(runner, iid)]
    assert kinds.count("SubOrchestrationInstanceCreated") == 3
    assert kinds.count("SubOrchestrationInstanceFailed") == 2
    assert kinds.count("TimerFired") == 2
    assert runner.status("parent-1-kid")["runtimeStatus"] == "Completed"
