"""No split brain after a failover, on the local stack: the primary filer stays fenced (removed, or its clients
suspended) whatever a cancelled backup, reconcile or the readd route would do, the timer fences a primary that
was unreachable at failover time as soon as it can reach it, and only the operator's explicit override brings
the filer back on the primary."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.avere.errors import AvereError
from shared.catalog.fence import active_fence
from shared.catalog.store import FilerState, run_path
from shared.runbook.payloads import backup_instance_id, readd_instance_id
from shared.runbook.refs import INPUT_FORMAT
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_failover import FILES, backup_now, custom_step, write_files

OPERATOR = {"X-MS-CLIENT-PRINCIPAL-NAME": "ops@example.com"}


@pytest.fixture(autouse=True)
def _on_app_service(platform_auth: dict[str, str]) -> None:
    """As on App Service with its authentication on: the operator the platform names is recorded."""


def post(runner: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    reply = http_call("POST", f"{runner.base_url}/api/{path}", headers=headers)
    return reply.status, reply.json()


def state_of(env: AppEnv) -> FilerState:
    with env.catalog() as catalog:
        return catalog.load(env.filer)


def suspended(env: AppEnv) -> bool:
    return env.client().call("corefiler.get", env.filer_name)[env.filer_name]["clientSuspend"] == "yes"


def clients_can_write(env: AppEnv, path: str = "/data/probe.txt") -> bool:
    try:
        env.write(path, b"a client writes")
    except AvereError:
        return False
    return True


def fail_over(env: AppEnv, runner: Any) -> dict:
    status, body = post(runner, f"failovers/primary/{env.filer_name}", OPERATOR)
    assert status == 202, body
    done = runner.wait_for(body["id"], timeout=240)
    assert done["runtimeStatus"] == "Completed", json.dumps(done, indent=1)[:3000]
    return done["output"]


def tick_readds_nothing_at_the_primary(env: AppEnv, runner: Any) -> list[str]:
    """A tick well past the schedule re-adds nothing at the primary: it starts no readd run, and a backup it starts
    re-protects the filer at the DR cluster (its plan snapshot's home is the DR side). The re-protect runs' ids."""
    before = {(s["instanceId"], s["createdTime"]) for s in runner.statuses()}
    env.clock.advance(2 * 86400)
    runner.trigger("tick")
    runner.run_until_idle(timeout=240)
    backup = backup_instance_id("primary", env.filer_name)
    new = {(s["instanceId"], s["createdTime"]) for s in runner.statuses()} - before
    started = sorted(i for i, _ in new if not i.startswith(f"{backup}~"))  # its copy sub-orchestrations aside
    assert all(i == backup for i in started), started
    for instance in started:
        runner.wait_for(instance, timeout=240)  # it ends (verified, or failed at its preflight) without the primary
        with env.catalog() as catalog:
            data, _ = catalog.read_json(run_path("primary", env.filer_name, instance))
        assert data is not None and data["home"]["side"] == "dr", data
    return started


def readd_refused_without_the_override(env: AppEnv, runner: Any) -> None:
    for path in (f"filers/primary/{env.filer_name}/readd", f"filers/primary/{env.filer_name}/readd?override=yes"):
        status, body = post(runner, path, OPERATOR)
        assert status in (400, 409), (path, body)
        assert "override" in body["error"] and "failed-over" in body["error"], body
    assert runner.status(readd_instance_id("primary", env.filer_name)) is None


def lift_with_the_override(env: AppEnv, runner: Any) -> dict:
    status, body = post(runner, f"filers/primary/{env.filer_name}/readd?override=failed-over", OPERATOR)
    assert status == 202, body
    assert body["id"] == readd_instance_id("primary", env.filer_name) and body["cancelUri"] is None
    done = runner.wait_for(body["id"], timeout=240)
    assert done["runtimeStatus"] == "Completed", json.dumps(done, indent=1)[:3000]
    assert done["output"]["status"] == "readded", done["output"]
    fence = state_of(env).fence or {}
    assert active_fence(state_of(env)) is None
    assert fence["lifted"]["by"] == "ops@example.com" and fence["lifted"]["instance_id"] == body["id"]
    return done["output"]


def test_a_backup_cancelled_by_a_failover_leaves_the_filer_removed_until_the_override(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    captured = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    first = backup_now(env, runner)
    status, body = post(runner, f"backups/primary/{env.filer_name}")
    assert status == 202, body
    running = body["id"]
    # The clock only moves while the condition is false: the run stops at its copy, the filer removed.
    runner.run_until(lambda: custom_step(runner, running) == "copy", timeout=60)
    assert env.filer_name not in env.client().list_core_filers()

    out = fail_over(env, runner)
    cancelled = runner.wait_for(running, timeout=240)
    assert cancelled["runtimeStatus"] == "Completed", json.dumps(cancelled, indent=1)[:3000]
    assert cancelled["output"]["status"] == "cancelled"
    assert "fenced after a failover to cluster dr" in cancelled["output"]["fenced"]
    assert out["backup_id"] == first["backup_id"] and out["primary_fence"] == "removed"
    # The cancelled backup did not bring the filer back on the primary: the DR cluster alone serves it.
    assert env.filer_name not in env.client().list_core_filers()
    assert {f["path"] for f in env.listing("/", cluster="dr")} >= set(FILES)
    state = state_of(env)
    fence = active_fence(state)
    assert fence is not None and fence["how"] == "removed" and fence["by"] == "ops@example.com"
    assert state.removed_by_app is not None  # the record the override replays
    entry = env.catalog().backup(env.filer, cancelled["output"]["backup_id"])
    assert entry["status"] == "cancelled" and "not re-added" in entry["error"]

    tick_readds_nothing_at_the_primary(env, runner)  # reconcile holds it, the schedule skips it
    assert env.filer_name not in env.client().list_core_filers()
    assert any("left removed" in r.getMessage() and "override=failed-over" in r.getMessage() for r in caplog.records)
    readd_refused_without_the_override(env, runner)
    status, body = post(runner, f"backups/primary/{env.filer_name}")  # a backup now re-protects it at DR
    assert status == 202, body
    reprotect = runner.wait_for(body["id"], timeout=240)
    assert reprotect["output"]["status"] == "verified", reprotect["output"]
    assert env.filer_name not in env.client().list_core_filers()
    # A re-add run started some other way (a reconcile that raced the failover) leaves it alone, and says so.
    plain = runner.start_new(
        "readd_orchestrator",
        readd_instance_id("primary", env.filer_name),
        {"cluster": "primary", "filer": env.filer_name, "format": INPUT_FORMAT},
    )
    held = runner.wait_for(plain, timeout=120)
    assert held["runtimeStatus"] == "Completed" and held["output"]["status"] == "fenced", held["output"]
    assert env.filer_name not in env.client().list_core_filers()
    # The run's input alone lifts nothing (whoever holds the system key can start a run with any input): the
    # catalog must hold an operator's authorisation for it. (A second run of one instance id within the same
    # second would get the same run id, and with it the first one's snapshot: the clock moves on first.)
    env.clock.advance(1)
    crafted = runner.start_new(
        "readd_orchestrator",
        readd_instance_id("primary", env.filer_name),
        {"cluster": "primary", "filer": env.filer_name, "lift_fence": True, "format": INPUT_FORMAT},
    )
    refused = runner.wait_for(crafted, timeout=120)
    assert refused["runtimeStatus"] == "Failed" and "no operator asked" in json.dumps(refused["output"])
    assert env.filer_name not in env.client().list_core_filers() and active_fence(state_of(env)) is not None

    lift_with_the_override(env, runner)
    assert env.client().filer_state(env.filer_name) == "online" and not suspended(env)
    assert env.client().capture_core_filer(env.filer_name).junctions == captured.junctions
    assert state_of(env).removed_by_app is None


def test_a_backup_cancelled_while_flushing_leaves_the_clients_suspended(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    env.write("/data/dirty-at-the-failover.bin", bytes(range(256)) * 4000)  # the flush has work to do
    status, body = post(runner, f"backups/primary/{env.filer_name}")
    assert status == 202, body
    running = body["id"]
    runner.run_until(lambda: custom_step(runner, running) == "flush" and runner.is_idle(), timeout=60)
    assert suspended(env)

    out = fail_over(env, runner)
    cancelled = runner.wait_for(running, timeout=240)
    assert cancelled["output"]["status"] == "cancelled", cancelled["output"]
    assert "client access suspended" in cancelled["output"]["fenced"]
    assert out["primary_fence"] == "suspended"
    # The compensation did not unsuspend: the primary filer is present, and refuses its clients.
    assert env.client().filer_state(env.filer_name) != "removed" and suspended(env)
    assert not clients_can_write(env)
    assert active_fence(state_of(env))["how"] == "suspended"
    tick_readds_nothing_at_the_primary(env, runner)
    assert suspended(env)
    readd_refused_without_the_override(env, runner)

    lift_with_the_override(env, runner)  # nothing was removed: the lift unsuspends
    assert not suspended(env) and clients_can_write(env)


def test_a_primary_unreachable_at_failover_is_fenced_by_the_first_tick_that_reaches_it(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app
    from devstack.stack.ports import free_port

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    # The app cannot reach the primary cluster (the cluster itself runs on: clients still use it).
    cut = json.loads(json.dumps(env.plan_json))
    cut["clusters"][0]["management_address"] = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(cut))

    out = fail_over(env, runner)
    assert out["primary_fence"] == "pending" and "not fenced yet" in out["primary_fence_detail"]
    assert env.client("dr").filer_state(env.filer_name) == "online"
    assert not suspended(env) and clients_can_write(env)  # not fenced yet: nothing could reach it
    assert active_fence(state_of(env))["how"] == "pending"

    runner.trigger("tick")  # still unreachable: still pending, and nothing else happens
    runner.run_until_idle(timeout=60)
    assert active_fence(state_of(env))["how"] == "pending" and not suspended(env)

    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(env.plan_json))  # reachable again
    tick_readds_nothing_at_the_primary(env, runner)  # the tick fences it, and starts nothing
    assert suspended(env) and not clients_can_write(env)
    fence = active_fence(state_of(env))
    assert fence["how"] == "suspended" and fence["record"]["name"] == env.filer_name
    assert env.client().filer_state(env.filer_name) != "removed"  # suspended, not removed; never invalidated
    assert "corefiler.invalidate" not in json.dumps(env.client().call("sim.callLog"))
    readd_refused_without_the_override(env, runner)

    lift_with_the_override(env, runner)
    assert not suspended(env) and clients_can_write(env)
    assert runner.status(backup_instance_id("primary", env.filer_name))["runtimeStatus"] == "Completed"
