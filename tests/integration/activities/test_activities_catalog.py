"""Catalog activities on the local stack: begin/complete, marks, re-add plans, failover choice, the schedule."""

from __future__ import annotations

import logging

import pytest

from shared.catalog.store import FAILED, VERIFIED, WRITING
from shared.core.errors import CatalogConflict, InputRefused
from shared.runbook import signals
from shared.runbook.failover_payloads import ChooseBackup
from shared.runbook.payloads import NEEDS_ATTENTION, AttentionRef, CompleteBackup
from shared.runbook.record import load_states, record_scheduled
from tests.fixtures.workflow import Host, run_copy_pass, start_run


def test_begin_and_complete_backup(app_env):
    env, host = app_env, Host()
    env.write("/data/a.txt", b"a" * 300)
    env.flush()
    ctx = env.context()
    b1 = start_run(env, host, "backup", "b1")
    target = host("begin_backup", b1)
    assert (target.generation, target.container, target.previous_manifest) == (
        "a",
        ctx.filer.backup.containers[0],
        None,
    )
    assert (target.precopy_job, target.final_job) == ("b1-pre", "b1-final")
    assert env.container("dr", target.container).exists() and env.container("dr", ctx.catalog_container).exists()
    assert host("begin_backup", b1) == target  # a re-delivered call changes nothing

    # Verified needs the copy engine's own word for it: no final pass has run yet.
    with pytest.raises(InputRefused, match="its final copy pass is not verified"):
        host("complete_backup", CompleteBackup(b1, status="verified"))
    with env.catalog() as catalog:
        assert catalog.load(ctx.filer).generations["a"].status == WRITING and not catalog.list_backups(ctx.filer)
    run_copy_pass(b1, target.precopy_job, env.clock, host)
    final = run_copy_pass(b1, target.final_job, env.clock, host)
    entry = host("complete_backup", CompleteBackup(b1, status="verified"))
    assert entry["manifest"] == "b1-final" and entry["status"] == "verified"
    assert entry["verified"] == {"blobs": final.listed, "copied": final.copied, "bytes_copied": final.bytes_copied}
    assert entry["instance_id"] == b1.instance_id and entry["precopy"]["job_id"] == "b1-pre"
    assert host("complete_backup", CompleteBackup(b1, status="failed")) == entry  # recorded once, as first
    with pytest.raises(InputRefused, match="has already ended"):  # a finished run never reserves again
        host("begin_backup", b1)

    b2 = start_run(env, host, "backup", "b2")
    second = host("begin_backup", b2)
    assert second.generation == "b"
    failed = host("complete_backup", CompleteBackup(b2, status="failed", error="copy failed"))
    assert failed["status"] == "failed" and failed["manifest"] is None and failed["error"] == "copy failed"
    with env.catalog() as catalog:
        state = catalog.load(ctx.filer)
        assert (state.generations["a"].status, state.generations["b"].status) == (VERIFIED, FAILED)
        assert state.latest_verified == "a" and state.last_run["status"] == "failed"
        assert [e["backup_id"] for e in catalog.list_backups(ctx.filer)] == ["b1", "b2"]
    third = host("begin_backup", start_run(env, host, "backup", "b3"))
    assert third.generation == "b" and third.previous_manifest is None


def test_removed_and_attention_marks_and_the_readd_plan(app_env, caplog):
    env, host = app_env, Host()
    ctx = env.context()
    readd = start_run(env, host, "readd", "r1")
    empty = host("readd_plan", readd)
    assert (empty.record, empty.removed_by_app, empty.needs_attention) == (None, False, False)
    backup = start_run(env, host, "backup", "b1")
    with pytest.raises(InputRefused, match=r"no backup generation .* is reserved for backup b1"):
        host("mark_removed", backup)  # a run that has not begun its backup removes nothing
    host("begin_backup", backup)
    with pytest.raises(InputRefused, match="has no captured record"):
        host("mark_removed", backup)  # nor one that has not captured what it would remove
    rotation = host("rotate_key", backup)
    record = host("capture_filer", backup)
    host("mark_removed", backup)
    plan = host("readd_plan", readd)
    assert (plan.record, plan.key, plan.removed_by_app) == (record, rotation.secret, True)

    caplog.set_level(logging.INFO)
    host("mark_attention", AttentionRef(backup, error="re-add failed: cluster busy"))
    alerts = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(alerts) == 1 and signals.parse(alerts[0].getMessage()) == (
        NEEDS_ATTENTION,
        {
            "filer": f"primary/{env.filer_name}",
            "instance_id": backup.instance_id,
            "error": "re-add failed: cluster busy",
        },
    )
    plan = host("readd_plan", readd)
    assert plan.needs_attention and plan.record == record and plan.key == rotation.secret
    with env.catalog() as catalog:
        mark = catalog.load(ctx.filer).needs_attention
        assert mark["error"] == "re-add failed: cluster busy" and mark["record"]["name"] == env.filer_name

    host("clear_removed", readd)  # the filer is online (never removed here): the marks may go
    plan = host("readd_plan", readd)
    assert (plan.record, plan.removed_by_app, plan.needs_attention) == (None, False, False)


def test_failover_refuses_what_is_not_a_complete_verified_backup(make_app_env):
    env = make_app_env(edit_plan=lambda p: p["filers"][0].pop("failover_cluster"))
    host = Host()
    with pytest.raises(CatalogConflict, match="no target cluster"):
        start_run(env, host, "failover", "f1")
    with pytest.raises(InputRefused, match="no DR cluster 'primary'"):
        start_run(env, host, "failover", "f1", target_cluster="primary")
    failover = start_run(env, host, "failover", "f1", target_cluster="dr")
    with pytest.raises(CatalogConflict, match="the filer has no verified backup"):
        host("choose_backup", ChooseBackup(failover))
    target = host("begin_backup", start_run(env, host, "backup", "b1"))
    with pytest.raises(CatalogConflict, match="backup b1 is writing, not verified"):
        host("choose_backup", ChooseBackup(failover, "b1"))
    assert target.generation == "a"


def test_the_schedule_records_its_occurrence(app_env):
    env = app_env
    states = load_states(env.plan)
    assert states[env.filer.key].last_scheduled is None
    record_scheduled(env.plan, env.filer, "2027-01-05T02:00:00Z")
    record_scheduled(env.plan, env.filer, "2027-01-04T02:00:00Z")  # a late, older tick never goes back
    assert load_states(env.plan)[env.filer.key].last_scheduled == "2027-01-05T02:00:00Z"
