"""The drill's read-back through the probe stand-in (HTTPS, key from Key Vault, the simulator's file calls): files
read whole through the DR cluster are counted; a damaged object is a failed drill that still cleans up."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.runbook.drill import list_records
from tests.fixtures.probe import ProbeEndpoint, connect_probe, probe_plan
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.drill_support import (
    FILES,
    backup_now,
    drill_now,
    production,
    scratch_containers,
    start_drill,
    write_files,
)


def custom_step(runner: Any, instance_id: str) -> str | None:
    custom = (runner.status(instance_id) or {}).get("customStatus")
    return custom.get("step") if isinstance(custom, dict) else None


def test_the_probe_reads_a_sample_of_files_whole_through_the_drill_filer_and_the_drill_counts_them(
    make_app_env, drill_probe: ProbeEndpoint, durable_runner
) -> None:
    import function_app

    env: AppEnv = make_app_env(edit_plan=probe_plan(drill_probe, sample_size=2))
    connect_probe(env, drill_probe)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    before = production(env)

    status = drill_now(env, runner)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["status"] == "passed", out
    readback = out["readback"]
    assert (readback["status"], readback["files_checked"], readback["files_ok"]) == ("passed", 2, 2)
    assert out["files_checked"] == 2
    # The probe was asked about the drill filer's junctions only, read-only, with the plan's sample size.
    (asked,) = drill_probe.server.requests
    assert asked["sample_size"] == 2 and asked["drill_id"] == out["drill_id"]
    paths = sorted(p for m in asked["mounts"] for p in m["paths"])
    assert paths == [f"/.drill/{env.filer_name}/data", f"/.drill/{env.filer_name}/scratch"]
    sizes = {f"/.drill/{env.filer_name}{p}": len(d) for p, d in FILES.items()}
    assert readback["bytes_read"] > 0 and readback["bytes_read"] <= sum(sizes.values())
    with env.catalog() as catalog:
        (record,) = list_records(catalog, env.filer)
    assert record.status == "passed" and record.readback == readback
    assert production(env) == before and scratch_containers(env) == []


def test_without_a_probe_the_read_back_is_skipped_and_never_counts_as_passed(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    out = drill_now(env, runner)["output"]
    assert out["status"] == "unverified" and out["readback"]["status"] == "skipped"
    assert out["files_checked"] == 0


def test_a_damaged_object_read_back_through_the_cluster_fails_the_drill_which_still_cleans_up(
    make_app_env, drill_probe: ProbeEndpoint, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env: AppEnv = make_app_env(edit_plan=probe_plan(drill_probe, sample_size=20))
    connect_probe(env, drill_probe)
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    before = production(env)
    instance = start_drill(env, runner)
    # After the copy was checked against the manifest, while the drill filer is being attached: one byte of
    # every data object of the scratch copy changes (names and metadata stay, as a bad disk would leave them).
    runner.run_until(lambda: custom_step(runner, instance) == "attach", timeout=120)
    (scratch,) = scratch_containers(env)
    container = env.container("dr", scratch)
    damaged = 0
    for blob in container.list_blobs(include=["metadata"]):
        if blob.name.startswith("c/"):
            data = bytearray(container.download_blob(blob.name).readall())
            data[len(data) // 2] ^= 0xFF
            container.upload_blob(blob.name, bytes(data), overwrite=True, metadata=blob.metadata)
            damaged += 1
    assert damaged
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Failed", json.dumps(status, indent=1)[:3000]
    message = json.dumps(status["output"])
    assert "read-back through the DR cluster failed" in message
    alerts = [r for r in caplog.records if "VFXTDR_DRILL_FAILED" in r.getMessage()]
    assert len(alerts) == 1 and env.filer_name in alerts[0].getMessage()
    with env.catalog() as catalog:
        (record,) = list_records(catalog, env.filer)
    assert record.status == "failed" and record.readback and record.readback["status"] == "failed"
    assert record.readback["files_checked"] == len(FILES) and record.readback["files_ok"] < len(FILES)
    assert record.rto_s is not None  # it did serve: the RTO is kept even though the data did not read back
    assert record.cleanup and record.cleanup["ok"] is True
    assert scratch_containers(env) == [] and f"drill-{env.filer_name}" not in env.client("dr").list_core_filers()
    assert production(env) == before
    assert env.catalog().load(env.filer).pins == {}
