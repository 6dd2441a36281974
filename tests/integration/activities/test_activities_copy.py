"""Copy activities on a small container: passes to finish, progress and cancel markers, approved deletes."""

from __future__ import annotations

import pytest

from shared.blobcopy.errors import CopyInputError
from shared.plan.load import parse_plan
from shared.runbook.copy import backup_jobs, copy_job
from shared.runbook.payloads import BackupTarget, CopyFinish, CopyPageRequest, CopyReport, CopyTotals, RunContext
from tests.fixtures.copy import blob_view
from tests.fixtures.workflow import Host, run_copy_pass


def _strict_guard(plan: dict) -> None:
    plan["guard"] = {"max_delete_fraction": 0.0, "min_count": 0}  # every mirrored delete needs approval
    plan["copy"]["page_size"] = 3  # several pages even for a few files


def test_copy_passes_progress_cancel_and_approved_deletes(make_app_env):
    env, host = make_app_env(edit_plan=_strict_guard), Host()
    for i in range(4):
        env.write(f"/data/f{i}.txt", f"file {i}\n".encode() * 50)
    env.flush()
    ctx = env.context()
    container = env.filer.backup.containers[0]
    env.service("dr").create_container(container)
    source = env.source_container()
    backup = env.container("dr", container)

    full = copy_job(ctx, "j1", container, "full")
    assert full.catalog.prefix == f"filers/primary/{env.filer_name}/copy/"
    assert full.source.account.credential.endswith(f"/secrets/{env.secret_names['source']}")
    summary = run_copy_pass(full, env.clock, host)
    assert summary.verified and summary.pages >= 2 and summary.copied == summary.listed > 0
    assert summary.manifest_state == "complete"
    assert blob_view(backup) == blob_view(source)

    # Progress beside the job, and a cancel marker any later report sees.
    totals = CopyTotals(pages=summary.pages, listed=summary.listed, copied=summary.copied)
    reported = host("copy_report", CopyReport(job=full, totals=totals, finished=True))
    assert (reported.totals, reported.finished, reported.cancelled) == (totals, True, False)
    assert host("copy_progress", CopyFinish(job=full)).totals == totals
    host("copy_cancel", CopyFinish(job=full))
    assert host("copy_progress", CopyFinish(job=full)).cancelled
    assert host("copy_report", CopyReport(job=full, totals=totals)).cancelled
    fresh = copy_job(ctx, "j-none", container, "full")
    assert host("copy_progress", CopyFinish(job=fresh)).totals == CopyTotals()

    # A mirror after files were deleted: the guard asks for approval, then exactly the list is deleted.
    env.client().call("sim.deleteFile", "vserver", "/data/f0.txt")
    env.flush()
    mirror = copy_job(ctx, "j2", container, "mirror", previous_manifest="j1")
    summary = run_copy_pass(mirror, env.clock, host)
    assert summary.verified and summary.needs_approval and summary.deleted == 0 and summary.approval_ref
    assert set(blob_view(backup)) > set(blob_view(source))  # the extras stay until approved
    with pytest.raises(CopyInputError, match="needs the approval_ref"):
        host("copy_apply_deletes", CopyFinish(job=mirror))
    report = host("copy_apply_deletes", CopyFinish(job=mirror, approval_ref=summary.approval_ref))
    assert report.deleted == summary.delete_candidates > 0 and report.changed == 0
    assert blob_view(backup) == blob_view(source)


def _change_guard(plan: dict) -> None:
    plan["guard"] = {"max_change_fraction": 0.25, "max_delete_fraction": 1.0, "min_count": 0}
    plan["copy"]["page_size"] = 3


def test_the_change_guard_activities_hold_refuse_and_clear(make_app_env):
    """Through the activities as the host calls them: a pass over its change limit is held, its copies are
    refused until an approval names the pass, and then it copies; a pass within the limit is cleared."""
    env, host = make_app_env(edit_plan=_change_guard), Host()
    for i in range(8):
        env.write(f"/data/f{i}.txt", f"file {i}\n".encode())
    env.flush()
    ctx = env.context()
    container = env.filer.backup.containers[0]
    first = copy_job(ctx, "c1", container, "mirror")
    assert first.guard.max_change_fraction == 0.25
    assert run_copy_pass(first, env.clock, host).verified  # an empty destination: nothing to overwrite
    for i in range(6):
        env.write(f"/data/f{i}.txt", f"rewritten {i}\n".encode())
    env.flush()
    backup = env.container("dr", container)
    before = blob_view(backup)
    second = copy_job(ctx, "c2", container, "mirror", previous_manifest="c1")
    plans, cursor = [], None
    while True:
        plans.append(host("copy_plan_page", CopyPageRequest(job=second, cursor=cursor)))
        cursor = plans[-1].next_cursor
        if cursor is None:
            break
    check = host("copy_check_changes", CopyFinish(job=second))
    assert not check.cleared and check.changes == sum(p.changes for p in plans) >= 6 > check.limit
    held = next(p for p in plans if p.changes)
    with pytest.raises(CopyInputError, match="has not cleared the pass"):
        host("copy_start_page", CopyPageRequest(job=second, page=held.page))
    with pytest.raises(CopyInputError, match="needs the approval_ref"):
        host("copy_approve_changes", CopyFinish(job=second))
    assert blob_view(backup) == before
    assert host("copy_approve_changes", CopyFinish(job=second, approval_ref=check.approval_ref)).cleared
    summary = run_copy_pass(second, env.clock, host)  # the stored plans, now cleared
    assert summary.verified and blob_view(backup) == blob_view(env.source_container())


def test_backup_jobs_follow_the_offline_window_setting():
    plan = parse_plan({
        "version": 1, "keyvault_url": "https://kv1.vault.azure.net", "schedule": "0 0 2 * * *", "rpo_hours": 24,
        "storage_auth": "identity", "guard": {"min_count": 7}, "copy": {"engine": "blocks"},
        "clusters": [{"name": "c1", "management_address": "10.0.0.5", "region": "westus2",
                      "admin_password_secret": "pw", "tls": {"verify": False}}],
        "filers": [{"cluster": "c1", "name": "fs",
                    "source": {"account": "src", "container": "fs-src", "region": "westus2",
                               "blob_endpoint": "https://src.blob.core.windows.net"},
                    "backup": {"account": "bak", "region": "eastus2", "storage_key_secret": "bak-key",
                               "blob_endpoint": "https://bak.blob.core.windows.net"}}]})
    ctx = RunContext.from_plan(plan, "c1", "fs")
    target = BackupTarget(backup_id="b7", generation="b", container="fs-b", previous_manifest="b5-final",
                          precopy_job="b7-pre", final_job="b7-final")
    pre, final = backup_jobs(ctx, target)
    assert (pre.job_id, pre.mode, pre.previous_manifest) == ("b7-pre", "precopy", "b5-final")
    assert (final.job_id, final.mode, final.previous_manifest, final.precopy_manifest) == (
        "b7-final", "mirror", "b7-pre", "b7-pre")
    assert pre.dest.container == final.dest.container == target.container
    assert (final.guard.min_count, final.engine) == (7, "blocks")
    assert final.source.account.credential is None  # identity: no key reference at all
    long_window = type(ctx).from_json({**type(ctx).to_json(ctx), "short_offline_window": False})
    none, only = backup_jobs(long_window, target)
    assert none is None and (only.mode, only.previous_manifest, only.precopy_manifest) == (
        "mirror", "b5-final", None)
