"""Failover end to end through the local runner: the DR cluster serves the filer from its verified backup, every
file reads back identical, and from then on no backup writes into the attached container."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from devstack.stack.ports import free_port
from shared.catalog.fence import active_fence
from shared.catalog.store import FilerState
from shared.runbook import schedule
from shared.runbook.home import home_of, reprotect_filer
from shared.runbook.payloads import backup_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv

FILES = {
    "/data/big.bin": bytes(range(256)) * 9000,
    "/data/nested/deep/file.txt": b"hello from the primary region",
    "/scratch/report.csv": b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * 3) for i in range(400)),
}
DIRTY = {"/scratch/dirty.log": b"written just before the backup, still dirty when it starts"}


def snapshot(container: ContainerClient) -> dict[str, tuple]:
    """Every blob with what a rewrite would change (etag, last-modified) besides its content properties."""
    out = {}
    for b in container.list_blobs(include=["metadata"]):
        s = b.content_settings
        out[b.name] = (b.etag, b.last_modified, b.size, bytes(s.content_md5 or b""), dict(b.metadata or {}))
    return out


def backup_now(env: AppEnv, runner: Any) -> dict:
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=120)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["status"] == "verified"
    return status["output"]


def write_files(env: AppEnv) -> None:
    for path, data in FILES.items():
        env.write(path, data)
    env.flush()
    for path, data in DIRTY.items():
        env.write(path, data)


def lose_primary_region(env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """The primary cluster stops and the source account is unreachable to the app (a dead endpoint)."""
    env.close()  # drops the test's cluster clients; the DR one is made again on first use
    env.primary.stop()
    plan = json.loads(json.dumps(env.plan_json))
    account = plan["filers"][0]["source"]["account"]
    plan["filers"][0]["source"]["blob_endpoint"] = f"http://127.0.0.1:{free_port()}/{account}"
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(plan))


def test_failover_serves_every_file_from_the_backup_without_the_source(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    captured = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    gen = backup["generation"]

    lose_primary_region(env, monkeypatch)
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=120)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]

    # The DR cluster serves the filer under the same name, with every junction as captured.
    dr = env.client("dr")
    assert env.filer_name in dr.list_core_filers()
    assert dr.filer_state(env.filer_name) == "online"
    served = dr.capture_core_filer(env.filer_name)
    assert served.junctions == captured.junctions
    assert served.bucket == f"{env.filer.backup.account}/{backup['container']}"
    assert {f["path"] for f in env.listing("/", cluster="dr")} == {*FILES, *DIRTY}
    for path, data in {**FILES, **DIRTY}.items():
        assert env.read(path, cluster="dr") == data, path

    # The output says where clients mount it, and that the lost primary is not fenced yet (the tick will).
    assert out["target_cluster"] == "dr" and out["backup_id"] == backup["backup_id"]
    assert out["primary_fence"] == "pending"
    assert sorted(out["junctions"]) == sorted(j.path for j in captured.junctions)
    mounts = out["mounts"]
    assert mounts and all(m["addresses"] for m in mounts)
    assert sorted(p for m in mounts for p in m["paths"]) == sorted(j.path for j in captured.junctions)

    # The catalog marks the container attached and the filer failed over.
    state = env.catalog().load(env.filer)
    assert state.generations[gen].status == "attached"
    assert state.generations[gen].attached_to["target_cluster"] == "dr"
    assert state.failed_over["target_cluster"] == "dr"
    assert active_fence(state)["how"] == "pending"

    # From now on no backup writes into the attached container. The schedule's next backup re-protects the filer
    # from the DR cluster into the primary region's account (docs/lifecycle.md): the attached container is its
    # source, never its destination.
    attached = env.backup_container(gen)
    before = snapshot(attached)
    assert before
    later = datetime.fromtimestamp(env.clock.now(), UTC) + timedelta(days=2)
    decided = schedule.tick(env.plan, {env.filer.key: state}, later, ())
    assert [s.instance_id for s in decided.start] == [backup_instance_id("primary", env.filer_name)]
    assert gen not in reprotect_filer(env.filer, home_of(state, env.filer)).generation_containers()
    assert home_of(state, env.filer).container == attached.container_name
    assert snapshot(attached) == before


def instance_rows(runner: Any) -> list[tuple[str, str, str]]:
    return sorted((s["instanceId"], s["runtimeStatus"], s["createdTime"]) for s in runner.statuses())


def custom_step(runner: Any, instance_id: str) -> str | None:
    status = runner.status(instance_id) or {}
    custom = status.get("customStatus")
    return custom.get("step") if isinstance(custom, dict) else None


def test_failover_while_a_backup_runs_cancels_it_first_and_attaches_the_last_verified_backup(
    app_env: AppEnv, durable_runner, caplog: pytest.LogCaptureFixture
) -> None:
    """What the DR cluster serves; that the cancelled backup leaves the primary fenced is test_workflow_fence.py."""
    import function_app

    env = app_env
    caplog.set_level(logging.INFO)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    first = backup_now(env, runner)
    env.write("/data/after-the-backup.txt", b"only the running backup would hold this")
    env.flush()

    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    running = reply.json()["id"]
    # The clock only moves while the condition is false: the run stops at its copy, the filer removed.
    runner.run_until(lambda: custom_step(runner, running) == "copy", timeout=60)
    assert env.filer_name not in env.client().list_core_filers()
    assert runner.status(running)["runtimeStatus"] == "Running"

    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    failover = runner.wait_for(reply.json()["id"], timeout=120)
    cancelled = runner.wait_for(running, timeout=120)

    assert cancelled["runtimeStatus"] == "Completed", json.dumps(cancelled, indent=1)[:3000]
    assert cancelled["output"]["status"] == "cancelled"
    raised = [e for e in cancelled["historyEvents"] if e["EventType"] == "EventRaised"]
    assert [e["Name"] for e in raised] == ["cancel"]
    assert any("cancelled the running backup" in r.getMessage() for r in caplog.records)

    assert failover["runtimeStatus"] == "Completed", json.dumps(failover, indent=1)[:3000]
    assert failover["output"]["backup_id"] == first["backup_id"]
    for path, data in {**FILES, **DIRTY}.items():
        assert env.read(path, cluster="dr") == data, path
    # Exactly the files of the last verified backup: not the one only the cancelled run saw.
    assert {f["path"] for f in env.listing("/", cluster="dr")} == {*FILES, *DIRTY}
    state = env.catalog().load(env.filer)
    assert state.generations[first["generation"]].status == "attached"
    other = "b" if first["generation"] == "a" else "a"
    assert state.generations[other].status == "failed"  # the cancelled run never counts as a backup
    assert state.needs_attention is None


def test_failover_without_a_verified_backup_is_refused_naming_it_and_changes_nothing(
    app_env: AppEnv, durable_runner
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    before = env.catalog().load(env.filer).to_json()
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 409, reply.body  # refused from the catalog, before anything starts or is cancelled
    assert "no verified backup" in reply.json()["error"]
    assert runner.statuses() == []
    assert env.filer_name not in env.client("dr").list_core_filers()
    assert env.catalog().load(env.filer).to_json() == before
    # The primary keeps serving: a failover that found nothing to attach touched nothing there either.
    assert env.client().filer_state(env.filer_name) == "online"


def test_failover_naming_an_unknown_backup_is_refused_and_the_running_backup_goes_on(
    app_env: AppEnv, durable_runner
) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    running = reply.json()["id"]
    runner.run_until(lambda: custom_step(runner, running) == "copy", timeout=60)
    before = env.catalog().load(env.filer).to_json()
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}?backupId=typo")
    assert reply.status == 404, reply.body
    assert "backup typo is not held by any backup generation" in reply.json()["error"]
    assert env.catalog().load(env.filer).to_json() == before
    done = runner.wait_for(running, timeout=240)
    assert done["runtimeStatus"] == "Completed" and done["output"]["status"] == "verified", done["output"]
    assert [e["Name"] for e in done["historyEvents"] if e["EventType"] == "EventRaised"] == []
    assert env.filer_name not in env.client("dr").list_core_filers()


def test_catalog_rules_for_a_failover_request() -> None:
    from shared.catalog.store import ATTACHED, VERIFIED
    from shared.runbook.blockers import Reason
    from shared.runbook.failover import failover_blocker
    from triggers.common import refusal

    def answer(state: FilerState, backup_id: str | None, target: str) -> tuple[int, str] | None:
        """What the route answers (HTTP status, message) for the catalog's reason, or None: it goes on."""
        blocked = failover_blocker(state, backup_id, target)
        if blocked is None:
            return None
        refused = refusal(blocked)
        return refused.status, str(refused)

    state = FilerState.new(("fs-a", "fs-b"))
    assert answer(state, None, "dr") == (409, "the filer has no verified backup")
    assert failover_blocker(state, None, "dr").reason is Reason.NO_VERIFIED_BACKUP
    a, b = state.generations["a"], state.generations["b"]
    a.status, a.backup_id, a.manifest = VERIFIED, "new", "job-new"
    b.status, b.backup_id, b.manifest = VERIFIED, "old", "job-old"
    assert answer(state, None, "dr") is None
    assert answer(state, "old", "dr") is None
    assert answer(state, "gone", "dr")[0] == 404
    assert failover_blocker(state, "gone", "dr").reason is Reason.UNKNOWN_BACKUP
    # A failover to dr2 began (the newest is attached there): another target without backupId is refused,
    # rather than quietly attaching the older backup; the same target resumes.
    a.status, a.attached_to = ATTACHED, {"target_cluster": "dr2"}
    status, why = answer(state, None, "dr")
    assert status == 409 and "backup new to cluster dr2" in why
    assert failover_blocker(state, None, "dr").reason is Reason.ATTACHED_ELSEWHERE
    assert answer(state, None, "dr2") is None
    assert answer(state, "new", "dr")[0] == 409
    assert failover_blocker(state, "new", "dr").reason is Reason.NOT_VERIFIED
    assert answer(state, "old", "dr") is None  # named explicitly: the operator's choice


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_failover_refuses_a_backup_that_no_longer_matches_its_manifest(
    app_env: AppEnv, durable_runner, damage: str
) -> None:
    """A blob deleted from, or altered in, the verified backup stops the full check before anything is attached."""
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    container = env.backup_container(backup["generation"])
    victim = sorted(b.name for b in container.list_blobs())[0]
    if damage == "missing":
        container.delete_blob(victim)
    else:  # the same bytes, one metadata value changed: the Avere format would no longer read it
        blob = container.get_blob_client(victim)
        metadata = dict(blob.get_blob_properties().metadata)
        metadata[next(iter(metadata))] = "tampered"
        blob.set_blob_metadata(metadata)
    state_before = env.catalog().load(env.filer)

    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}?verify=full")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=120)
    assert status["runtimeStatus"] == "Failed"
    message = json.dumps(status["output"])
    assert ("1 missing" if damage == "missing" else "1 different") in message, message
    assert victim in message
    assert env.filer_name not in env.client("dr").list_core_filers()  # nothing attached at DR
    assert "the primary filer stays fenced" in message
    state = env.catalog().load(env.filer)
    assert not state.failed_over
    assert state.generations[backup["generation"]].status == state_before.generations[backup["generation"]].status
    # The request fenced the primary first thing (its clients suspended), and a failed failover keeps it so:
    # the operator fails over with another backup, or lifts the fence (readd?override=failed-over).
    assert active_fence(state)["how"] == "suspended"
    assert env.client().call("corefiler.get", env.filer_name)[env.filer_name]["clientSuspend"] == "yes"
