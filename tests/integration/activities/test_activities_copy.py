"""Copy activities on a small container: passes to finish, progress and cancel markers, approved deletes."""

from __future__ import annotations

import pytest

from shared.blobcopy.errors import CopyInputError
from shared.catalog.store import FAILED, VERIFIED
from shared.plan.load import parse_plan
from shared.runbook.copy import backup_jobs
from shared.runbook.payloads import (
    BackupTarget,
    CompleteBackup,
    CopyPageRef,
    CopyRef,
    CopyReport,
    CopyTotals,
    RunContext,
)
from tests.fixtures.copy import blob_view
from tests.fixtures.workflow import Host, run_copy_pass, start_run


def _strict_guard(plan: dict) -> None:
    plan["guard"] = {"max_delete_fraction": 0.0, "min_count": 0}  # every mirrored delete needs approval
    plan["copy"]["page_size"] = 3  # several pages even for a few files


def _backup(env, host, run_id: str):
    """A backup run through its copy passes (no removal: the copy activities do not need one)."""
    run = start_run(env, host, "backup", run_id)
    target = host("begin_backup", run)
    run_copy_pass(run, target.precopy_job, env.clock, host)
    return run, target, run_copy_pass(run, target.final_job, env.clock, host)


def test_copy_passes_progress_cancel_and_approved_deletes(make_app_env):
    env, host = make_app_env(edit_plan=_strict_guard), Host()
    for i in range(4):
        env.write(f"/data/f{i}.txt", f"file {i}\n".encode() * 50)
    env.flush()
    source = env.source_container()

    b1, target, summary = _backup(env, host, "b1")
    assert target.generation == "a"
    assert summary.verified and summary.pages >= 2 and summary.listed > 0
    assert summary.manifest_state == "complete"
    backup = env.container("dr", target.container)
    assert blob_view(backup) == blob_view(source)

    # Progress beside the job, and a cancel marker any later report sees.
    final = CopyRef(b1, target.final_job)
    totals = CopyTotals(pages=summary.pages, listed=summary.listed, copied=summary.copied)
    reported = host("copy_report", CopyReport(b1, target.final_job, totals=totals, finished=True))
    assert (reported.totals, reported.finished, reported.cancelled) == (totals, True, False)
    assert host("copy_progress", final).totals == totals
    host("copy_cancel", final)
    assert host("copy_progress", final).cancelled
    assert host("copy_report", CopyReport(b1, target.final_job, totals=totals)).cancelled
    host("complete_backup", CompleteBackup(b1, status="verified"))

    b2 = start_run(env, host, "backup", "b2")
    second = host("begin_backup", b2)
    assert host("copy_progress", CopyRef(b2, second.final_job)).totals == CopyTotals()  # nothing reported yet
    run_copy_pass(b2, second.precopy_job, env.clock, host)
    run_copy_pass(b2, second.final_job, env.clock, host)
    host("complete_backup", CompleteBackup(b2, status="verified"))

    # A mirror into generation a (the older) after a file was deleted: the guard asks for approval, then
    # exactly the list is deleted.
    env.client().call("sim.deleteFile", "vserver", "/data/f0.txt")
    env.flush()
    b3, third, summary = _backup(env, host, "b3")
    assert third.generation == "a" and third.previous_manifest == "b1-final"
    assert summary.verified and summary.needs_approval and summary.deleted == 0 and summary.approval_ref
    assert set(blob_view(backup)) > set(blob_view(source))  # the extras stay until approved
    with pytest.raises(CopyInputError, match="needs the approval_ref"):
        host("copy_apply_deletes", CopyRef(b3, third.final_job))
    with pytest.raises(CopyInputError, match="does not belong to job"):
        host("copy_apply_deletes", CopyRef(b3, third.final_job, approval_ref="b1-final/approval"))
    report = host("copy_apply_deletes", CopyRef(b3, third.final_job, approval_ref=summary.approval_ref))
    assert report.deleted == summary.delete_candidates > 0 and report.changed == 0
    assert blob_view(backup) == blob_view(source)
    entry = host("complete_backup", CompleteBackup(b3, status="verified"))
    assert entry["status"] == "verified"  # the approved deletes were applied: no extras


def test_unapproved_deletes_are_recorded_as_extras(make_app_env):
    env, host = make_app_env(edit_plan=_strict_guard), Host()
    for i in range(3):
        env.write(f"/data/g{i}.txt", b"x" * 100)
    env.flush()
    for run_id in ("b1", "b2"):
        run, _, _ = _backup(env, host, run_id)
        host("complete_backup", CompleteBackup(run, status="verified"))
    env.client().call("sim.deleteFile", "vserver", "/data/g0.txt")
    env.flush()
    b3, _, summary = _backup(env, host, "b3")
    assert summary.needs_approval
    # The orchestration asks for `verified`; the engine's summary says deletes wait: recorded with extras.
    entry = host("complete_backup", CompleteBackup(b3, status="verified"))
    assert entry["status"] == "verified_with_extras"
    with env.catalog() as catalog:
        assert catalog.load(env.filer).generations["a"].extras


def _change_guard(plan: dict) -> None:
    plan["guard"] = {"max_change_fraction": 0.1, "max_delete_fraction": 1.0, "min_count": 0}
    plan["copy"]["page_size"] = 3


def _plan_pass(host, run, job_id: str) -> list:
    plans, cursor = [], None
    while True:
        plans.append(host("copy_plan_page", CopyPageRef(run, job_id, cursor=cursor)))
        cursor = plans[-1].next_cursor
        if cursor is None:
            return plans


def test_the_change_guard_activities_hold_refuse_and_clear(make_app_env):
    """Through the activities as the host calls them, naming the run and its pass: a pass over its change
    limit is held, its copies are refused until an approval names the pass, and then it copies. A run ended
    changes_not_approved gives its generation back its earlier backup only when the engine's records show that
    no pass of it wrote anything; otherwise the generation is failed."""
    env, host = make_app_env(edit_plan=_change_guard), Host()
    for i in range(12):
        env.write(f"/data/f{i}.txt", f"file {i}\n".encode())
    env.flush()
    for run_id in ("b1", "b2"):  # generations a and b verified; nothing to overwrite in an empty one
        run, _, summary = _backup(env, host, run_id)
        assert summary.verified
        host("complete_backup", CompleteBackup(run, status="verified"))
    for i in range(6):
        env.write(f"/data/f{i}.txt", f"rewritten {i}\n".encode())
    env.flush()

    b3 = start_run(env, host, "backup", "b3")
    third = host("begin_backup", b3)
    assert third.generation == "a"  # the older verified one
    describe = host("copy_describe", CopyRef(b3, third.precopy_job))
    assert describe.guards_changes
    backup = env.container("dr", third.container)
    before = blob_view(backup)
    plans = _plan_pass(host, b3, third.precopy_job)
    check = host("copy_check_changes", CopyRef(b3, third.precopy_job))
    assert not check.cleared and check.changes == sum(p.changes for p in plans) >= 6 > check.limit
    held = next(p for p in plans if p.changes)
    with pytest.raises(CopyInputError, match="has not cleared the pass"):
        host("copy_start_page", CopyPageRef(b3, third.precopy_job, page=held.page))
    with pytest.raises(CopyInputError, match="needs the approval_ref"):
        host("copy_approve_changes", CopyRef(b3, third.precopy_job))
    with pytest.raises(CopyInputError, match="does not belong to job"):
        host("copy_approve_changes", CopyRef(b3, third.precopy_job, approval_ref=f"{third.final_job}/changes"))
    assert blob_view(backup) == before
    # Nobody approved: nothing of the run was written, so generation a holds backup b1 again.
    entry = host("complete_backup", CompleteBackup(b3, status="changes_not_approved"))
    assert entry["status"] == "changes_not_approved" and entry["generation_untouched"] is True
    with env.catalog() as catalog:
        gen = catalog.load(env.filer).generations["a"]
        assert (gen.status, gen.backup_id, gen.manifest) == (VERIFIED, "b1", "b1-final")

    # Held again, approved: the precopy copies from its stored plans. Then the other half is rewritten, and the
    # final pass is held in turn; the run ends not approved, but its precopy wrote into the generation, which is
    # failed, never given back.
    b4 = start_run(env, host, "backup", "b4")
    fourth = host("begin_backup", b4)
    assert fourth.generation == "a"
    _plan_pass(host, b4, fourth.precopy_job)
    check = host("copy_check_changes", CopyRef(b4, fourth.precopy_job))
    assert not check.cleared
    assert host("copy_approve_changes", CopyRef(b4, fourth.precopy_job, approval_ref=check.approval_ref)).cleared
    assert run_copy_pass(b4, fourth.precopy_job, env.clock, host).verified
    assert blob_view(backup) != before
    for i in range(6, 12):
        env.write(f"/data/f{i}.txt", f"rewritten {i}\n".encode())
    env.flush()
    _plan_pass(host, b4, fourth.final_job)
    assert not host("copy_check_changes", CopyRef(b4, fourth.final_job)).cleared
    entry = host("complete_backup", CompleteBackup(b4, status="changes_not_approved"))
    assert entry["generation_untouched"] is False
    with env.catalog() as catalog:
        gen = catalog.load(env.filer).generations["a"]
        assert (gen.status, gen.backup_id) == (FAILED, "b4")


def test_backup_jobs_follow_the_offline_window_setting():
    plan = parse_plan(
        {
            "version": 1,
            "keyvault_url": "https://kv1.vault.azure.net",
            "schedule": "0 0 2 * * *",
            "rpo_hours": 24,
            "storage_auth": "identity",
            "guard": {"min_count": 7},
            "copy": {"engine": "blocks"},
            "clusters": [
                {
                    "name": "c1",
                    "management_address": "10.0.0.5",
                    "region": "westus2",
                    "admin_password_secret": "pw",
                    "tls": {"ca_file": "/etc/ssl/avere-ca.pem"},
                }
            ],
            "filers": [
                {
                    "cluster": "c1",
                    "name": "fs",
                    "source": {
                        "account": "src",
                        "container": "fs-src",
                        "region": "westus2",
                        "blob_endpoint": "https://src.blob.core.windows.net",
                    },
                    "backup": {
                        "account": "bak",
                        "region": "eastus2",
                        "storage_key_secret": "bak-key",
                        "blob_endpoint": "https://bak.blob.core.windows.net",
                    },
                }
            ],
        }
    )
    ctx = RunContext.from_plan(plan, "c1", "fs")
    target = BackupTarget(
        backup_id="b7",
        generation="b",
        container="fs-b",
        previous_manifest="b5-final",
        precopy_job="b7-pre",
        final_job="b7-final",
    )
    pre, final = backup_jobs(ctx, target)
    assert (pre.job_id, pre.mode, pre.previous_manifest) == ("b7-pre", "precopy", "b5-final")
    assert (final.job_id, final.mode, final.previous_manifest, final.precopy_manifest) == (
        "b7-final",
        "mirror",
        "b7-pre",
        "b7-pre",
    )
    assert pre.dest.container == final.dest.container == target.container
    assert (final.guard.min_count, final.engine) == (7, "blocks")
    assert final.source.account.credential is None  # identity: no key reference at all
    long_window = type(ctx).from_json({**type(ctx).to_json(ctx), "short_offline_window": False})
    none, only = backup_jobs(long_window, target)
    assert none is None and (only.mode, only.previous_manifest, only.precopy_manifest) == ("mirror", "b5-final", None)
