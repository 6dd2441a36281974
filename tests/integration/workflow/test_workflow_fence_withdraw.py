"""A failover route that records a fence and then starts nothing withdraws that fence, on the local stack, unless
something relies on it: a failover run that started meanwhile (it claims the fence) or a fence applied on the
primary meanwhile (it stays, and the answer names the override that lifts it)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.faultproxy.proxy import FaultProxy
from shared.catalog.fence import active_fence
from shared.catalog.store import state_path
from shared.runbook import fence as fencing
from shared.runbook import services
from shared.runbook.payloads import backup_instance_id, failover_instance_id
from tests.fixtures.copy import FAST_RETRY
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_cluster_failover import _second_filer
from tests.integration.workflow.test_workflow_failover import backup_now, write_files
from tests.integration.workflow.test_workflow_fence import clients_can_write, post, state_of, suspended


def _primary_stays_unfenced(env: AppEnv, runner: Any) -> None:
    """No fence left behind: a tick suspends nothing, a backup it starts ends as any backup does (the filer back
    on the primary), and clients of the primary still write."""
    runner.trigger("tick")
    backup = runner.status(backup_instance_id("primary", env.filer_name))
    if backup is not None:
        done = runner.wait_for(backup["instanceId"], timeout=240)
        assert done["runtimeStatus"] == "Completed", json.dumps(done)[:2000]
    assert active_fence(state_of(env)) is None
    assert not suspended(env) and clients_can_write(env)


def test_a_cluster_failover_whose_second_fence_cannot_be_written_withdraws_the_first(
    make_app_env: Callable[..., AppEnv], faults: FaultProxy, durable_runner, request: pytest.FixtureRequest
) -> None:
    import function_app

    def edit(plan: dict[str, Any]) -> None:
        _second_filer(plan)
        for filer in plan["filers"]:
            for side in ("source", "backup"):
                filer[side]["blob_endpoint"] = faults.account_url(filer[side]["account"])

    env = make_app_env(edit_plan=edit)
    write_files(env)
    two = env.plan.filers[1]
    runner = durable_runner(function_app.app, clock=env.clock)
    previous = services.configure(storage_retry=FAST_RETRY)  # a lasting 503 must not cost wall-clock seconds
    request.addfinalizer(lambda: services.restore(previous))
    faults.add_rule(
        "error",
        account=two.backup.account,
        container=env.plan.catalog_container,
        blob=state_path("primary", two.name),
        operation="PutBlob",
        status=503,
        code="ServerBusy",
    )
    status, body = post(runner, "failovers/primary")
    assert status == 503, body
    assert two.key in body["error"] and "cannot be written" in body["error"] and "may stay" not in body["error"]
    assert runner.statuses() == []  # nothing started
    assert state_of(env).fence is None  # the first filer's fence, written before the refusal, is withdrawn
    faults.clear()
    _primary_stays_unfenced(env, runner)


def _start_fails(
    env: AppEnv, runner: Any, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]
) -> tuple[int, Any]:
    """POST a failover of the filer whose start fails (the engine answers 503) after `meanwhile()` ran; the real
    start is put back afterwards. The route's status and body."""
    from triggers import common, http_api

    async def engine_down(*args: Any) -> None:
        await asyncio.to_thread(meanwhile)
        raise common.Refusal(503, "the task hub cannot be reached")

    monkeypatch.setattr(http_api, "start_run", engine_down)
    try:
        return post(runner, f"failovers/primary/{env.filer_name}")
    finally:
        monkeypatch.setattr(http_api, "start_run", common.start_run)


def test_a_failover_the_engine_will_not_start_leaves_no_fence(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)

    def fence_went_first() -> None:
        assert active_fence(state_of(env)) is not None

    status, body = _start_fails(env, runner, monkeypatch, fence_went_first)
    assert status == 503 and "task hub" in body["error"] and "may stay" not in body["error"], body
    assert state_of(env).fence is None
    assert runner.status(failover_instance_id("primary", env.filer_name)) is None
    _primary_stays_unfenced(env, runner)


def test_a_fence_applied_before_the_start_failed_stays_and_the_answer_says_how_to_lift_it(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    # As if a timer tick applied the pending fence between the route's fence and its start.
    status, body = _start_fails(env, runner, monkeypatch, lambda: fencing.apply_fence(env.plan, env.filer))
    assert status == 503, body
    assert f"fence of {env.filer.key} may stay" in body["error"]
    assert "readd?override=failed-over" in body["error"]
    assert active_fence(state_of(env))["how"] == "suspended" and suspended(env)  # fail closed: it stays


def test_two_failover_requests_racing_make_one_run_and_its_fence_stands(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pass the running check and both record the fence; the engine refuses the second start. Whichever
    request loses, the fence the winning run relies on stands (claimed by it, or recorded again by it)."""
    import function_app
    from triggers import http_api

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    checked = threading.Barrier(2, timeout=30)
    real = http_api.running_blocker

    async def both_pass(client: Any, ids: tuple[str, ...], wait: str) -> None:
        await real(client, ids, wait)
        await asyncio.to_thread(checked.wait)

    monkeypatch.setattr(http_api, "running_blocker", both_pass)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: post(runner, f"failovers/primary/{env.filer_name}"), range(2)))
    assert sorted(status for status, _ in replies) == [202, 409], replies
    instance = failover_instance_id("primary", env.filer_name)
    done = runner.wait_for(instance, timeout=240)
    assert done["runtimeStatus"] == "Completed" and done["output"]["target_cluster"] == "dr", json.dumps(done)[:2000]
    assert env.client("dr").filer_state(env.filer_name) == "online"
    fence = active_fence(state_of(env))
    assert fence is not None and fence["claimed"] == instance and fence["how"] == "suspended"
    assert suspended(env) and not clients_can_write(env)
    assert [s["instanceId"] for s in runner.statuses() if s["instanceId"].startswith("failover~")] == [instance]
