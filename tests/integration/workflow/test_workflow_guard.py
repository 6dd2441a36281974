"""The mass-deletion guard: a mirror that would delete too much waits for `approve_deletes` with the filer
already back online; approved, exactly the listed deletes are applied; on timeout the extras are kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.runbook.payloads import backup_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_backup import blobs
from tests.integration.workflow.test_workflow_compensation import at_rest_in, start

FILES = [f"/data/set/file-{i:02d}.txt" for i in range(20)]


@pytest.fixture
def guarded_env(make_app_env: Callable[..., AppEnv]) -> AppEnv:
    def guard(plan: dict[str, Any]) -> None:
        plan["guard"] = {"max_delete_fraction": 0.10, "min_count": 0, "approval_timeout_hours": 1}

    return make_app_env(edit_plan=guard)


def backup(runner: Any, env: AppEnv) -> dict:
    status = runner.wait_for(start(runner, env), timeout=240)
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


def prepare(env: AppEnv, runner: Any) -> str:
    """Two verified generations; then most files deleted: the next run writes into the older generation,
    which still holds them (extras far above 10%). Returns that generation."""
    for i, path in enumerate(FILES):
        env.write(path, f"content {i}".encode())
    env.flush()
    first = backup(runner, env)
    second = backup(runner, env)
    assert {first["generation"], second["generation"]} == {"a", "b"}
    for path in FILES[:15]:
        env.client().call("sim.deleteFile", "vserver", path)
    env.flush()
    return first["generation"]


def approve(runner: Any, instance: str, body: Any, raw: bytes | None = None) -> tuple[int, Any]:
    """POST /api/runs/{id}/approve-deletes as an operator App Service authentication names."""
    reply = http_call(
        "POST",
        f"{runner.base_url}/api/runs/{instance}/approve-deletes",
        body,
        raw=raw,
        headers={"X-MS-CLIENT-PRINCIPAL-NAME": "operator@example"},
    )
    assert runner.system_key not in reply.body.decode(errors="replace")
    return reply.status, reply.json()


def test_approved_deletes_are_applied_exactly(guarded_env: AppEnv, durable_runner, platform_auth) -> None:
    import function_app

    env = guarded_env
    runner = durable_runner(function_app.app, clock=env.clock)
    older = prepare(env, runner)
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "awaiting_approval"), timeout=120)
    custom = runner.status(instance)["customStatus"]
    assert custom["delete_candidates"] >= 15
    # The filer is back online before anyone is asked to approve.
    assert env.client().filer_state(env.filer_name) == "online"
    assert len(blobs(env.backup_container(older))) > len(blobs(env.source_container()))
    # The run's status says where to approve and which reference to echo.
    seen = http_call("GET", f"{runner.base_url}/api/runs/{instance}").json()
    assert seen["approveDeletesUri"] == f"{runner.base_url}/api/runs/{instance}/approve-deletes"
    assert seen["approvalRef"] == custom["approval_ref"]
    status, body = approve(runner, instance, {"approval_ref": custom["approval_ref"]})
    assert status == 202, body
    assert body["by"] == "operator@example"
    status = runner.wait_for(instance, timeout=120)
    out = status["output"]
    assert out["status"] == "verified" and out["generation"] == older
    assert out["deleted"] >= 15
    assert blobs(env.backup_container(older)) == blobs(env.source_container())
    # Who approved is in the run's output and in the catalog's entry of the backup.
    decision = {"decision": "approved", "by": "operator@example", "approval_ref": custom["approval_ref"]}
    assert out["deletes_approval"] == decision
    assert env.catalog().backup(env.filer, out["backup_id"])["deletes_approval"] == decision


def test_the_approval_route_refuses_what_does_not_name_the_run_waiting_for_it(
    guarded_env: AppEnv, durable_runner
) -> None:
    import function_app

    env = guarded_env
    runner = durable_runner(function_app.app, clock=env.clock)
    older = prepare(env, runner)
    finished = backup_instance_id("primary", env.filer_name)
    status, body = approve(runner, finished, {"approval_ref": "anything"})
    assert status == 409 and "not awaiting" in body["error"], body  # a finished run
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "awaiting_approval"), timeout=120)
    ref = runner.status(instance)["customStatus"]["approval_ref"]
    for bad, named in (
        (None, "must be JSON"),
        ({"approval_ref": ref, "approve": False}, "exactly"),
        ([ref], "exactly"),
        ({"approval_ref": ""}, "non-empty"),
        ({"approval_ref": 7}, "non-empty"),
        ({"approval_ref": ref + "x"}, "does not match"),
    ):
        status, body = approve(runner, instance, bad, raw=b"{not json" if bad is None else None)
        assert status == 400 and named in body["error"], (bad, body)
    assert runner.status(instance)["customStatus"]["step"] == "awaiting_approval"  # nothing was raised
    assert approve(runner, f"readd~primary~{env.filer_name}", {"approval_ref": ref})[0] == 404
    out = runner.wait_for(instance, timeout=120)["output"]  # the approval times out: the extras stay
    assert out["status"] == "verified_with_extras" and out["generation"] == older
    assert out["deletes_approval"]["decision"] == "timed_out"


def test_unapproved_deletes_time_out_and_the_extras_stay(guarded_env: AppEnv, durable_runner) -> None:
    import function_app

    env = guarded_env
    runner = durable_runner(function_app.app, clock=env.clock)
    older = prepare(env, runner)
    extras_before = set(blobs(env.backup_container(older))) - set(blobs(env.source_container()))
    status = runner.wait_for(start(runner, env), timeout=120)  # the virtual clock passes the 1 h timeout
    out = status["output"]
    assert status["runtimeStatus"] == "Completed"
    assert out["status"] == "verified_with_extras" and out["extras"] >= 15
    backup_now, source_now = blobs(env.backup_container(older)), blobs(env.source_container())
    assert set(backup_now) - set(source_now) == extras_before  # kept, exactly those
    assert {k: v for k, v in backup_now.items() if k in source_now} == source_now  # the rest exact
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    assert state.latest_verified == older and state.generations[older].extras


def test_a_backup_verified_with_extras_fails_over(guarded_env: AppEnv, durable_runner) -> None:
    import function_app

    env = guarded_env
    runner = durable_runner(function_app.app, clock=env.clock)
    older = prepare(env, runner)
    out = runner.wait_for(start(runner, env), timeout=120)["output"]  # the approval times out
    assert out["status"] == "verified_with_extras" and out["generation"] == older
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    failover = runner.wait_for(reply.json()["id"], timeout=120)
    assert failover["runtimeStatus"] == "Completed", failover["output"]
    assert failover["output"]["backup_id"] == out["backup_id"]
    for i, path in enumerate(FILES[15:], start=15):
        assert env.read(path, cluster="dr") == f"content {i}".encode(), path


def test_an_approval_without_the_run_reference_is_refused_and_said(guarded_env: AppEnv, durable_runner) -> None:
    import function_app

    env = guarded_env
    runner = durable_runner(function_app.app, clock=env.clock)
    older = prepare(env, runner)
    extras_before = set(blobs(env.backup_container(older))) - set(blobs(env.source_container()))
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "awaiting_approval"), timeout=120)
    runner.raise_event(instance, "approve_deletes", {"approve": True})  # no approval_ref: fails closed
    status = runner.wait_for(instance, timeout=120)
    out = status["output"]
    assert out["status"] == "verified_with_extras" and out["extras"] >= 15
    assert set(blobs(env.backup_container(older))) - set(blobs(env.source_container())) == extras_before
