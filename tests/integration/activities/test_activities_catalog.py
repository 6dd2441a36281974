"""Catalog activities on the local stack: begin/complete, marks, re-add plans, failover choice, the schedule."""

from __future__ import annotations

import logging

import pytest

from shared.blobcopy.model import Summary
from shared.catalog.store import FAILED, VERIFIED, WRITING
from shared.core.errors import CatalogConflict
from shared.runbook.failover_payloads import FailoverRequest
from shared.runbook.payloads import (
    NEEDS_ATTENTION,
    Attention,
    BeginBackup,
    CompleteBackup,
    FilerRef,
    FilerStep,
    MarkRemoved,
)
from shared.runbook.record import load_states, record_scheduled
from tests.fixtures.workflow import Host


def _summary(job_id: str, verified: bool = True) -> Summary:
    return Summary(job_id=job_id, mode="mirror", pages=1, listed=3, copied=3, skipped=0, failed=0,
                   source_changed=0, bytes_copied=30, verified=verified, mismatches=0, deleted=0,
                   delete_candidates=0, needs_approval=False, approval_ref=None, manifest_state="complete")


def test_begin_and_complete_backup(app_env):
    env, host = app_env, Host()
    ctx = env.context()
    begin = BeginBackup(context=ctx, backup_id="b1", instance_id="i1", started_at="2027-01-01T00:00:00Z")
    target = host("begin_backup", begin)
    assert (target.generation, target.container, target.previous_manifest) == ("a", ctx.filer.backup.containers[0],
                                                                               None)
    assert (target.precopy_job, target.final_job) == ("b1-pre", "b1-final")
    assert env.container("dr", target.container).exists() and env.container("dr", ctx.catalog_container).exists()
    assert host("begin_backup", begin) == target  # a re-delivered call changes nothing

    def complete(target, status, summary=None):
        return host("complete_backup", CompleteBackup(
            context=ctx, target=target, instance_id="i1", status=status, started_at="2027-01-01T00:00:00Z",
            finished_at="2027-01-01T01:00:00Z", summary=summary, error="" if summary else "copy failed"))

    with pytest.raises(ValueError, match="not verified"):
        complete(target, "verified", _summary("b1-final", verified=False))
    with env.catalog() as catalog:
        assert catalog.load(ctx.filer).generations["a"].status == WRITING and not catalog.list_backups(ctx.filer)
    entry = complete(target, "verified", _summary("b1-final"))
    assert entry["manifest"] == "b1-final" and entry["verified"] == {"blobs": 3, "copied": 3, "bytes_copied": 30}

    second = host("begin_backup", BeginBackup(context=ctx, backup_id="b2", instance_id="i2", started_at="t2"))
    assert second.generation == "b"
    failed = complete(second, "failed")
    assert failed["status"] == "failed" and failed["manifest"] is None and failed["error"] == "copy failed"
    with env.catalog() as catalog:
        state = catalog.load(ctx.filer)
        assert (state.generations["a"].status, state.generations["b"].status) == (VERIFIED, FAILED)
        assert state.latest_verified == "a" and state.last_run["status"] == "failed"
        assert [e["backup_id"] for e in catalog.list_backups(ctx.filer)] == ["b1", "b2"]
    third = host("begin_backup", BeginBackup(context=ctx, backup_id="b3", instance_id="i3", started_at="t3"))
    assert third.generation == "b" and third.previous_manifest is None


def test_removed_and_attention_marks_and_the_readd_plan(app_env, caplog):
    env, host = app_env, Host()
    ctx = env.context()
    ref = FilerRef(cluster="primary", filer=env.filer_name)
    empty = host("readd_plan", ref)
    assert (empty.record, empty.removed_by_app, empty.needs_attention) == (None, False, False)
    record = host("capture_filer", FilerStep(context=ctx, backup_id="b1"))
    host("mark_removed", MarkRemoved(context=ctx, backup_id="b1", instance_id="backup-1", record=record,
                                     key=env.initial_key, at="2027-01-01T00:00:00Z"))
    plan = host("readd_plan", ref)
    assert (plan.record, plan.key, plan.removed_by_app) == (record, env.initial_key, True)

    caplog.set_level(logging.INFO)
    host("mark_attention", Attention(context=ctx, instance_id="backup-1", error="re-add failed: cluster busy"))
    alerts = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(alerts) == 1 and alerts[0].getMessage().startswith(f"{NEEDS_ATTENTION} filer=primary/"
                                                                   f"{env.filer_name}")
    plan = host("readd_plan", ref)
    assert plan.needs_attention and plan.record == record and plan.key == env.initial_key
    with env.catalog() as catalog:
        mark = catalog.load(ctx.filer).needs_attention
        assert mark["error"] == "re-add failed: cluster busy" and mark["record"]["name"] == env.filer_name

    host("clear_removed", Attention(context=ctx, instance_id="readd-1"))
    plan = host("readd_plan", ref)
    assert (plan.record, plan.removed_by_app, plan.needs_attention) == (None, False, False)


def test_failover_refuses_what_is_not_a_complete_verified_backup(make_app_env):
    env = make_app_env(edit_plan=lambda p: p["filers"][0].pop("failover_cluster"))
    host = Host()
    with pytest.raises(CatalogConflict, match="no target cluster"):
        host("choose_backup", FailoverRequest(cluster="primary", filer=env.filer_name))
    with pytest.raises(CatalogConflict, match="no DR cluster 'primary'"):
        host("choose_backup", FailoverRequest(cluster="primary", filer=env.filer_name, target_cluster="primary"))
    with pytest.raises(CatalogConflict, match="the filer has no verified backup"):
        host("choose_backup", FailoverRequest(cluster="primary", filer=env.filer_name, target_cluster="dr"))
    target = host("begin_backup", BeginBackup(context=env.context(), backup_id="b1", instance_id="i",
                                              started_at="t"))
    with pytest.raises(CatalogConflict, match="backup b1 is writing, not verified"):
        host("choose_backup", FailoverRequest(cluster="primary", filer=env.filer_name, target_cluster="dr",
                                              backup_id="b1"))
    assert target.generation == "a"


def test_the_schedule_records_its_occurrence(app_env):
    env = app_env
    states = load_states(env.plan)
    assert states[env.filer.key].last_scheduled is None
    record_scheduled(env.plan, env.filer, "2027-01-05T02:00:00Z")
    record_scheduled(env.plan, env.filer, "2027-01-04T02:00:00Z")  # a late, older tick never goes back
    assert load_states(env.plan)[env.filer.key].last_scheduled == "2027-01-05T02:00:00Z"
