"""Drills end to end through the app's route and the local runner: a verified backup is copied into a scratch
container, attached to the DR cluster under drill names, read back, recorded and cleaned up, and production (the
primary filer, the backup containers, the filer's catalog state) is exactly as it was."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from devstack.faultproxy.proxy import FaultProxy
from shared.runbook.drill import list_records
from shared.runbook.payloads import backup_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.probe import ProbeEndpoint, connect_probe, probe_plan
from tests.fixtures.secrets import assert_no_leak
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.drill_support import (
    FILES,
    backup_now,
    catalog_view,
    drill_now,
    production,
    scratch_containers,
    start_drill,
    write_files,
)


def run_json(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=1)[:3000]


def test_a_drill_rehearses_the_newest_backup_and_leaves_production_exactly_as_it_was(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
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
        out["rto_s"] - out["phases"]["copy_s"], abs=0.01
    )

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
    app_env: AppEnv, durable_runner
) -> None:
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


def settle(runner: Any, instance_id: str, step: str) -> None:
    """Run until the instance reached step, then until nothing runs (it waits on a timer)."""
    runner.run_until(lambda: custom_step(runner, instance_id) == step, timeout=120)
    runner.run_until_idle(timeout=60)


def custom_step(runner: Any, instance_id: str) -> str | None:
    custom = (runner.status(instance_id) or {}).get("customStatus")
    return custom.get("step") if isinstance(custom, dict) else None


def assert_cleaned_up(env: AppEnv, drill_id: str) -> None:
    """No drill filer, junction, policy or scratch copy is left, and the generation is unpinned. The DR cluster's
    clock moves on first: an activity the drill left running (a create) would finish and show its filer."""
    env.clock.advance(600)
    dr = env.client("dr")
    assert not [a for a in dr.call("cluster.listActivities") if a["state"] == "inprogress"]
    assert f"drill-{env.filer_name}" not in dr.list_core_filers()
    assert not [j for j in dr.call("vserver.listJunctions", "vserver") if j["path"].startswith("/.drill")]
    assert not [p for p in dr.call("nfs.listPolicies", "vserver") if str(p).startswith("drill-")]
    assert scratch_containers(env) == []
    assert env.catalog().load(env.filer).pins == {}
    with env.catalog() as catalog:
        record = next(r for r in list_records(catalog, env.filer) if r.drill_id == drill_id)
    assert record.cleanup and record.cleanup["ok"] is True, record.cleanup


def test_a_drill_that_fails_to_attach_still_cleans_up_and_raises_the_alert_once(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    before = production(env)
    # The DR cluster refuses to create the drill's filer, every time the drill tries.
    env.client("dr").call(
        "sim.injectFault",
        {
            "method": "corefiler.createCloudFiler",
            "action": "fault",
            "code": 100,
            "text": "injected: no capacity",
            "count": 100,
        },
    )
    status = drill_now(env, runner)
    env.client("dr").call("sim.clearFaults")
    assert status["runtimeStatus"] == "Failed", run_json(status)
    message = json.dumps(status["output"])
    assert "attaching the scratch copy failed 4 time(s) in a row" in message and "no capacity" in message
    with env.catalog() as catalog:
        (record,) = list_records(catalog, env.filer)
    assert record.status == "failed" and "no capacity" in record.error and record.rto_s is None
    assert_cleaned_up(env, record.drill_id)
    assert production(env) == before
    alerts = [r for r in caplog.records if "VFXTDR_DRILL_FAILED" in r.getMessage()]
    assert len(alerts) == 1 and record.drill_id in alerts[0].getMessage() and alerts[0].levelno == logging.ERROR


def test_a_failover_cancels_a_running_drill_which_cleans_up_while_the_failover_serves(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    drill = start_drill(env, runner)
    settle(runner, drill, "attach")
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    failover = runner.wait_for(reply.json()["id"], timeout=240)
    cancelled = runner.wait_for(drill, timeout=240)

    assert failover["runtimeStatus"] == "Completed", run_json(failover)
    assert cancelled["runtimeStatus"] == "Completed", run_json(cancelled)
    assert cancelled["output"]["status"] == "cancelled" and cancelled["output"]["cleaned_up"] is True
    assert [e["Name"] for e in cancelled["historyEvents"] if e["EventType"] == "EventRaised"] == ["cancel"]
    assert any("cancelled the running drill" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if "VFXTDR_DRILL_FAILED" in r.getMessage()]  # cancelled, not failed
    with env.catalog() as catalog:
        (record,) = list_records(catalog, env.filer)
    assert record.status == "cancelled"
    assert_cleaned_up(env, record.drill_id)
    # The failover serves the real filer from the real backup; nothing of the drill is in its way.
    dr = env.client("dr")
    assert env.filer_name in dr.list_core_filers()
    assert failover["output"]["backup_id"] == backup["backup_id"]
    for path, data in FILES.items():
        assert env.read(path, cluster="dr") == data


def test_a_cancelled_drill_cleans_up(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    before = production(env)
    drill = start_drill(env, runner)
    settle(runner, drill, "attach")
    # Half-way: the DR cluster is still creating the drill filer (it is listed only once created).
    creating = [
        a
        for a in env.client("dr").call("cluster.listActivities")
        if a["state"] == "inprogress" and f"'drill-{env.filer_name}'" in a["status"]
    ]
    assert creating and f"drill-{env.filer_name}" not in env.client("dr").list_core_filers()
    runner.raise_event(drill, "cancel", {"reason": "operator"})
    status = runner.wait_for(drill, timeout=240)
    assert status["runtimeStatus"] == "Completed", run_json(status)
    assert status["output"]["status"] == "cancelled"
    assert_cleaned_up(env, status["output"]["drill_id"])
    assert production(env) == before


def test_the_timer_starts_a_scheduled_drill_once_per_occurrence_while_backups_keep_running(
    make_app_env, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    def daily_drill(plan: dict[str, Any]) -> None:
        plan["filers"][0]["drill_schedule"] = "0 0 3 * * *"  # the clock starts at 2027-01-15T08:00:00Z

    env: AppEnv = make_app_env(edit_plan=daily_drill)
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    first = backup_now(env, runner)
    drill_id, backup_id = f"drill~primary~{env.filer_name}", f"backup~primary~{env.filer_name}"

    runner.trigger("tick")  # the backup schedule (02:00) and the drill schedule (03:00) are both due
    drill = runner.wait_for(drill_id, timeout=240)
    backup = runner.wait_for(backup_id, timeout=240)
    assert drill["runtimeStatus"] == "Completed", run_json(drill)
    assert backup["runtimeStatus"] == "Completed" and backup["output"]["status"] == "verified", run_json(backup)
    assert backup["output"]["generation"] != first["generation"]  # the drill's generation stayed pinned
    assert drill["output"]["backup_id"] == first["backup_id"]
    with env.catalog() as catalog:
        (record,) = list_records(catalog, env.filer)
        mark = catalog.read_json(f"filers/primary/{env.filer_name}/drill-schedule.json")[0]
    assert record.reason == "schedule" and mark["last_scheduled"] == "2027-01-15T03:00:00Z"
    assert any("drill schedule: started" in r.getMessage() for r in caplog.records)

    created = runner.status(drill_id)["createdTime"]
    runner.trigger("tick")  # the same occurrence: no second drill
    runner.run_until_idle(timeout=60)
    assert runner.status(drill_id)["createdTime"] == created
    assert env.catalog().load(env.filer).pins == {}


def test_no_secret_in_a_drills_history_status_logs_or_catalog(
    *,
    make_app_env,
    faults: FaultProxy,
    drill_probe: ProbeEndpoint,
    durable_runner,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import function_app

    def plan(data: dict[str, Any]) -> None:
        for side in ("source", "backup"):  # every storage request through the proxy: it sees the SAS minted
            account = data["filers"][0][side]["account"]
            data["filers"][0][side]["blob_endpoint"] = faults.account_url(account)
        data["copy"].update(page_size=2, parallel_pages=1, pages_per_execution=1)
        probe_plan(drill_probe)(data)

    caplog.set_level(logging.DEBUG)
    env: AppEnv = make_app_env(edit_plan=plan)
    connect_probe(env, drill_probe)
    write_files(env)
    state_dir = tmp_path / "durable"
    runner = durable_runner(function_app.app, clock=env.clock, state_dir=state_dir)
    backup_now(env, runner)
    faults.reset_stats()
    drill = drill_now(env, runner)
    assert drill["runtimeStatus"] == "Completed" and drill["output"]["status"] == "passed", run_json(drill)
    minted = faults.source_signatures()
    assert minted, "the scan would prove nothing: the scratch copy minted no SAS the proxy saw"
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    texts = assert_no_leak(env, runner, logs=logs, state_dir=state_dir, signatures=minted)
    assert "drill probe key" in env.secret_values()
    scratch = [i for i in texts if i.startswith(f"status of {drill['instanceId']}~")]
    assert scratch and all(i.endswith("-scratch") and "copy_plan_page" in texts[i] for i in scratch)
    assert any("/drills/" in name for name in texts)  # the drill record was scanned too


def test_the_tick_cleans_up_after_a_terminated_drill_and_unpins(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    """Terminating runs no compensation: the drill's filer, scratch copy and pin stay, until the timer notices the
    pin outlived its drill and cleans up after it under the filer's drill id."""
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    drill = start_drill(env, runner)
    settle(runner, drill, "attach")  # the DR cluster is creating the drill filer on the scratch copy
    runner.terminate(drill, "an operator who should have sent cancel")
    runner.run_until_idle(timeout=60)
    assert runner.status(drill)["runtimeStatus"] == "Terminated"
    assert env.catalog().load(env.filer).pins and scratch_containers(env)
    creating = [
        a
        for a in env.client("dr").call("cluster.listActivities")
        if a["state"] == "inprogress" and f"'drill-{env.filer_name}'" in a["status"]
    ]
    assert creating

    runner.trigger("tick")
    status = runner.wait_for(drill, timeout=240)
    assert status["runtimeStatus"] == "Completed", run_json(status)
    assert status["output"]["status"] == "cleaned_up"
    assert any("stopped without cleaning up" in r.getMessage() for r in caplog.records)
    with env.catalog() as catalog:
        (record,) = list_records(catalog, env.filer)
    assert record.status == "cancelled" and "terminated" in record.error
    assert_cleaned_up(env, record.drill_id)
    # A second tick finds nothing to clean (and the scheduled backup it started meanwhile runs as usual).
    backup = runner.wait_for(backup_instance_id("primary", env.filer_name), timeout=240)
    assert backup["runtimeStatus"] == "Completed" and backup["output"]["status"] == "verified", run_json(backup)
    created = runner.status(drill)["createdTime"]
    runner.trigger("tick")
    runner.run_until_idle(timeout=60)
    assert runner.status(drill)["createdTime"] == created
