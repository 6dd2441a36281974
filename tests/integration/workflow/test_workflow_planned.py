"""Planned failover (`?mode=planned`): the backup runbook, then the fresh backup attached at the DR cluster instead
of the filer re-added at the primary. No write is lost; a failure before the DR cluster serves re-adds it at the
primary."""

from __future__ import annotations

import json

from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_failover import FILES, write_files

LAST_WORDS = {
    "/data/last-minute.txt": b"written right before the request, never flushed by hand",
    "/scratch/ledger.csv": b"id,amount\n" + b"".join(b"%d,%d\n" % (i, i * 7) for i in range(300)),
}


def test_planned_failover_loses_no_write_and_fences_the_primary(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    captured = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    for path, data in LAST_WORDS.items():  # dirty in the cache when the request comes
        env.write(path, data)
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}?mode=planned")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["status"] == "failed_over" and out["entry"]["status"] == "verified"
    served = out["failover"]
    assert served["backup_id"] == out["backup_id"] and served["rpo_s"] == 0 and served["rto_s"] > 0

    # Every write, the last ones included, reads back byte for byte through the DR cluster.
    for path, data in {**FILES, **LAST_WORDS}.items():
        assert env.read(path, cluster="dr") == data, path
    assert env.client("dr").capture_core_filer(env.filer_name).junctions == captured.junctions
    # The primary stays fenced: removed, and the catalog records the failover (nothing left for a reconcile).
    assert env.filer_name not in env.client().list_core_filers()
    state = env.catalog().load(env.filer)
    assert state.failed_over["backup_id"] == out["backup_id"] and state.failed_over["mode"] == "planned"
    assert state.failed_over["rpo_s"] == 0
    assert state.generations[out["generation"]].status == "attached"
    assert state.removed_by_app is None and state.needs_attention is None
    runner.trigger("tick")
    runner.run_until_idle(timeout=30)
    assert env.filer_name not in env.client().list_core_filers()  # the tick's reconcile did not re-add it


def test_planned_failover_failing_at_the_attach_keeps_the_primary_fenced(app_env: AppEnv, durable_runner) -> None:
    """The failover fences the primary before it attaches: when the attach fails, the filer stays off the primary
    (never two clusters serving) with its record kept, until an operator lifts the fence (readd override)."""
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    # The DR cluster answers the preflight but refuses to create the filer: the attach cannot succeed.
    env.refuse_creation(env.filer_name, "dr")
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}?mode=planned")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=300)
    assert status["runtimeStatus"] == "Failed", json.dumps(status, indent=1)[:3000]
    message = json.dumps(status["output"])
    assert "planned failover to dr failed before the DR cluster served" in message, message
    assert "not re-added at the primary cluster primary" in message and "fenced after a failover" in message
    assert env.client().filer_state(env.filer_name) == "removed"
    assert env.filer_name not in env.client("dr").list_core_filers()
    state = env.catalog().load(env.filer)
    assert state.fence is not None and not state.fence.get("lifted")
    assert state.removed_by_app is not None and state.removed_by_app.get("record")  # what the override replays


def test_planned_failover_requests_that_cannot_succeed_are_refused(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    base = f"{runner.base_url}/api/failovers/primary/{env.filer_name}"
    for query, code, words in (
        ("?mode=rehearsed", 400, "expected unplanned or planned"),
        ("?mode=planned&backupId=x", 400, "is for an unplanned failover"),
        ("?mode=planned&verify=full", 400, "is for an unplanned failover"),
    ):
        answer = http_call("POST", base + query)
        assert answer.status == code and words in answer.json()["error"], (query, answer.body)
    assert runner.statuses() == []
    assert env.client().filer_state(env.filer_name) == "online"
