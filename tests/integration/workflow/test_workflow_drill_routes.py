"""The drill routes' refusals, through the local runner: every 4xx names the problem and changes nothing (no
instance, no catalog write, no backup blob, nothing on the DR cluster), and a failover's drill is refused."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.drill_support import backup_now, scratch_containers, write_files


def catalog_blobs(env: AppEnv) -> dict[str, str]:
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


def world(env: AppEnv, runner: Any) -> tuple:
    """What a refused request must leave as it was."""
    instances = sorted((s["instanceId"], s["createdTime"], s["runtimeStatus"]) for s in runner.statuses())
    return (
        instances,
        catalog_blobs(env),
        backup_blobs(env),
        sorted(env.client("dr").list_core_filers()),
        scratch_containers(env),
        env.client().filer_state(env.filer_name),
    )


def post(runner: Any, path: str) -> tuple[int, Any]:
    reply = http_call("POST", f"{runner.base_url}/api/{path}")
    return reply.status, reply.json()


def custom_step(runner: Any, instance_id: str) -> str | None:
    custom = (runner.status(instance_id) or {}).get("customStatus")
    return custom.get("step") if isinstance(custom, dict) else None


def settle(runner: Any, instance_id: str, step: str) -> None:
    """Run until the instance reached step, then until nothing runs (it waits on a timer): a still world."""
    runner.run_until(lambda: custom_step(runner, instance_id) == step, timeout=60)
    runner.run_until_idle(timeout=60)


@pytest.fixture
def app_runner(app_env: AppEnv, durable_runner) -> Any:
    import function_app

    return durable_runner(function_app.app, clock=app_env.clock)


def test_unknown_cluster_filer_target_or_backup_is_404_and_changes_nothing(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    write_files(env)
    backup_now(env, runner)
    before = world(env, runner)
    for path, word in (
        (f"drills/nowhere/{env.filer_name}", "nowhere"),
        ("drills/primary/no-such-filer", "no-such"),
        (f"drills/primary/{env.filer_name}?target=atlantis", "atlantis"),
        (f"drills/primary/{env.filer_name}?target=primary", "primary"),
        (f"drills/primary/{env.filer_name}?backupId=typo", "backup typo"),
        ("drills/nowhere", "nowhere"),
    ):
        status, body = post(runner, path)
        assert status == 404, (path, body)
        assert word in body["error"], (path, body)
    assert world(env, runner) == before


def test_no_verified_backup_is_409_for_one_filer_and_for_the_cluster(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    before = world(env, runner)
    status, body = post(runner, f"drills/primary/{env.filer_name}")
    assert status == 409 and body["error"] == "the filer has no verified backup"
    status, body = post(runner, "drills/primary")
    assert status == 409 and "no filer of cluster primary can be drilled" in body["error"]
    assert f"{env.filer_name}: the filer has no verified backup" in body["error"]
    assert world(env, runner) == before


def test_a_running_drill_a_running_failover_or_an_unverified_backup_is_409(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    write_files(env)
    backup_now(env, runner)

    # A backup being written is named: it is not verified yet.
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    writing = reply.json()["id"]
    settle(runner, writing, "copy")
    backup_id = runner.status(writing)["customStatus"]["backup_id"]
    before = world(env, runner)
    status, body = post(runner, f"drills/primary/{env.filer_name}?backupId={backup_id}")
    assert status == 409 and f"backup {backup_id} is writing, not verified" in body["error"]
    assert world(env, runner) == before
    assert runner.wait_for(writing, timeout=240)["runtimeStatus"] == "Completed"

    # A drill runs: a second one of the filer, or of its cluster while it runs, is refused.
    status, body = post(runner, f"drills/primary/{env.filer_name}")
    assert status == 202, body
    drill = body["id"]
    settle(runner, drill, "attach")
    before = world(env, runner)
    status, body = post(runner, f"drills/primary/{env.filer_name}")
    assert status == 409 and f"{drill} is running" in body["error"]
    status, body = post(runner, "drills/primary")
    assert status == 409 and f"{drill} is running" in body["error"]
    assert world(env, runner) == before
    assert runner.wait_for(drill, timeout=240)["runtimeStatus"] == "Completed"

    # A failover runs: no drill of the filer starts.
    status, body = post(runner, f"failovers/primary/{env.filer_name}")
    assert status == 202, body
    failover = body["id"]
    settle(runner, failover, "attach")
    before = world(env, runner)
    status, body = post(runner, f"drills/primary/{env.filer_name}")
    assert status == 409 and f"{failover} is running" in body["error"]
    assert world(env, runner) == before
    assert runner.wait_for(failover, timeout=240)["runtimeStatus"] == "Completed"

    # Failed over: there is nothing to rehearse any more.
    status, body = post(runner, f"drills/primary/{env.filer_name}")
    assert status == 409 and "failed over to cluster dr" in body["error"]


def test_a_filer_without_a_failover_cluster_needs_a_target(make_app_env, durable_runner) -> None:
    import function_app

    def no_failover(plan: dict[str, Any]) -> None:
        del plan["filers"][0]["failover_cluster"]

    env: AppEnv = make_app_env(edit_plan=no_failover)
    runner = durable_runner(function_app.app, clock=env.clock)
    before = world(env, runner)
    status, body = post(runner, f"drills/primary/{env.filer_name}")
    assert status == 400 and "?target=" in body["error"]
    assert world(env, runner) == before


# Crafted drill inputs started with the system key: tests/integration/security/test_crafted_starts.py (every
# registered orchestration) and test_crafted_activity_inputs.py (every registered activity).
