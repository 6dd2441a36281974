"""Every registered activity, called as the host calls it, with crafted inputs: plan parts smuggled in (endpoints of
a listener that counts connections), inputs of the earlier format, garbage, and references the plan and catalog
do not allow (a verified generation as the destination, another filer's backup, an unknown or foreign run, a
pass that is not the run's). Each is refused with an error naming the problem; nothing outside the plan is
contacted; the verified backup, the catalog, Key Vault and the cluster are exactly as they were."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.blobcopy.errors import CopyInputError
from shared.catalog.store import VERIFIED, WRITING
from shared.core.errors import CatalogConflict, InputRefused
from shared.runbook.drill_payloads import (
    DrillBegin,
    DrillCleaned,
    DrillFilers,
    DrillFinish,
    DrillPage,
    DrillRef,
    DrillStep,
)
from shared.runbook.failover_payloads import (
    BackupPageRef,
    BackupRef,
    ChooseBackup,
    ClusterName,
    FailbackStep,
    FailoverRecordRef,
)
from shared.runbook.key_secret import key_secret_name
from shared.runbook.payloads import (
    AttachRef,
    AttentionRef,
    CompleteBackup,
    CopyPageRef,
    CopyRef,
    CopyReport,
    CopyTotals,
    RunStep,
    failover_instance_id,
)
from shared.runbook.refs import RunRef, RunStart
from tests.fixtures.copy import blob_view
from tests.fixtures.trap import Trap, connected_once
from tests.fixtures.workflow import AppEnv, Host, backup_by_hand, start_run


def _second_filer(plan: dict[str, Any]) -> None:
    """A second filer of the plan (its own containers and catalog prefix), never backed up here."""
    first = plan["filers"][0]
    plan["filers"].append(
        {
            **json.loads(json.dumps(first)),
            "name": f"{first['name']}-two",
            "source": {**first["source"], "container": f"{first['source']['container']}-two"},
        }
    )


def trapped(env: AppEnv, trap: Trap) -> dict[str, Any]:
    """Plan parts as an earlier version's inputs carried them, every endpoint the trap's: a RunContext, a mirror
    CopyJob into the verified generation (guard off: it would delete everything), an attach request."""
    text = json.dumps({"context": env.context().to_json()})
    for netloc in {
        env.azurite.account_url("dr").split("/")[2],
        env.azurite.account_url("source").split("/")[2],
        env.keyvault.url.split("/")[2],
        env.primary.url.split("/")[2],
        env.dr.url.split("/")[2],
    }:
        text = text.replace(netloc, trap.netloc)
    ctx = json.loads(text)["context"]
    account = {
        "name": ctx["filer"]["backup"]["account"],
        "blob_endpoint": ctx["filer"]["backup"]["blob_endpoint"],
        "credential": None,
    }
    job = {
        "job_id": "b1-final",
        "mode": "mirror",
        "guard": {"max_delete_fraction": 1.0, "min_count": 0},
        "source": {"account": account, "container": "empty-source"},
        "dest": {"account": account, "container": env.filer.backup.containers[0]},
        "catalog": {"account": account, "container": ctx["catalog_container"], "prefix": "x/"},
    }
    attach = {
        "cluster": ctx["cluster"],
        "keyvault_url": ctx["keyvault_url"],
        "bucket": "evil/container",
        "server_name": trap.netloc,
        "credential": "c",
        "record": {"name": env.filer_name},
    }
    return {"context": ctx, "job": job, "attach": attach}


def world(env: AppEnv) -> dict[str, Any]:
    """What a refused input must leave exactly as it was."""
    catalog = env.container("dr", env.plan.catalog_container)
    documents = {b.name: b.etag for b in catalog.list_blobs()}  # any write changes an ETag
    views = {g: blob_view(c) if (c := env.backup_container(g)).exists() else None for g in ("a", "b")}
    return {
        "verified": views["a"],
        "writing": views["b"],
        "catalog": documents,
        "filer": (env.client().filer_state(env.filer_name), env.client().capture_core_filer(env.filer_name)),
        "keys": [v.ref for v in env.vault.versions(key_secret_name("primary", env.filer_name))],
        "clusters": sorted(env.client("dr").list_core_filers()),
    }


def refused(host: Host, cases: list[tuple[str, Any, str]]) -> None:
    """Each (activity, input, problem): the call raises an error naming the problem."""
    for name, payload, problem in cases:
        with pytest.raises((InputRefused, CatalogConflict), match=problem):
            host(name, payload)


def test_every_activity_refuses_crafted_inputs_and_changes_nothing(
    make_app_env: Callable[..., AppEnv], trap: Trap
) -> None:
    env, host = make_app_env(edit_plan=_second_filer), Host()
    env.write("/data/precious.bin", b"the only other copy" * 500)
    env.flush()
    b1 = backup_by_hand(env, host, "b1").run  # generation a: verified; b1 is its instance's run on record
    f1 = start_run(env, host, "failover", "f1")
    assert connected_once(trap)
    baseline = trap.connections
    other = env.plan.filers[1].name

    # The verified generation as a destination, while its run is still the one on record: refused.
    before = world(env)
    assert before["verified"]
    refused(
        host,
        [
            ("copy_plan_page", CopyPageRef(b1, "b1-final"), "holds backup b1 as verified, not writing"),
            ("copy_finish", CopyRef(b1, "b1-final"), "holds backup b1 as verified, not writing"),
            ("copy_apply_deletes", CopyRef(b1, "b1-final", "b1-final/approval"), "as verified, not writing"),
            ("copy_check_changes", CopyRef(b1, "b1-final"), "holds backup b1 as verified, not writing"),
            ("copy_approve_changes", CopyRef(b1, "b1-final", "b1-final/changes"), "as verified, not writing"),
            ("copy_report", CopyReport(b1, "b1-final", CopyTotals()), "as verified, not writing"),
            (
                "copy_start_page",
                CopyPageRef(RunRef("primary", other, f"backup-primary-{other}", "b1"), "b1-final"),
                f"no run 'backup-primary-{other}' is recorded",
            ),  # filer 2, naming filer 1's backup
            ("begin_backup", b1, "backup b1 has already ended"),
            ("rotate_key", b1, "holds backup b1 as verified, not writing"),
            ("capture_filer", b1, "holds backup b1 as verified, not writing"),
            ("mark_removed", b1, "holds backup b1 as verified"),
            ("record_failover", FailoverRecordRef(f1, "b1"), "is not attached to dr by"),
            ("record_failover", FailoverRecordRef(f1, "b1", requested_at="yesterday"), "is not an ISO 8601 time"),
            ("attach_step", AttachRef(f1, backup_id="b1"), "a failover attaches only the backup it marked attached"),
        ],
    )
    assert world(env) == before

    # A run in progress (generation b reserved), and references that do not check out.
    w1 = start_run(env, host, "backup", "w1")
    assert host("begin_backup", w1).generation == "b"
    d1 = start_run(env, host, "drill", D1)  # a drill run on record that has not begun its drill
    mine, theirs = DrillRef(d1, D1), DrillRef(d1, D2)
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
        assert (state.generations["a"].status, state.generations["b"].status) == (VERIFIED, WRITING)
    before = world(env)
    unknown = RunRef("primary", env.filer_name, "backup-x", "w1")
    stale = RunRef(w1.cluster, w1.filer, w1.instance_id, "b1")  # the instance's earlier run
    refused(
        host,
        [
            ("copy_verify_page", CopyPageRef(unknown, "w1-final"), "no run 'backup-x' is recorded"),
            ("copy_poll_page", CopyPageRef(stale, "b1-final"), "is not the run of backup~primary~.* on record"),
            ("copy_describe", CopyRef(w1, "b1-final"), "is not a pass of backup w1"),
            ("copy_cancel", CopyRef(f1, "f1-final"), "is a failover run, not a backup or failback or drill run"),
            ("copy_progress", CopyRef(RunRef("nope", "x", "backup-nope-x", "w1"), "w1-final"), "no protected cluster"),
            ("begin_run", RunStart(RunRef("primary", env.filer_name, "evil", "e1"), "backup"), "'evil' is not the"),
            (
                "begin_run",
                RunStart(RunRef("primary", env.filer_name, f"readd-primary-{env.filer_name}", "e1"), "backup"),
                "is not the backup run",
            ),
            (
                "begin_run",
                RunStart(
                    RunRef("primary", env.filer_name, failover_instance_id("primary", env.filer_name), "e1"),
                    "failover",
                    target_cluster="primary",
                ),
                "no DR cluster 'primary'",
            ),
            (
                "begin_run",
                RunStart(RunRef("primary", env.filer_name, f"failover-primary-{env.filer_name}", "e1"), "failover"),
                "is not the failover run",
            ),  # the id an earlier version gave
            ("begin_run", RunStart(RunRef("primary", "../x", "backup-primary-../x", "e1"), "backup"), "is not a name"),
            ("preflight", f1, "is a failover run, not a backup or failback run"),
            ("capture_filer", unknown, "no run 'backup-x' is recorded"),
            ("suspend_and_flush", RunRef("primary", other, f"backup-primary-{other}", "w1"), "is recorded"),
            ("flush_status", RunStep(f1), "is a failover run"),
            ("unsuspend_clients", stale, "on record"),
            ("remove_junctions", w1, "does not record the removal of .* by backup w1"),
            ("remove_filer", w1, "does not record the removal of .* by backup w1"),
            ("remove_status", RunStep(unknown), "is recorded"),
            ("complete_backup", CompleteBackup(w1, "verified"), "its final copy pass is not verified"),
            ("complete_backup", CompleteBackup(w1, "approved"), "is not one of"),
            ("complete_backup", CompleteBackup(w1, "changes_not_approved"), "no pass of it is held by the change"),
            ("copy_check_changes", CopyRef(w1, "b1-final"), "is not a pass of backup w1"),
            ("copy_check_changes", CopyRef(stale, "b1-final"), "on record"),
            ("copy_approve_changes", CopyRef(unknown, "w1-final", "w1-final/changes"), "no run 'backup-x' is recorded"),
            ("mark_attention", AttentionRef(f1, "x"), "is a failover run"),
            ("clear_removed", unknown, "is recorded"),
            ("readd_plan", w1, "is a backup run, not a readd run"),
            ("attach_step", AttachRef(w1), "w1 captured no record"),
            ("attach_step", AttachRef(w1, backup_id="b1"), "names nothing it attaches"),
            ("choose_backup", ChooseBackup(f1, "w1"), "backup w1 is writing, not verified"),
            ("choose_backup", ChooseBackup(w1, "b1"), "is a backup run, not a failover run"),
            ("mark_attached", BackupRef(f1, "w1"), "backup w1 is writing, not verified"),
            ("verify_backup_page", BackupPageRef(f1, "nope", 0), "backup nope is not held by any backup generation"),
            ("verify_backup_sample", BackupRef(f1, "w1"), "backup w1 is writing, not verified"),
            ("verify_backup_sample", BackupRef(w1, "b1"), "is a backup run, not a failover run"),
            ("cluster_filers", ClusterName("nope"), "no protected cluster 'nope'"),
            ("cluster_filers", ClusterName("../primary"), "is not a name"),
            ("complete_backup", CompleteBackup(w1, "failed", consistent_at="soon"), "is not an ISO 8601 time"),
            (
                "begin_run",
                RunStart(
                    RunRef("primary", env.filer_name, f"drill~primary~{env.filer_name}", D2),
                    "drill",
                    target_cluster="primary",
                ),
                "no DR cluster 'primary'",
            ),
            ("begin_run", RunStart(RunRef("primary", env.filer_name, "drill-evil", D2), "drill"), "is not the drill"),
            ("drill_begin", DrillBegin(theirs), "is not what run .* begins"),
            (
                "drill_begin",
                DrillBegin(DrillRef(RunRef(w1.cluster, w1.filer, w1.instance_id, D1), D1)),
                "is not the run of backup~primary~.* on record",
            ),
            ("drill_check_page", DrillPage(mine), "holds no drill"),
            ("drill_attach_step", DrillStep(mine), "holds no drill"),
            ("drill_readback", theirs, "is not run .*'s drill"),
            ("drill_finish", DrillFinish(mine, "passed"), "holds no drill"),
            ("drill_finish", DrillFinish(mine, "won"), "is not one of"),
            ("drill_cleanup_step", DrillStep(theirs), "is not run .*'s drill"),
            ("drill_cleaned", DrillCleaned(mine, True), "holds no drill"),
            ("drill_cluster_filers", DrillFilers("primary", ("nope",)), "does not protect"),
            ("drill_stale", d1, "only a reconcile run cleans up"),
            ("drill_stale", w1, "is a backup run, not a drill run"),
            ("copy_describe", CopyRef(d1, f"{D1}-scratch"), "holds no drill"),
            ("fence_primary", w1, "is a backup run, not a failover run"),
            ("fence_primary", unknown, "no run 'backup-x' is recorded"),
            (
                "begin_run",
                RunStart(RunRef("primary", env.filer_name, f"failback~primary~{env.filer_name}", "e1"), "failback"),
                "only a filer that failed over is failed back",
            ),
            ("failback_check", w1, "is a backup run, not a failback run"),
            ("failback_retire_step", FailbackStep(f1), "is a failover run, not a failback run"),
            ("failback_mark_attached", w1, "is a backup run, not a failback run"),
            ("failback_undo_primary", unknown, "no run 'backup-x' is recorded"),
            ("record_failback", f1, "is a failover run, not a failback run"),
        ],
    )

    with pytest.raises(CopyInputError, match="no change check on record to approve"):  # nothing planned yet
        host("copy_approve_changes", CopyRef(w1, "w1-final", "w1-final/changes"))
    with pytest.raises(CopyInputError, match="does not belong to job"):
        host("copy_approve_changes", CopyRef(w1, "w1-final", "w1-pre/changes"))

    # Plan parts smuggled in, the earlier version's shapes, garbage: refused before anything is resolved.
    bait = trapped(env, trap)
    registered = _registered_activities()
    valid = _valid_inputs(w1, f1, d1)
    assert set(valid) == registered, f"every activity needs a crafted-input case: {registered ^ set(valid)}"
    for name in sorted(registered):
        payload = json.loads(json.dumps(type(valid[name]).to_json(valid[name])))
        crafted = [
            ({**payload, "context": bait["context"]}, "an earlier version"),
            ({**payload, "job": bait["job"]}, "an earlier version"),
            ({**payload, "endpoint": f"http://{trap.netloc}/x"}, "unknown field"),
            ({"context": bait["context"], "backup_id": "b1", "activity_ids": []}, "an earlier version"),
            ({"job": bait["job"], "page": 0, "approval_ref": "b1-final/approval"}, "an earlier version"),
            (bait["attach"], "an earlier version"),
            ({}, "missing field"),
            ([], "got list"),
            ("not json", "not JSON"),
            (None, "got NoneType"),
        ]
        for data, problem in crafted:
            with pytest.raises((InputRefused, TypeError), match=problem):
                _call(name, data)

    assert trap.connections == baseline, "a crafted input made the app connect outside the plan"
    assert world(env) == before

    # A drill that began (its generation pinned, its record written): passed only on its record's read-back, its
    # one copy pass the scratch copy, and only its own run acts on it.
    choice = host("drill_begin", DrillBegin(mine))
    assert (choice.backup_id, choice.generation, choice.scratch.startswith("drill-")) == ("b1", "a", True)
    refused(
        host,
        [
            ("drill_finish", DrillFinish(mine, "passed"), "holds no passed read-back"),
            ("copy_describe", CopyRef(d1, "b1-final"), "is not a pass of drill"),
            ("copy_plan_page", CopyPageRef(d1, "w1-final"), "is not a pass of drill"),
            ("drill_cleaned", DrillCleaned(DrillRef(f1, D1), True), "is a failover run, not a drill run"),
        ],
    )
    assert host("copy_describe", CopyRef(d1, f"{D1}-scratch")).dest.endswith(choice.scratch)
    with env.catalog() as catalog:
        assert catalog.load(env.filer).pins["a"]["drill_id"] == D1


D1, D2 = "20270115T080000Z-1a2b3c4d", "20270115T090000Z-5e6f7a8b"


def _call(name: str, data: Any) -> Any:
    """The activity as the worker calls it: its input is whatever JSON the history holds."""
    from tests.fixtures.workflow import activity

    return activity(name)(data)


def _registered_activities() -> set[str]:
    import function_app
    from devstack.durable.functions import Registry

    return set(Registry.load(function_app.app).activities)


def _valid_inputs(w1: RunRef, f1: RunRef, d1: RunRef) -> dict[str, Any]:
    """One well-formed input of every activity (smuggled keys are added to these)."""
    page = CopyPageRef(w1, "w1-final", page=0)
    return {
        "begin_run": RunStart(w1, "backup"),
        "preflight": w1,
        "begin_backup": w1,
        "rotate_key": w1,
        "capture_filer": w1,
        "suspend_and_flush": w1,
        "flush_status": RunStep(w1),
        "unsuspend_clients": w1,
        "mark_removed": w1,
        "remove_junctions": w1,
        "remove_filer": w1,
        "remove_status": RunStep(w1),
        "complete_backup": CompleteBackup(w1, "failed"),
        "mark_attention": AttentionRef(w1, "x"),
        "clear_removed": w1,
        "readd_plan": w1,
        "attach_step": AttachRef(w1),
        "copy_describe": CopyRef(w1, "w1-final"),
        "copy_plan_page": page,
        "copy_start_page": page,
        "copy_poll_page": page,
        "copy_verify_page": page,
        "copy_finish": CopyRef(w1, "w1-final"),
        "copy_apply_deletes": CopyRef(w1, "w1-final", "w1-final/approval"),
        "copy_check_changes": CopyRef(w1, "w1-final"),
        "copy_approve_changes": CopyRef(w1, "w1-final", "w1-final/changes"),
        "copy_report": CopyReport(w1, "w1-final", CopyTotals()),
        "copy_progress": CopyRef(w1, "w1-final"),
        "copy_cancel": CopyRef(w1, "w1-final"),
        "choose_backup": ChooseBackup(f1),
        "mark_attached": BackupRef(f1, "b1"),
        "verify_backup_page": BackupPageRef(f1, "b1", 0),
        "record_failover": FailoverRecordRef(f1, "b1"),
        "verify_backup_sample": BackupRef(f1, "b1"),
        "cluster_filers": ClusterName("primary"),
        "fence_primary": f1,
        "drill_begin": DrillBegin(DrillRef(d1, D1)),
        "drill_check_page": DrillPage(DrillRef(d1, D1)),
        "drill_attach_step": DrillStep(DrillRef(d1, D1)),
        "drill_readback": DrillRef(d1, D1),
        "drill_finish": DrillFinish(DrillRef(d1, D1), "failed"),
        "drill_cleanup_step": DrillStep(DrillRef(d1, D1)),
        "drill_cleaned": DrillCleaned(DrillRef(d1, D1), True),
        "drill_cluster_filers": DrillFilers("primary", ("fs",)),
        "drill_stale": d1,
        "failback_check": w1,
        "failback_retire_step": FailbackStep(w1),
        "failback_mark_attached": w1,
        "failback_undo_primary": w1,
        "record_failback": w1,
    }
