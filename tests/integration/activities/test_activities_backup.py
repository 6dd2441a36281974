"""The backup runbook and a failover, activity by activity, on the local stack (clusters on a virtual clock)."""

from __future__ import annotations

import os

from shared.catalog.store import ATTACHED, VERIFIED
from shared.runbook.failover_payloads import BackupPageRef, BackupRef, ChooseBackup, FailoverRecordRef
from shared.runbook.home import reprotect_containers
from shared.runbook.payloads import AttachRef, RunStep
from tests.fixtures.copy import blob_view
from tests.fixtures.workflow import Host, attach_until_done, backup_by_hand, start_run, until

FILES = {
    "/data/readme.txt": b"hello from the primary region\n",
    "/data/deep/er/nested/file.bin": os.urandom(2500),
    "/data/large.bin": os.urandom(3 * 1024 * 1024 + 17),  # several chunk objects
    "/scratch/log.txt": b"line\n" * 200,
}


def test_backup_then_failover_reads_every_file_back(app_env):
    env, host = app_env, Host()
    for path, data in FILES.items():
        env.write(path, data)
    env.flush()
    late = {"/data/late.txt": b"written while the pre-copy ran: dirty until the flush"}

    def write_late() -> None:
        for path, data in late.items():
            env.write(path, data)

    backup = backup_by_hand(env, host, "b1", during_precopy=write_late)
    files = {**FILES, **late}

    # The backup: generation a, verified, exactly the source's blobs as of the flush.
    assert (backup.target.generation, backup.target.previous_manifest) == ("a", None)
    assert backup.precopy is not None and backup.precopy.verified and backup.final.verified
    assert backup.final.manifest_state == "complete"
    assert blob_view(env.backup_container("a")) == blob_view(env.source_container())
    assert not env.backup_container("b").exists()  # the other generation is not touched
    assert backup.entry["status"] == "verified" and backup.entry["manifest"] == "b1-final"
    assert backup.entry["key"]["version"] == backup.rotation.secret.version
    assert backup.entry["timings"] == {"offline_s": 1.0, "precopy_s": 2.5}
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
        assert state.latest_verified == "a" and state.generations["a"].status == VERIFIED
        assert state.generations["a"].key == backup.rotation.secret
        assert state.removed_by_app is None and state.needs_attention is None
        assert catalog.record(env.filer, "b1") == backup.record

    # Re-added with all junctions, serving again, every file readable on the primary.
    phases = [
        p for i, p in enumerate(s.phase for s in backup.attach_steps) if i == 0 or backup.attach_steps[i - 1].phase != p
    ]
    assert phases == ["creating", "keys", "junctions", "unsuspending", "done"]
    assert sorted(p for m in backup.attach_steps[-1].mounts for p in m.paths) == ["/data", "/scratch"]
    for path, data in files.items():
        assert env.read(path) == data

    # Failover: choose, verify the backup without its source, mark it attached, attach to DR, record.
    failover = start_run(env, host, "failover", "f1")
    choice = host("choose_backup", ChooseBackup(failover))
    assert (choice.backup_id, choice.generation, choice.target_cluster) == ("b1", "a", "dr")
    assert choice.junctions == ("/data", "/scratch")
    page, checks = 0, []
    while True:
        check = host("verify_backup_page", BackupPageRef(failover, "b1", page))
        checks.append(check)
        if check.last:
            break
        page += 1
    assert sum(c.checked for c in checks) > 0 and not any(c.mismatches or c.missing for c in checks)
    host("mark_attached", BackupRef(failover, "b1"))
    with env.catalog() as catalog:
        attached = catalog.load(env.filer).generations["a"]
        assert attached.status == ATTACHED and attached.attached_to["instance_id"] == failover.instance_id
    steps = attach_until_done(AttachRef(failover, backup_id="b1"), env.clock, host)
    mounts = steps[-1].mounts
    assert mounts and all(a.startswith("10.") for m in mounts for a in m.addresses)
    host("record_failover", FailoverRecordRef(failover, "b1"))
    with env.catalog() as catalog:
        mark = catalog.load(env.filer).failed_over
        assert (mark["target_cluster"], mark["backup_id"], mark["junctions"]) == ("dr", "b1", ["/data", "/scratch"])
    for path, data in files.items():
        assert env.read(path, cluster="dr") == data, path

    # From now on a backup re-protects the filer: from the DR cluster into the primary region's re-protect
    # containers, never into the attached container (its source now).
    later = start_run(env, host, "backup", "b2", reason="schedule")
    found = host("preflight", later)
    assert found.ok, [f for f in found.findings if not f.ok]
    target = host("begin_backup", later)
    assert target.container in reprotect_containers(env.filer) and target.container != attached.container


def test_monitor_steps_report_progress_on_the_virtual_clock(app_env):
    """flush_status waits for the flush and for dirty files; remove_status for junctions, then the filer."""
    env, host = app_env, Host()
    env.write("/data/big.bin", os.urandom(6 * 1024 * 1024))  # takes > 1 s of cluster time to write back
    run = start_run(env, host, "backup", "m1")
    host("begin_backup", run)
    host("capture_filer", run)
    started = host("suspend_and_flush", run)
    first = host("flush_status", RunStep(run, started.activity_ids))
    assert not first.done and not first.failed and first.dirty_files == 1
    done = until(lambda: host("flush_status", RunStep(run, started.activity_ids)), lambda s: s.done, env.clock)
    assert done.dirty_files == 0 and done.percent == 100
    # Clients are suspended while the filer is flushed.
    info = env.client().call("corefiler.get", env.filer_name)[env.filer_name]
    assert info["clientSuspend"] in ("yes", True)

    host("mark_removed", run)
    ids = host("remove_junctions", run).activity_ids
    assert len(ids) == 2
    status = host("remove_status", RunStep(run, ids))
    assert not status.done and status.admin_state != "removed"
    status = until(lambda: host("remove_status", RunStep(run, ids)), lambda s: s.done, env.clock)
    assert status.junctions == 0 and status.admin_state != "removed"
    ids = host("remove_filer", run).activity_ids
    status = until(lambda: host("remove_status", RunStep(run, ids)), lambda s: s.done, env.clock)
    assert status.admin_state == "removed"
    # Removing again is a no-op that reports success; the app never invalidated anything.
    again = host("remove_filer", run)
    assert again.activity_ids == ("success",)
    assert host("remove_status", RunStep(run, again.activity_ids)).done
    methods = {c.get("method") for c in env.client().call("sim.callLog")}
    assert "corefiler.invalidate" not in methods
