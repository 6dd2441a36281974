"""The change guard end to end: after a ransomware-style rewrite of most files, the next run would overwrite most
of its generation. It holds for `approve_changes` with the filer online; unapproved, that generation keeps its
earlier backup exactly (and the catalog still lists it); approved, the run copies and verifies. The newest verified
backup is never touched either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_backup import blobs
from tests.integration.workflow.test_workflow_compensation import at_rest_in, start

FILES = [f"/data/docs/file-{i:02d}.txt" for i in range(20)]


def guarded(short_offline_window: bool) -> Callable[[dict[str, Any]], None]:
    def edit(plan: dict[str, Any]) -> None:
        # Deletes unguarded here (the rewritten files' old chunks go): this is about overwrites.
        plan["guard"] = {
            "max_change_fraction": 0.3,
            "max_delete_fraction": 1.0,
            "min_count": 0,
            "approval_timeout_hours": 1,
        }
        plan["short_offline_window"] = short_offline_window

    return edit


@pytest.fixture
def changes_env(make_app_env: Callable[..., AppEnv]) -> AppEnv:
    return make_app_env(edit_plan=guarded(short_offline_window=True))


def backup(runner: Any, env: AppEnv) -> dict[str, Any]:
    status = runner.wait_for(start(runner, env), timeout=240)
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


def attacked(env: AppEnv, runner: Any) -> tuple[str, str]:
    """Two verified backups (a, b), then 18 of the 20 files rewritten as ransomware would: the next run writes
    into a, whose files it would nearly all overwrite. Returns (the generation it writes, the newest)."""
    for i, path in enumerate(FILES):
        env.write(path, f"report {i}: the real content".encode())
    env.flush()
    first, second = backup(runner, env), backup(runner, env)
    assert (first["status"], second["status"], first["generation"], second["generation"]) == (
        "verified",
        "verified",
        "a",
        "b",
    )
    for path in FILES[:18]:
        env.write(path, b"\x8f\x13 encrypted, pay to get it back " + path.encode())
    env.flush()
    return "a", "b"


def catalog_state(env: AppEnv) -> Any:
    with env.catalog() as catalog:
        return catalog.load(env.filer)


def held_run(env: AppEnv, runner: Any) -> tuple[str, dict[str, Any]]:
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "awaiting_change_approval"), timeout=180)
    custom = runner.status(instance)["customStatus"]
    assert custom["changes"] >= 18 and custom["changes"] > custom["change_limit"]
    assert custom["approval_event"] == "approve_changes" and custom["approval_ref"]
    assert env.client().filer_state(env.filer_name) == "online"  # clients keep working meanwhile
    assert catalog_state(env).removed_by_app is None
    return instance, custom


def test_unapproved_the_generation_keeps_its_earlier_backup(changes_env: AppEnv, durable_runner) -> None:
    import function_app

    env = changes_env
    runner = durable_runner(function_app.app, clock=env.clock)
    target, newest = attacked(env, runner)
    before = {g: blobs(env.backup_container(g)) for g in "ab"}
    state = catalog_state(env)
    kept = state.generations[target].backup_id
    instance, custom = held_run(env, runner)
    assert custom["copy_pass"] == "precopy"
    assert {g: blobs(env.backup_container(g)) for g in "ab"} == before  # nothing overwritten while held
    status = runner.wait_for(instance, timeout=180)  # the virtual clock passes the 1 h timeout
    out = status["output"]
    assert status["runtimeStatus"] == "Completed" and out["status"] == "changes_not_approved", out
    assert out["generation"] == target
    assert {g: blobs(env.backup_container(g)) for g in "ab"} == before  # a as it was, b untouched
    state = catalog_state(env)
    assert state.generations[target].status == "verified" and state.generations[target].backup_id == kept
    assert state.latest_verified == newest
    assert env.client().filer_state(env.filer_name) == "online"
    assert env.read(FILES[0]).startswith(b"\x8f\x13")  # the filer itself is as its clients left it


def test_an_approval_naming_no_reference_is_refused_like_a_timeout(changes_env: AppEnv, durable_runner) -> None:
    import function_app

    env = changes_env
    runner = durable_runner(function_app.app, clock=env.clock)
    target, _ = attacked(env, runner)
    before = blobs(env.backup_container(target))
    instance, _ = held_run(env, runner)
    runner.raise_event(instance, "approve_changes", {"approve": True})  # no approval_ref: fails closed
    out = runner.wait_for(instance, timeout=180)["output"]
    assert out["status"] == "changes_not_approved"
    assert blobs(env.backup_container(target)) == before


def test_approved_the_run_overwrites_and_verifies(changes_env: AppEnv, durable_runner) -> None:
    import function_app

    env = changes_env
    runner = durable_runner(function_app.app, clock=env.clock)
    target, newest = attacked(env, runner)
    newest_before = blobs(env.backup_container(newest))
    instance, custom = held_run(env, runner)
    runner.raise_event(
        instance, "approve_changes", {"approve": True, "approval_ref": custom["approval_ref"], "by": "operator@example"}
    )
    status = runner.wait_for(instance, timeout=240)
    out = status["output"]
    assert status["runtimeStatus"] == "Completed" and out["status"] == "verified", out
    assert out["generation"] == target
    assert blobs(env.backup_container(target)) == blobs(env.source_container())
    assert blobs(env.backup_container(newest)) == newest_before
    assert catalog_state(env).latest_verified == target


def test_a_held_final_pass_re_adds_the_filer_before_it_waits(
    make_app_env: Callable[..., AppEnv], durable_runner
) -> None:
    """Without the online pre-copy the only pass runs while the filer is removed: held, the filer is re-added
    first, then the run waits; unapproved, the generation keeps its earlier backup."""
    import function_app

    env = make_app_env(edit_plan=guarded(short_offline_window=False))
    runner = durable_runner(function_app.app, clock=env.clock)
    target, _ = attacked(env, runner)
    before = blobs(env.backup_container(target))
    instance, custom = held_run(env, runner)
    assert custom["copy_pass"] == "copy"
    assert runner.status(instance)["customStatus"]["offline_s"] > 0  # it had been removed, and is back
    out = runner.wait_for(instance, timeout=180)["output"]
    assert out["status"] == "changes_not_approved"
    assert blobs(env.backup_container(target)) == before
    assert catalog_state(env).generations[target].status == "verified"
