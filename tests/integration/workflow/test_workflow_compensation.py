"""The backup workflow when things go wrong or change under it: pre-copy under writes, a copy failing after
the removal, a re-add that keeps failing (NEEDS_ATTENTION, then `readd`), a cancel mid-copy, an unsuspend that fails."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.faultproxy.proxy import FaultProxy
from shared.runbook.payloads import NEEDS_ATTENTION
from tests.fixtures.durable import http_call
from tests.fixtures.secrets import assert_no_leak
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_backup import blobs

BIG = bytes(range(256)) * 6000  # 1.5 MB: two objects in the container


@pytest.fixture
def proxied_env(make_app_env: Callable[..., AppEnv], faults: FaultProxy) -> Iterator[AppEnv]:
    """An app environment whose view of both accounts goes through the fault proxy."""

    def via_proxy(plan: dict[str, Any]) -> None:
        for filer in plan["filers"]:
            for side in ("source", "backup"):
                filer[side]["blob_endpoint"] = faults.account_url(filer[side]["account"])

    yield make_app_env(edit_plan=via_proxy)


def start(runner: Any, env: AppEnv) -> str:
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    return reply.json()["id"]


def step(runner: Any, instance: str) -> str | None:
    status = runner.status(instance)
    return ((status or {}).get("customStatus") or {}).get("step")


def at_rest_in(runner: Any, instance: str, *steps: str) -> Callable[[], bool]:
    """The run reached one of steps and waits on a durable timer (nothing runs until the clock moves)."""
    return lambda: step(runner, instance) in steps and runner.is_idle()


def seed(env: AppEnv) -> None:
    env.write("/data/big.bin", BIG)
    env.write("/data/a/b/c.txt", b"deep")
    env.write("/scratch/notes.md", b"# notes")
    env.flush()


def test_precopy_while_clients_write_ends_exactly_as_of_the_flush(
    proxied_env: AppEnv, faults: FaultProxy, durable_runner
) -> None:
    import function_app

    env = proxied_env
    seed(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    # The pre-copy's copies stay pending for a few polls: clients keep working meanwhile.
    faults.add_rule("pending", account=env.filer.backup.account, polls=3)
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "precopy"), timeout=60)
    env.write("/data/big.bin", BIG[::-1])  # changed while the pre-copy runs
    env.write("/data/new-during-precopy.txt", b"new")  # dirty until the flush
    faults.clear()
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["status"] == "verified"
    assert out["precopy_s"] >= 0 and out["offline_s"] > 0
    assert env.client().dirty_files(env.filer_name).num_files == 0
    # The backup is the container as of the flush: the changed and the new file included, nothing else.
    assert blobs(env.backup_container(out["generation"])) == blobs(env.source_container())
    assert out["copied"] >= 1  # the delta reached the backup after the flush, not only the pre-copy
    assert env.read("/data/big.bin") == BIG[::-1]


def test_copy_failing_after_removal_readds_and_keeps_the_other_generation(
    proxied_env: AppEnv, faults: FaultProxy, durable_runner
) -> None:
    import function_app

    env = proxied_env
    seed(env)
    before = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    first = runner.wait_for(start(runner, env), timeout=240)
    assert first["output"]["status"] == "verified"
    good = first["output"]["generation"]
    kept = blobs(env.backup_container(good))
    env.write("/data/after-first.bin", BIG)  # dirty: reaches the container at the flush, copied after removal
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "removing_junctions", "removing_filer"), timeout=60)
    # From the removal on, every copy into the generation being written fails (the service's async failure).
    other = env.filer.backup.containers[1 - "ab".index(good)]
    faults.add_rule("pending", container=other, polls=1, outcome="failed")
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Failed"
    assert "copy" in status["output"]
    after = env.client().capture_core_filer(env.filer_name)
    assert env.client().filer_state(env.filer_name) == "online"
    assert after.junctions == before.junctions and after.bucket == before.bucket
    assert blobs(env.backup_container(good)) == kept  # the last good backup is untouched
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    assert state.latest_verified == good and state.generations[good].status == "verified"
    assert state.generations["ab"[1 - "ab".index(good)]].status == "failed"
    assert state.removed_by_app is None and state.needs_attention is None
    assert env.read("/data/after-first.bin") == BIG


def test_readd_that_keeps_failing_needs_attention_then_readd_recovers(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    seed(env)
    before = env.client().capture_core_filer(env.filer_name)
    env.client().call("sim.injectFault", "corefiler.createCloudFiler", 105, "injected: cluster not ready", 1000)
    runner = durable_runner(function_app.app, clock=env.clock)
    instance = start(runner, env)
    with caplog.at_level(logging.ERROR):
        status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Failed"
    assert NEEDS_ATTENTION in status["output"] and env.filer_name in status["output"]
    custom = status["customStatus"]
    assert custom["step"] == NEEDS_ATTENTION and custom["record"]["name"] == env.filer_name
    assert [r for r in caplog.records if NEEDS_ATTENTION in r.getMessage()], "no alert line was logged"
    assert env.filer_name not in env.client().list_core_filers()
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    assert state.needs_attention and state.needs_attention["record"]["name"] == env.filer_name
    # The failure path's record, output, status and alert line carry no secret either.
    assert_no_leak(env, runner, logs=caplog.text)
    # Refused while it needs attention; recovered by the readd route once the cluster is fixed.
    assert http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}").status == 409
    env.client().call("sim.injectFault", "corefiler.createCloudFiler", 105, "cleared", 0)
    reply = http_call("POST", f"{runner.base_url}/api/filers/primary/{env.filer_name}/readd")
    assert reply.status == 202, reply.body
    readd = runner.wait_for(reply.json()["id"], timeout=240)
    assert readd["runtimeStatus"] == "Completed", readd
    assert readd["output"]["status"] == "readded"
    after = env.client().capture_core_filer(env.filer_name)
    assert after.junctions == before.junctions
    assert env.read("/data/a/b/c.txt") == b"deep" and env.read("/data/big.bin") == BIG
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    assert state.needs_attention is None and state.removed_by_app is None


def test_cancel_mid_copy_readds_the_filer(proxied_env: AppEnv, faults: FaultProxy, durable_runner) -> None:
    import function_app

    env = proxied_env
    seed(env)
    env.write("/data/dirty.bin", BIG)  # copied only after the removal
    before = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "removing_junctions", "removing_filer"), timeout=60)
    faults.add_rule("pending", account=env.filer.backup.account, polls=None)  # copies never finish
    runner.run_until(at_rest_in(runner, instance, "copy"), timeout=60)
    reply = http_call("POST", f"{runner.base_url}/api/runs/{instance}/cancel")  # the app's own cancel route
    assert reply.status == 202, reply.body
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["status"] == "cancelled" and status["output"]["fenced"] is None
    assert env.client().filer_state(env.filer_name) == "online"
    assert env.client().capture_core_filer(env.filer_name).junctions == before.junctions
    assert env.read("/data/dirty.bin") == BIG
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    assert state.latest_verified is None and state.removed_by_app is None


def test_unsuspend_failing_after_a_cancel_is_reported_not_swallowed(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    seed(env)
    env.write("/data/dirty.bin", BIG)
    runner = durable_runner(function_app.app, clock=env.clock)
    instance = start(runner, env)
    runner.run_until(at_rest_in(runner, instance, "flush"), timeout=60)
    info = env.client().call("corefiler.get", env.filer_name)[env.filer_name]
    assert info["clientSuspend"] == "yes"
    env.client().call("sim.injectFault", "corefiler.modify", 105, "injected: modify refused", 1000)
    runner.raise_event(instance, "cancel", {"reason": "operator"})
    status = runner.wait_for(instance, timeout=240)
    env.client().call("sim.injectFault", "corefiler.modify", 105, "cleared", 0)
    assert status["runtimeStatus"] == "Failed", status
    assert "STILL SUSPENDED" in status["output"] and env.filer_name in status["output"]
    assert "clientSuspend" in status["output"]  # says what to do
    info = env.client().call("corefiler.get", env.filer_name)[env.filer_name]
    assert info["clientSuspend"] == "yes" and env.client().filer_state(env.filer_name) != "removed"
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
        entry = catalog.backup(env.filer, (state.last_run or {}).get("backup_id", "?")) or {}
    assert state.removed_by_app is None
    assert entry.get("status") == "cancelled" and "unsuspending the clients failed" in entry["error"], entry
    assert "clients unsuspended" not in status["output"]  # the message never contradicts itself
    assert_no_leak(env, runner)


def test_flush_failing_to_start_after_the_suspend_unsuspends_the_clients(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    seed(env)
    env.client().call("sim.injectFault", "corefiler.flush", 105, "injected: flush refused", 1000)
    runner = durable_runner(function_app.app, clock=env.clock)
    status = runner.wait_for(start(runner, env), timeout=240)
    env.client().call("sim.injectFault", "corefiler.flush", 105, "cleared", 0)
    assert status["runtimeStatus"] == "Failed", status
    assert "flush refused" in status["output"] and "clients unsuspended" in status["output"]
    info = env.client().call("corefiler.get", env.filer_name)[env.filer_name]
    assert info["clientSuspend"] == "no", f"clients left suspended; the run said: {status['output']}"
    assert env.client().filer_state(env.filer_name) == "online"


def test_a_failed_key_rotation_stops_before_anything_is_removed_and_leaks_nothing(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app
    from shared.runbook.key_secret import key_secret_name

    env = app_env
    seed(env)
    name = key_secret_name("primary", env.filer_name)
    env.keyvault.clear_faults()
    env.keyvault.add_fault("error", method="PUT", path=f"/secrets/{name}", status=500, times=None)
    runner = durable_runner(function_app.app, clock=env.clock)
    try:
        with caplog.at_level(logging.DEBUG):
            status = runner.wait_for(start(runner, env), timeout=240)
    finally:
        env.keyvault.clear_faults()
    assert status["runtimeStatus"] == "Failed", status
    assert "NOT activated" in status["output"] and env.filer_name in status["output"]
    assert env.client().filer_state(env.filer_name) == "online"  # nothing was suspended or removed
    assert env.client().master_key_status(env.filer_name).active_key_id == env.demo.key.key_id
    assert_no_leak(env, runner, logs=caplog.text)
