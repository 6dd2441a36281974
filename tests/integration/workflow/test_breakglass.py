"""Break glass on the local stack with the app stopped (no runner): the failover activities run from the command,
the DR cluster serves the backup, the catalog records the failover, a second one and a refused one change
nothing, and no secret reaches its output, the logs or the catalog."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from shared.catalog.store import ATTACHED
from shared.runbook.payloads import failover_instance_id
from tests.fixtures.secrets import catalog_texts, find_leaks
from tests.fixtures.workflow import AppEnv, Host, backup_by_hand
from tests.integration.workflow.test_workflow_failover import FILES, lose_primary_region, write_files
from tools import breakglass


def run(env: AppEnv, *args: str) -> tuple[int, str, str]:
    """The command as an operator runs it, in this process (the clusters run on the test's virtual clock)."""
    out, err = io.StringIO(), io.StringIO()
    code = breakglass.main(["failover", "primary", env.filer_name, *args], out=out, err=err, sleep=env.clock.advance)
    return code, out.getvalue(), err.getvalue()


def plan_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The plan as the operator keeps it on the workstation: a file, passed with --plan."""
    path = tmp_path / "plan.json"
    path.write_text(os.environ["VFXTDR_PLAN"])
    monkeypatch.setenv("VFXTDR_PLAN_FILE", "")  # --plan sets it: restored after the test
    return str(path)


def world(env: AppEnv) -> dict[str, Any]:
    """What a refused command must leave as it was: every catalog document (any write changes its ETag) and
    the DR cluster's core filers."""
    catalog = env.container("dr", env.plan.catalog_container)
    documents = {b.name: b.etag for b in catalog.list_blobs()} if catalog.exists() else {}
    return {"catalog": documents, "dr": sorted(env.client("dr").list_core_filers())}


def test_break_glass_fails_over_records_it_and_refuses_a_second(
    app_env: AppEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    captured = env.client().capture_core_filer(env.filer_name)
    backup = backup_by_hand(env, Host(), "b1")
    assert backup.entry["status"] == "verified"
    lose_primary_region(env, monkeypatch)
    plan = plan_file(tmp_path, monkeypatch)

    code, out, err = run(env, "--plan", plan)
    assert code == 0, err

    dr = env.client("dr")
    assert dr.filer_state(env.filer_name) == "online"
    served = dr.capture_core_filer(env.filer_name)
    assert served.junctions == captured.junctions
    for path, data in FILES.items():
        assert env.read(path, cluster="dr") == data, path

    state = env.catalog().load(env.filer)
    g = backup.target.generation
    assert state.generations[g].status == ATTACHED
    assert state.generations[g].attached_to["target_cluster"] == "dr"
    assert state.failed_over["target_cluster"] == "dr" and state.failed_over["backup_id"] == "b1"
    assert state.failed_over["instance_id"] == failover_instance_id("primary", env.filer_name)
    failovers = env.catalog().list_entries(env.filer, "failovers")
    assert [f["backup_id"] for f in failovers] == ["b1"]
    assert failovers[0]["rto_s"] is not None and failovers[0]["status"] == "serving"

    # It says what it did and where clients mount the filer now.
    for step in (
        "plan snapshot",
        "chosen: backup b1",
        "verifying: sample passed",
        "marked attached",
        "recorded",
        "RPO",
        "RTO",
    ):
        assert step in out, (step, out)
    assert f"SERVING primary/{env.filer_name} on cluster dr from backup b1" in out
    for junction in captured.junctions:
        assert junction.path in out
    mounts = dr.client_mount_addresses(env.filer_name)
    assert mounts and all(address in out for m in mounts for address in m.addresses)

    # A second one is refused by the catalog and changes nothing.
    before = world(env)
    code, out2, err2 = run(env, "--plan", plan)
    assert code == breakglass.EXIT_REFUSED, (out2, err2)
    assert "already failed over to cluster dr" in err2
    assert "SERVING" not in out2
    assert world(env) == before

    leaks = find_leaks(env, {"stdout": out + out2, "stderr": err + err2, "logs": caplog.text, **catalog_texts(env)})
    assert not leaks, leaks


def test_refused_break_glass_changes_nothing(app_env: AppEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = app_env
    plan = plan_file(tmp_path, monkeypatch)

    # No backup at all: nothing to fail over to.
    before = world(env)
    code, out, err = run(env, "--plan", plan)
    assert code == breakglass.EXIT_REFUSED, (out, err)
    assert "no verified backup" in err and "nothing changed" in err
    assert world(env) == before

    # A verified backup, but the catalog shows a later backup run in progress: refused unless acknowledged.
    write_files(env)
    backup_by_hand(env, Host(), "b1")

    def running(state: Any) -> None:
        state.last_run = {**(state.last_run or {}), "backup_id": "b2", "instance_id": "backup-x", "status": "running"}

    env.catalog().update(env.filer, running)
    before = world(env)
    for args in ((), ("--despite-running", "b9"), ("--target", "primary"), ("--backup-id", "nope")):
        code, out, err = run(env, "--plan", plan, *args)
        assert code == breakglass.EXIT_REFUSED, (args, out, err)
        assert world(env) == before, args
    code, out, err = run(env, "--plan", plan)
    assert "backup run b2 (backup-x) is in progress" in err and "--despite-running b2" in err

    # Acknowledged (the app that ran it is gone): the failover goes on.
    code, out, err = run(env, "--plan", plan, "--despite-running", "b2", "--verify", "full")
    assert code == 0, err
    assert "verifying: page 0 checked" in out and "checked: full (" in out
    assert env.client("dr").filer_state(env.filer_name) == "online"


def test_an_invalid_plan_is_named_and_nothing_runs(
    app_env: AppEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = app_env
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**env.plan_json, "rpo_hours": -1}))
    monkeypatch.setenv("VFXTDR_PLAN_FILE", "")
    before = world(env)
    code, out, err = run(env, "--plan", str(path))
    assert code == breakglass.EXIT_PLAN, (out, err)
    assert "rpo_hours" in err
    assert world(env) == before
