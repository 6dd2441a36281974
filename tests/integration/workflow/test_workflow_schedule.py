"""The timer tick through the local runner: one backup per due filer (a singleton per filer), each scheduled
occurrence once, skips that name their reason, and the reconcile that re-adds a filer a stopped run left removed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.catalog.store import FilerState
from shared.runbook.payloads import backup_instance_id, readd_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv

# The plan's schedule is daily at 02:00 UTC; the clusters' virtual clock starts at 2027-01-15T08:00:00Z.
FIRST_OCCURRENCE = "2027-01-15T02:00:00Z"
NEXT_OCCURRENCE = "2027-01-16T02:00:00Z"


def instance_ids(runner: Any) -> list[tuple[str, str]]:
    """Every instance with its creation time: a new run, or one replacing a finished run, changes it."""
    return sorted((s["instanceId"], s["createdTime"]) for s in runner.statuses())


def custom_step(runner: Any, instance_id: str) -> dict:
    custom = (runner.status(instance_id) or {}).get("customStatus")
    return custom if isinstance(custom, dict) else {}


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def finish(runner: Any, instance_id: str) -> dict:
    status = runner.wait_for(instance_id, timeout=120)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    return status


def test_tick_starts_one_backup_per_due_occurrence_and_never_a_second_one(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    env.write("/data/file.txt", b"scheduled")
    runner = durable_runner(function_app.app, clock=env.clock)
    iid = backup_instance_id("primary", env.filer_name)

    # A backup started by hand runs when the schedule's occurrence comes due: the tick skips, and says why.
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    before = instance_ids(runner)
    caplog.clear()
    runner.trigger("tick")
    assert instance_ids(runner) == before
    assert runner.status(iid)["runtimeStatus"] in ("Pending", "Running")
    assert any(env.filer_name in m and "skipped" in m and "already running" in m for m in messages(caplog)), messages(
        caplog
    )
    assert env.catalog().load(env.filer).last_scheduled is None  # skipped: still due
    manual = finish(runner, iid)["output"]

    # Once it finished, the tick starts the due occurrence's backup under the same singleton id.
    runner.trigger("tick")
    started = runner.status(iid)
    assert started["runtimeStatus"] in ("Pending", "Running")
    assert instance_ids(runner) != before
    assert env.catalog().load(env.filer).last_scheduled == FIRST_OCCURRENCE
    # A second tick while it runs starts nothing (the occurrence is taken).
    before = instance_ids(runner)
    runner.trigger("tick")
    assert instance_ids(runner) == before
    first = finish(runner, iid)["output"]
    assert first["status"] == "verified" and first["backup_id"] != manual["backup_id"]

    # The same occurrence is not due again once its run finished.
    before = instance_ids(runner)
    runner.trigger("tick")
    assert instance_ids(runner) == before
    assert runner.status(iid)["runtimeStatus"] == "Completed"

    # The next occurrence is.
    env.clock.advance_to(datetime.fromisoformat(NEXT_OCCURRENCE).timestamp() + 60)
    runner.trigger("tick")
    assert instance_ids(runner) != before
    second = finish(runner, iid)["output"]
    assert second["status"] == "verified" and second["backup_id"] != first["backup_id"]
    assert second["generation"] != first["generation"]  # the newest verified backup is never overwritten
    assert env.catalog().load(env.filer).last_scheduled == NEXT_OCCURRENCE


@pytest.mark.parametrize(
    ("mark", "reason"),
    [
        (
            {"needs_attention": {"since": "2027-01-15T01:00:00Z", "error": "re-add failed", "record": None}},
            "needs attention",
        ),
        ({"failed_over": {"target_cluster": "dr", "generation": "a"}}, "failed over to cluster dr"),
    ],
)
def test_tick_skips_a_filer_that_needs_attention_or_failed_over(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture, mark: dict, reason: str
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)

    def change(state: FilerState) -> None:
        for key, value in mark.items():
            setattr(state, key, value)

    env.catalog().update(env.filer, change)
    runner = durable_runner(function_app.app, clock=env.clock)
    runner.trigger("tick")
    runner.run_until_idle(timeout=30)
    assert runner.statuses() == []
    assert any(env.filer_name in m and "skipped" in m and reason in m for m in messages(caplog)), messages(caplog)
    state = env.catalog().load(env.filer)
    assert state.last_scheduled is None  # a skipped occurrence stays due for when the filer is fine again
    assert env.client().filer_state(env.filer_name) == "online"


def test_tick_reconciles_a_filer_a_terminated_backup_left_removed(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    env.write("/data/kept.txt", b"must survive the terminated run")
    captured = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    iid = backup_instance_id("primary", env.filer_name)
    runner.trigger("tick")
    # The clock only moves while the condition is false: the run stops in its copy, the filer removed.
    runner.run_until(lambda: custom_step(runner, iid).get("step") == "copy", timeout=60)
    child = custom_step(runner, iid)["copy_instance"]
    # An operator terminates the run (the wrong way to stop it): nothing of it re-adds the filer.
    runner.terminate(iid, "operator")
    runner.terminate(child, "operator")
    runner.run_until(
        lambda: (
            runner.status(iid)["runtimeStatus"] == "Terminated"
            and runner.status(child)["runtimeStatus"] == "Terminated"
        ),
        timeout=30,
    )
    assert env.client().filer_state(env.filer_name) == "removed"
    assert env.catalog().load(env.filer).removed_by_app is not None

    caplog.clear()
    runner.trigger("tick")
    readd = readd_instance_id("primary", env.filer_name)
    assert runner.status(readd) is not None
    assert runner.status(iid)["runtimeStatus"] == "Terminated"  # no backup while the filer is removed
    assert any("reconcile" in m and env.filer_name in m for m in messages(caplog))
    out = finish(runner, readd)["output"]
    assert out["status"] == "readded"

    client = env.client()
    assert client.filer_state(env.filer_name) == "online"
    assert client.capture_core_filer(env.filer_name).junctions == captured.junctions
    assert env.read("/data/kept.txt") == b"must survive the terminated run"
    state = env.catalog().load(env.filer)
    assert state.removed_by_app is None and state.needs_attention is None
    # The terminated run's generation no longer claims a backup in progress.
    assert "writing" not in {g.status for g in state.generations.values()}
    assert state.last_run["status"] == "interrupted"

    # Reconciled once: the next tick has nothing to re-add.
    before = instance_ids(runner)
    runner.trigger("tick")
    assert instance_ids(runner) == before


def test_first_occurrence_constants_match_the_clock(app_env: AppEnv) -> None:
    now = datetime.fromtimestamp(app_env.clock.now(), UTC)
    first = datetime.fromisoformat(FIRST_OCCURRENCE)
    assert timedelta(0) <= now - first < timedelta(days=1)
    assert app_env.plan_json["schedule"] == "0 0 2 * * *"


def test_reconcile_reads_the_catalog_before_the_running_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup started between the two reads must not get a re-add under it: a removal mark the tick reads
    was written by a run that had already started, so the running check that follows still sees it."""
    import asyncio
    import inspect
    from types import SimpleNamespace

    from shared.runbook import record as catalog_ops
    from triggers import timer

    filer = SimpleNamespace(cluster="primary", name="fs", key="primary/fs")
    plan = SimpleNamespace(filers=[filer], enabled_filers=lambda: ())  # no filer has a drill schedule
    backup_started = {"yes": False}
    started: list[str] = []

    async def running_ids(client: Any, ids: list[str]) -> set[str]:
        return {i for i in ids if i.startswith("backup") and backup_started["yes"]}

    def load_states(p: Any, filers: Any = None) -> dict[str, FilerState]:
        backup_started["yes"] = True  # the backup started (and marked the filer removed) as the tick ran
        state = FilerState.new(("a", "b"))
        state.removed_by_app = {"instance_id": "backup-primary-fs", "backup_id": "x", "record": None}
        return {filer.key: state}

    class Client:
        async def start_new(self, name: str, instance_id: str, payload: Any) -> None:
            started.append(instance_id)

    monkeypatch.setattr(timer, "load_plan", lambda: plan)
    monkeypatch.setattr(timer, "running_ids", running_ids)
    monkeypatch.setattr(catalog_ops, "load_states", load_states)
    monkeypatch.setattr(timer.report_catalog, "reports_for_tick", lambda *args: [])  # the fake plan has no storage
    monkeypatch.setattr(
        timer.scheduling,
        "tick",
        lambda p, states, now, running, **_: timer.scheduling.Tick(
            None, (), (), (), tuple(timer.scheduling.reconcile(p, states, running))
        ),
    )
    asyncio.run(inspect.unwrap(timer.tick._function._func)(None, Client()))
    assert backup_started["yes"] and not [i for i in started if i.startswith("readd")], started
