"""The tick's alert signals through the local runner on the virtual clock: every tick one VFXTDR_FILER_STATUS line
per filer with its state and RPO age, VFXTDR_RPO_BREACH when the newest verified backup is older than the target
(or there is none after the first scheduled run), and the VFXTDR_TICK heartbeat; no line holds a secret."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pytest

from shared.catalog.store import FilerState
from shared.runbook import signals
from shared.runbook.payloads import backup_instance_id
from tests.fixtures.secrets import assert_no_leak
from tests.fixtures.workflow import AppEnv

HOUR = 3600.0
FIRST_OCCURRENCE = "2027-01-15T02:00:00Z"  # the plan's daily 02:00; the virtual clock starts at 08:00 that day


def tick(runner: Any, caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict]]:
    """Fire the timer once; the signal lines it logged, in order."""
    caplog.clear()
    runner.trigger("tick")
    return [parsed for r in caplog.records if (parsed := signals.parse(r.getMessage()))]


def finish(runner: Any, instance_id: str) -> dict:
    status = runner.wait_for(instance_id, timeout=180)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    return status["output"]


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_each_tick_reports_every_filer_with_its_rpo_age(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    env.write("/data/file.txt", b"scheduled")
    runner = durable_runner(function_app.app, clock=env.clock)
    key, iid = f"primary/{env.filer_name}", backup_instance_id("primary", env.filer_name)

    # First tick: the 02:00 occurrence is due, the backup starts; no verified backup yet, but no breach either
    # (the first scheduled run is under way).
    lines = tick(runner, caplog)
    assert [event for event, _ in lines] == ["VFXTDR_FILER_STATUS", "VFXTDR_TICK"]
    status = lines[0][1]
    assert status["filer"] == key and status["state"] == "running" and status["rpo_age_s"] is None
    assert status["badge"] == "red" and status["breach"] is False
    assert status["running"] == [{"instance_id": iid, "kind": "backup"}]
    assert lines[1][1] == {"filers": 1, "breaches": 0, "started": 1, "skipped": 0, "readd": 0}
    out = finish(runner, iid)
    with env.catalog() as catalog:
        started = epoch(catalog.backup(env.filer, out["backup_id"])["started_at"])

    # Next tick: nothing due; the backup's age counts from the start of its run.
    lines = tick(runner, caplog)
    assert [event for event, _ in lines] == ["VFXTDR_FILER_STATUS", "VFXTDR_TICK"]
    status = lines[0][1]
    assert status["state"] == "protected" and status["serving_cluster"] == "primary"
    assert status["rpo_age_s"] == round(env.clock.now() - started) and status["badge"] == "green"
    assert status["last_backup_id"] == out["backup_id"] and status["breach"] is False

    # 30 hours later (the next occurrence has fired): the backup is past the 24 h target. The tick starts the
    # new backup and reports the breach, with the age, while it runs.
    env.clock.advance(30 * HOUR)
    lines = tick(runner, caplog)
    assert [event for event, _ in lines] == ["VFXTDR_FILER_STATUS", "VFXTDR_RPO_BREACH", "VFXTDR_TICK"]
    age = round(env.clock.now() - started)
    assert age > 30 * HOUR
    status, breach = lines[0][1], lines[1][1]
    assert status["state"] == "running" and status["badge"] == "amber" and status["rpo_age_s"] == age
    assert breach == {
        "filer": key,
        "state": "running",
        "reason": "newest verified backup older than target",
        "rpo_target_hours": 24,
        "rpo_age_s": age,
        "rpo_age_hours": round(age / HOUR, 2),
        "last_backup_id": out["backup_id"],
    }
    assert lines[2][1]["breaches"] == 1 and lines[2][1]["started"] == 1
    finish(runner, iid)
    lines = tick(runner, caplog)
    assert [event for event, _ in lines] == ["VFXTDR_FILER_STATUS", "VFXTDR_TICK"]
    assert lines[0][1]["badge"] == "green" and lines[0][1]["rpo_age_s"] < 2 * HOUR
    assert_no_leak(env, runner, logs=caplog.text)


def test_no_verified_backup_after_the_first_scheduled_run_is_a_breach(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)

    def scheduled_and_gone(state: FilerState) -> None:
        state.last_scheduled = FIRST_OCCURRENCE  # its run was started for the occurrence, and left nothing verified
        state.last_run = {"backup_id": "20270115T020000Z-x", "status": "failed", "instance_id": "gone"}

    env.catalog().update(env.filer, scheduled_and_gone)
    runner = durable_runner(function_app.app, clock=env.clock)
    lines = tick(runner, caplog)
    assert runner.statuses() == []  # the occurrence was taken: nothing starts
    assert [event for event, _ in lines] == ["VFXTDR_FILER_STATUS", "VFXTDR_RPO_BREACH", "VFXTDR_TICK"]
    assert lines[0][1]["state"] == "unprotected" and lines[0][1]["badge"] == "red"
    assert lines[1][1]["reason"] == "no verified backup" and lines[1][1]["rpo_age_s"] is None
    assert lines[2][1] == {"filers": 1, "breaches": 1, "started": 0, "skipped": 0, "readd": 0}


def test_a_tick_that_cannot_read_the_plan_logs_no_heartbeat(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    caplog.set_level(logging.INFO)
    runner = durable_runner(function_app.app, clock=app_env.clock)
    monkeypatch.setenv("VFXTDR_PLAN", "{not json")
    assert tick(runner, caplog) == []  # an alert on a missing heartbeat fires
    assert any("tick skipped" in r.getMessage() for r in caplog.records)
