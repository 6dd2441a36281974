"""Fail a core filer over to a DR cluster from its newest (or a chosen) verified backup.

record the plan snapshot (and the DR cluster) → choose the backup → check it against its manifest (no source
needed: the source region may be gone) → mark it attached in the catalog (from then on no backup writes into it
and the schedule skips the filer) → add the cloud core filer on the backup container ('used', the key from Key
Vault) → restore every junction → health → report the client mount addresses. The HTTP starter cancels a
running backup of the filer first. Activities are given the run's reference and the backup id only.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import failover as failover_acts
from activities import runs as runs_acts
from orchestrators.durable_helpers import Gen, RunStatus, activity, attach, new_run_id, now, reason, run_input
from shared.core.errors import FailoverFailed
from shared.runbook.failover_payloads import (
    BackupPageCheck,
    BackupPageRef,
    BackupRef,
    ChooseBackup,
    FailoverChoice,
    FailoverRequest,
    FailoverResult,
)
from shared.runbook.payloads import AttachRef, RunStarted
from shared.runbook.refs import RunRef, RunStart

bp = df.Blueprint()

# Manifest pages are checked this many at a time (each activity checks one page against the container).
VERIFY_BATCH = 4


@bp.orchestration_trigger(context_name="context")
def failover_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, FailoverRequest)
    started = now(context)
    status = RunStatus(context, "failover", f"{req.cluster}/{req.filer}", started)
    ref = RunRef(req.cluster, req.filer, context.instance_id, new_run_id(context, started))
    stage = "recording the run's start in the catalog"
    try:
        status.step("starting")
        begun: RunStarted = yield activity(context, runs_acts.begin_run,
                                           RunStart(ref, "failover", target_cluster=req.target_cluster))
        stage = "choosing the backup"
        status.step("choosing_backup")
        choice: FailoverChoice = yield activity(context, failover_acts.choose_backup,
                                                ChooseBackup(ref, req.backup_id))
        status.step("chosen", backup_id=choice.backup_id, container=choice.container,
                    target_cluster=choice.target_cluster)
        if req.verify:
            stage = "checking the backup against its manifest"
            yield from _verify(context, ref, choice, status)
        chosen = BackupRef(ref, choice.backup_id)
        stage = "marking the backup attached in the catalog"
        yield activity(context, failover_acts.mark_attached, chosen)
        target = begun.target_cluster or begun.context.cluster  # begin_run always resolves a failover's target
        stage = "attaching the backup to the DR cluster"
        attached = yield from attach(context, AttachRef(ref, backup_id=choice.backup_id), status, "attach",
                                     cluster=target, filer=ref.key, error=FailoverFailed)
        result = FailoverResult(cluster=req.cluster, filer=req.filer, target_cluster=choice.target_cluster,
                                backup_id=choice.backup_id, container=choice.container, mounts=attached.mounts,
                                junctions=choice.junctions)
        stage = "recording the failover in the catalog"
        yield activity(context, failover_acts.record_failover, chosen)
    except FailoverFailed:
        raise
    except Exception as err:  # an activity's bare failure: name the filer and the stage for the operator
        raise FailoverFailed(f"{stage} failed: {reason(err)}", filer=ref.key, state=_STATE_AFTER[stage],
                             action="read the run's history, fix the cause, then POST the failover again "
                             "(the catalog's attached mark fences the filer)") from None
    status.step("serving", mounts=[m.to_json() for m in result.mounts])
    return FailoverResult.to_json(result)


# What a failure at each stage leaves behind, for the error an operator reads.
_STATE_AFTER = {
    "recording the run's start in the catalog": "nothing attached; at most the run's start is recorded",
    "choosing the backup": "nothing attached; the catalog is unchanged",
    "checking the backup against its manifest": "nothing attached; the catalog is unchanged",
    "marking the backup attached in the catalog": "nothing attached; the backup may be marked attached",
    "attaching the backup to the DR cluster": "the backup is marked attached; the DR cluster may hold part of it",
    "recording the failover in the catalog": "the DR cluster SERVES the filer; the catalog marks the backup "
                                             "attached but has not recorded the failover",
}


def _verify(context: df.DurableOrchestrationContext, ref: RunRef, choice: FailoverChoice,
            status: RunStatus) -> Gen[None]:
    """Every manifest page against the backup container; any missing or different blob stops the failover."""
    checked = mismatches = 0
    page, last = 0, False
    while not last:
        batch: list[BackupPageCheck] = yield context.task_all([
            activity(context, failover_acts.verify_backup_page, BackupPageRef(ref, choice.backup_id, page + i))
            for i in range(VERIFY_BATCH)])
        for check in batch:
            if last:
                break  # pages past the manifest's last one answer empty; ignore them
            checked += check.checked
            mismatches += check.mismatches + check.missing
            last = check.last
            if check.mismatches or check.missing:
                raise FailoverFailed(
                    f"backup {choice.backup_id} does not match its manifest on page {check.page}: "
                    f"{check.mismatches} different, {check.missing} missing ({'; '.join(check.problems[:3])})",
                    filer=ref.key, state="nothing attached; the catalog is unchanged",
                    action="fail over to the other generation (backupId) or investigate the backup account")
        page += VERIFY_BATCH
        status.step("verifying", blobs_checked=checked, pages_checked=page)
