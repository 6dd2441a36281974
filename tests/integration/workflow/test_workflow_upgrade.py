"""Upgrading past run references with a run in flight: a backup run of the earlier version, which had removed its
filer, stops at its next step with an error naming the upgrade (its input has no format: it carried plan parts
in its later inputs), does nothing more, and the next timer tick's reconcile re-adds the filer from the catalog's
removal mark, which both versions write alike. (tests/unit/runbook/test_payload_formats.py replays such runs
from their recorded history; here the whole recovery runs on the local stack.)"""

from __future__ import annotations

import json
from typing import Any

from shared.catalog.store import WRITING
from shared.runbook.payloads import RunStep, readd_instance_id
from tests.fixtures.workflow import AppEnv, Host, start_run, until


def remove_as_an_earlier_run_did(env: AppEnv, host: Host) -> None:
    """The state an earlier version's backup run left at the upgrade: generation writing, filer captured,
    flushed, marked removed in the catalog, and removed from the cluster."""
    run = start_run(env, host, "backup", "old1")
    host("begin_backup", run)
    host("rotate_key", run)
    host("capture_filer", run)
    started = host("suspend_and_flush", run)
    until(lambda: host("flush_status", RunStep(run, started.activity_ids)), lambda s: s.done, env.clock)
    host("mark_removed", run)
    for step in ("remove_junctions", "remove_filer"):
        ids = host(step, run).activity_ids
        until(lambda ids=ids: host("remove_status", RunStep(run, ids)), lambda s: s.done, env.clock)


def test_a_run_of_the_earlier_version_stops_and_the_reconcile_readds_its_filer(
    app_env: AppEnv, durable_runner: Any
) -> None:
    import function_app

    env = app_env
    env.write("/data/kept.txt", b"must survive the upgrade")
    env.flush()
    captured = env.client().capture_core_filer(env.filer_name)
    remove_as_an_earlier_run_did(env, Host())
    assert env.client().filer_state(env.filer_name) == "removed"

    runner = durable_runner(function_app.app, clock=env.clock)
    iid = f"backup-primary-{env.filer_name}"  # the run id the earlier version gave it
    # Its orchestration input as the earlier version's route wrote it (no input format).
    runner.start_new(
        "backup_orchestrator",
        iid,
        {"cluster": "primary", "filer": env.filer_name, "dry_run": False, "reason": "manual"},
    )
    old = runner.wait_for(iid, timeout=60)
    assert old["runtimeStatus"] == "Failed", json.dumps(old, indent=1)[:2000]
    assert "an earlier version of this app" in old["output"] and "reconcile re-adds it" in old["output"]
    assert env.client().filer_state(env.filer_name) == "removed"  # it did nothing more

    runner.trigger("tick")
    readd = readd_instance_id("primary", env.filer_name)
    status = runner.wait_for(readd, timeout=120)
    assert status["runtimeStatus"] == "Completed" and status["output"]["status"] == "readded", status
    client = env.client()
    assert client.filer_state(env.filer_name) == "online"
    assert client.capture_core_filer(env.filer_name).junctions == captured.junctions
    assert env.read("/data/kept.txt") == b"must survive the upgrade"
    state = env.catalog().load(env.filer)
    assert state.removed_by_app is None and state.needs_attention is None
    assert WRITING not in {g.status for g in state.generations.values()}  # the stopped run's is failed
