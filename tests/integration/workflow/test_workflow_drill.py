"""Drills end to end through the app's route and the local runner: a verified backup is copied into a scratch
container, attached to the DR cluster under drill names, read back, recorded and cleaned up, and production (the
primary filer, the backup containers, the filer's catalog state) is exactly as it was."""

from __future__ import annotations

import json
import logging

import pytest

from shared.runbook.drill import list_records
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.drill_support import (
    backup_now,
    catalog_view,
    drill_now,
    production,
    scratch_containers,
    write_files,
)


def test_a_drill_rehearses_the_newest_backup_and_leaves_production_exactly_as_it_was(
        app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    before = production(env)
    catalog_before = catalog_view(env)

    status = drill_now(env, runner)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    # No probe in this plan: the read-back is skipped, and the drill says so rather than passing.
    assert out["status"] == "unverified"
    assert out["readback"]["status"] == "skipped" and "no drill.probe" in out["readback"]["detail"]
    assert out["backup_id"] == backup["backup_id"] and out["generation"] == backup["generation"]
    assert out["rto_s"] > 0 and out["rpo_s"] >= 0 and out["cleaned_up"] is True
    assert out["phases"]["copy_s"] >= 0 and out["rto_without_copy_s"] == pytest.approx(
        out["rto_s"] - out["phases"]["copy_s"], abs=0.01)

    # Production is untouched: the filer, every backup container blob (ETags, metadata), the catalog state.
    assert production(env) == before
    assert catalog_view(env) == {**catalog_before, "drills": catalog_view(env)["drills"]}
    # Nothing of the drill is left: no drill filer, no junction under /.drill, no drill policy, no scratch copy.
    dr = env.client("dr")
    assert out["drill_filer"] not in dr.list_core_filers()
    assert not [j for j in dr.call("vserver.listJunctions", "vserver") if j["path"].startswith("/.drill")]
    assert not [p for p in dr.call("nfs.listPolicies", "vserver") if str(p).startswith("drill-")]
    assert scratch_containers(env) == []

    # The catalog keeps one drill record with the RTO, the phases and the backup's age.
    with env.catalog() as catalog:
        records = list_records(catalog, env.filer)
    assert [r.drill_id for r in records] == [out["drill_id"]]
    record = records[0]
    assert record.status == "unverified" and record.rto_s == out["rto_s"] and record.rpo_s == out["rpo_s"]
    assert record.cleanup and record.cleanup["ok"] is True
    assert record.consistent_at and record.rpo_basis == "the filer's removal for the backup"
    assert record.readback and record.readback["status"] == "skipped"
    assert not [r for r in caplog.records if "VFXTDR_DRILL_FAILED" in r.getMessage()]


def test_the_filers_protection_is_unchanged_a_backup_right_after_a_drill_verifies(
        app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    first = backup_now(env, runner)
    assert drill_now(env, runner)["runtimeStatus"] == "Completed"
    env.write("/data/after-the-drill.txt", b"written after the drill")
    second = backup_now(env, runner)
    assert second["generation"] != first["generation"]
    state = env.catalog().load(env.filer)
    assert state.pins == {}
    assert state.latest_verified == second["generation"]

