"""A backup run on a cluster whose answers cannot be taken at face value: a flush reported done with files still
dirty, a dirty-file count that cannot be read, a key status without its key id. The run never removes the filer
without positive evidence that it is clean, and never rotates a key it cannot see."""

from __future__ import annotations

from typing import Any

from shared.runbook.payloads import RunStep
from tests.fixtures.workflow import AppEnv, Host, start_run
from tests.integration.workflow.test_workflow_compensation import seed, start, step


def _log(env: AppEnv, method: str, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in env.client().call("sim.callLog", since) if e["method"] == method]


def _removed_while_dirty(env: AppEnv) -> list[dict[str, Any]]:
    """Every corefiler.remove that started while the cluster still counted dirty files (none may exist)."""
    return [e for e in _log(env, "corefiler.remove") if "activity" in e and e["numFiles"] > 0]


def _custom(runner: Any, instance: str) -> dict[str, Any]:
    return (runner.status(instance) or {}).get("customStatus") or {}


def _nothing_removed(env: AppEnv, status: dict[str, Any]) -> None:
    assert not _log(env, "vserver.removeJunction") and not _log(env, "corefiler.remove"), status
    assert env.client().filer_state(env.filer_name) == "online"
    info = env.client().call("corefiler.get", env.filer_name)[env.filer_name]
    assert info["clientSuspend"] == "no", "clients left suspended"
    assert [j.path for j in env.client().capture_core_filer(env.filer_name).junctions] == ["/data", "/scratch"]
    with env.catalog() as catalog:
        assert catalog.load(env.filer).removed_by_app is None


def test_a_flush_reported_done_with_files_dirty_is_waited_out_until_clean(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    seed(env)
    env.write("/scratch/late.txt", b"rewritten by a client as the flush started")
    env.client().call("sim.injectFault", {"method": "corefiler.flush", "action": "leaveDirty", "files": 1})
    runner = durable_runner(function_app.app, clock=env.clock)
    instance = start(runner, env)

    def flushed_but_dirty() -> bool:
        """The run has seen the flush activity succeed (100%) with a file dirty, and waits on its timer (or,
        wrongly, went on to the removal: then stop at once and let the assertions say so). It reads the run's
        status only: the runner's thread calls it too, so it must not share the test's cluster client."""
        custom = _custom(runner, instance)
        seen = custom.get("step") == "flush" and custom.get("flush_percent") == 100 and custom.get("dirty_files") == 1
        return (runner.is_idle() and seen) or custom.get("step") in ("removing_junctions", "removing_filer")

    # The flush activity ends in success while a file is still dirty: the run stays in its flush wait.
    runner.run_until(flushed_but_dirty, timeout=180)
    assert step(runner, instance) == "flush"
    assert _log(env, "corefiler.flush")[-1]["injected"] == ["leaveDirty"]
    assert env.client().dirty_files(env.filer_name).num_files == 1
    assert not _log(env, "vserver.removeJunction") and not _log(env, "corefiler.remove")
    env.flush()  # the cluster writes the file back later (here: another flush), and only then is it clean
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["status"] == "verified"
    assert _log(env, "corefiler.remove") and not _removed_while_dirty(env)
    assert env.read("/scratch/late.txt") == b"rewritten by a client as the flush started"


def test_a_flush_that_never_gets_clean_fails_at_max_offline_with_nothing_removed(make_app_env, durable_runner) -> None:
    import function_app

    env = make_app_env(edit_plan=lambda p: p["filers"][0].update(max_offline_minutes=2))
    seed(env)
    env.write("/scratch/late.txt", b"still dirty")
    env.client().call("sim.injectFault", {"method": "corefiler.flush", "action": "leaveDirty", "files": 1})
    runner = durable_runner(function_app.app, clock=env.clock)
    status = runner.wait_for(start(runner, env), timeout=240)
    assert status["runtimeStatus"] == "Failed", status
    assert "not known clean after max_offline (2 min)" in status["output"] and "1 dirty file" in status["output"]
    assert "nothing removed" in status["output"]
    _nothing_removed(env, status)
    assert env.client().dirty_files(env.filer_name).num_files == 1  # still in the cache, not lost


def test_an_unreadable_dirty_file_count_never_counts_as_clean(make_app_env, durable_runner) -> None:
    import function_app

    env = make_app_env(edit_plan=lambda p: p["filers"][0].update(max_offline_minutes=2))
    seed(env)
    env.client().call(
        "sim.injectFault",
        {
            "method": "corefiler.modifiedFilesInfo",
            "action": "rewrite",
            "path": "numFiles",
            "op": "set",
            "value": "none",
            "count": 1000,
        },
    )
    runner = durable_runner(function_app.app, clock=env.clock)
    status = runner.wait_for(start(runner, env), timeout=240)
    env.client().call("sim.clearFaults")
    assert status["runtimeStatus"] == "Failed", status
    assert "no readable numFiles" in status["output"] and "nothing removed" in status["output"]
    _nothing_removed(env, status)
    assert env.client().dirty_files(env.filer_name).num_files == 0  # it was clean: the run could not know


def test_a_key_status_without_the_active_key_id_stops_the_rotation_before_anything_changes(
    app_env: AppEnv, durable_runner
) -> None:
    import function_app

    env = app_env
    seed(env)
    env.client().call(
        "sim.injectFault",
        {
            "method": "corefiler.masterKeyStatus",
            "action": "rewrite",
            "path": "activeMasterKeyId",
            "op": "drop",
            "count": 1000,
        },
    )
    since = len(env.client().call("sim.callLog"))
    runner = durable_runner(function_app.app, clock=env.clock)
    status = runner.wait_for(start(runner, env), timeout=240)
    env.client().call("sim.clearFaults")
    assert status["runtimeStatus"] == "Failed", status
    assert "no readable activeMasterKeyId" in status["output"] and "old key stays active" in status["output"]
    assert not _log(env, "corefiler.generateMasterKey", since)  # no key was generated
    assert not _log(env, "corefiler.flush", since) and not _log(env, "corefiler.modify", since)  # not suspended
    assert env.client().master_key_status(env.filer_name).active_key_id == env.demo.key.key_id
    _nothing_removed(env, status)


def test_the_flush_step_never_reports_done_on_a_successful_flush_alone(app_env: AppEnv) -> None:
    """The activity itself, on the same fault: success of the flush activity is not evidence of clean."""
    env, host = app_env, Host()
    env.write("/scratch/late.txt", b"dirty")
    env.client().call("sim.injectFault", {"method": "corefiler.flush", "action": "leaveDirty", "files": 1})
    run = start_run(env, host, "backup", "f1")
    host("begin_backup", run)
    started = host("suspend_and_flush", run)
    env.wait(started.activity_ids)
    status = host("flush_status", RunStep(run, started.activity_ids))
    assert status.percent == 100 and not status.failed  # the cluster says the flush succeeded
    assert not status.done and status.dirty_files == 1 and "1 dirty file" in status.detail
