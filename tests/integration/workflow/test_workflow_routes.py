"""The HTTP routes' refusals and the dry run, through the local runner: each answer names the problem, and a
refusal (or a dry run) changes nothing: no instance, no catalog write, the filer untouched."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.catalog.store import FilerState
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv


def catalog_blobs(env: AppEnv) -> dict[str, str]:
    """Every catalog blob with its etag (any write changes one); {} while the container does not exist."""
    container = env.container("dr", env.context().catalog_container)
    try:
        return {b.name: b.etag for b in container.list_blobs()}
    except ResourceNotFoundError:
        return {}


def backup_blobs(env: AppEnv) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for gen in ("a", "b"):
        try:
            out[gen] = {b.name: b.etag for b in env.backup_container(gen).list_blobs()}
        except ResourceNotFoundError:
            out[gen] = {}
    return out


def instances(runner: Any) -> list[tuple[str, str, str]]:
    return sorted((s["instanceId"], s["createdTime"], s["runtimeStatus"]) for s in runner.statuses())


def world(env: AppEnv, runner: Any) -> tuple:
    """What a refused request must leave as it was."""
    return (
        instances(runner),
        catalog_blobs(env),
        backup_blobs(env),
        env.client().filer_state(env.filer_name),
        env.client().capture_core_filer(env.filer_name),
    )


def post(runner: Any, path: str) -> tuple[int, Any]:
    reply = http_call("POST", f"{runner.base_url}/api/{path}")
    return reply.status, reply.json()


@pytest.fixture
def app_runner(app_env: AppEnv, durable_runner) -> Any:
    import function_app

    return durable_runner(function_app.app, clock=app_env.clock)


def test_unknown_cluster_or_filer_is_404_and_changes_nothing(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    before = world(env, runner)
    for path in (
        f"backups/nowhere/{env.filer_name}",
        "backups/primary/no-such-filer",
        "backups/primary/no-such-filer?dryRun=true",
        "filers/primary/no-such-filer/readd",
        f"failovers/nowhere/{env.filer_name}",
        "failovers/primary/no-such-filer",
    ):
        status, body = post(runner, path)
        assert status == 404, (path, body)
        assert "no-such-filer" in body["error"] or "nowhere" in body["error"], (path, body)
    status, body = post(runner, f"failovers/primary/{env.filer_name}?target=atlantis")
    assert status == 404 and "atlantis" in body["error"]
    assert world(env, runner) == before


def test_bad_flags_are_400_naming_the_parameter(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    before = world(env, runner)
    status, body = post(runner, f"backups/primary/{env.filer_name}?dryRun=maybe")
    assert status == 400 and "dryRun" in body["error"] and "maybe" in body["error"]
    status, body = post(runner, f"failovers/primary/{env.filer_name}?verify=perhaps")
    assert status == 400 and "verify" in body["error"]
    assert world(env, runner) == before


def test_dry_run_returns_the_preflight_findings_and_writes_nothing(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    before = world(env, runner)
    status, body = post(runner, f"backups/primary/{env.filer_name}?dryRun=true")
    assert status == 200, body
    assert body["dryRun"] is True and body["ok"] is True
    checks = {f["check"]: f for f in body["findings"]}
    assert len(checks) >= 5 and all(f["ok"] for f in checks.values()), checks
    assert all(f["detail"] for f in checks.values())
    runner.run_until_idle(timeout=30)
    assert world(env, runner) == before
    assert runner.statuses() == []


@pytest.mark.parametrize(
    ("mark", "reason", "finding"),
    [
        (
            {"needs_attention": {"since": "2027-01-15T01:00:00Z", "error": "re-add failed", "record": None}},
            "needs attention",
            "attention",
        ),
        ({"failed_over": {"target_cluster": "dr", "generation": "a"}}, "failed over", "failed_over"),
    ],
)
def test_backup_is_409_when_the_filer_needs_attention_or_failed_over(
    app_env: AppEnv, app_runner: Any, mark: dict, reason: str, finding: str
) -> None:
    env, runner = app_env, app_runner

    def change(state: FilerState) -> None:
        for key, value in mark.items():
            setattr(state, key, value)

    env.catalog().update(env.filer, change)
    before = world(env, runner)
    status, body = post(runner, f"backups/primary/{env.filer_name}")
    assert status == 409, body
    assert reason in body["error"]
    # The dry run answers 200 (it worked) with the failing finding; it starts and writes nothing either.
    status, body = post(runner, f"backups/primary/{env.filer_name}?dryRun=true")
    assert status == 200 and body["ok"] is False, body
    assert [f["check"] for f in body["findings"] if not f["ok"]] == [finding], body
    runner.run_until_idle(timeout=30)
    assert world(env, runner) == before
    assert runner.statuses() == []


def test_backup_and_readd_are_409_while_a_backup_runs(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    env.write("/data/file.txt", b"running")
    status, body = post(runner, f"backups/primary/{env.filer_name}")
    assert status == 202, body
    running = body["id"]
    # The clock stands still: the run waits at its first timer, still running.
    runner.run_until_idle(timeout=30)
    assert runner.status(running)["runtimeStatus"] == "Running"
    before = world(env, runner)
    for path in (f"backups/primary/{env.filer_name}", f"filers/primary/{env.filer_name}/readd"):
        status, body = post(runner, path)
        assert status == 409, (path, body)
        assert running in body["error"] and "running" in body["error"]
    runner.run_until_idle(timeout=30)
    assert world(env, runner) == before
    done = runner.wait_for(running, timeout=120)
    assert done["runtimeStatus"] == "Completed", json.dumps(done, indent=1)[:2000]
    assert done["output"]["status"] == "verified"


def test_readd_is_409_when_nothing_was_removed(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    before = world(env, runner)
    status, body = post(runner, f"filers/primary/{env.filer_name}/readd")
    assert status == 409 and "nothing to re-add" in body["error"], body
    assert world(env, runner) == before


@pytest.mark.parametrize(
    "case",
    [
        (None, "no plan"),  # missing
        ("{not json", "not valid JSON"),
        ("rpo", "rpo_hours"),  # valid JSON, invalid plan: the field is named too
    ],
)
def test_a_missing_or_invalid_plan_is_a_500_naming_the_setting(
    app_env: AppEnv,
    app_runner: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str | None, str],
) -> None:
    env, runner = app_env, app_runner
    value, named = case
    before = world(env, runner)
    if value is None:
        monkeypatch.delenv("VFXTDR_PLAN")
    elif value == "rpo":
        monkeypatch.setenv("VFXTDR_PLAN", json.dumps({**env.plan_json, "rpo_hours": -3}))
    else:
        monkeypatch.setenv("VFXTDR_PLAN", value)
    for path in (
        f"backups/primary/{env.filer_name}",
        f"backups/primary/{env.filer_name}?dryRun=true",
        f"filers/primary/{env.filer_name}/readd",
        f"failovers/primary/{env.filer_name}",
    ):
        status, body = post(runner, path)
        assert status == 500, (path, body)
        assert "VFXTDR_PLAN" in body["error"] and named in body["error"], (path, body)
    # The timer starts nothing either, and its log line says the same.
    caplog.set_level(logging.INFO)
    runner.trigger("tick")
    assert any("tick skipped" in r.getMessage() and "VFXTDR_PLAN" in r.getMessage() for r in caplog.records)
    runner.run_until_idle(timeout=30)
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(env.plan_json))
    assert world(env, runner) == before
