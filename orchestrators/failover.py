"""Fail a core filer over to a DR cluster from its newest (or a chosen) verified backup.

record the plan snapshot (and the DR cluster) → choose the backup → check it against its manifest (no source
needed: the source region may be gone) → mark it attached in the catalog (from then on no backup writes into it
and the schedule skips the filer) → add the cloud core filer on the backup container ('used', the key from Key
Vault) → restore every junction → health → report the client mount addresses. Before choosing, the primary
filer is fenced (client access suspended, or left removed; pending when its cluster cannot be reached, then the
timer tick fences it): the DR cluster serves it, the primary never again on its own. The HTTP starter records
the fence and cancels a running backup of the filer. Activities are given the run's reference and the backup
id only.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import failover as failover_acts
from activities import runs as runs_acts
from orchestrators.durable_helpers import Gen, RunStatus, activity, attach, new_run_id, now, run_input
from shared.core.errors import FailoverFailed
from shared.runbook.failover import NOTHING_ATTACHED
from shared.runbook.failover_payloads import (
    BackupPageCheck,
    BackupPageRef,
    BackupRef,
    ChooseBackup,
    FailoverChoice,
    FailoverRequest,
    FailoverResult,
    FenceOutcome,
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
    status.step("starting")
    begun: RunStarted = yield activity(context, runs_acts.begin_run,
                                       RunStart(ref, "failover", target_cluster=req.target_cluster))
    status.step("fencing_primary")  # the primary copy stops serving before the DR cluster serves it
    fence: FenceOutcome = yield activity(context, failover_acts.fence_primary, ref)
    status.update(primary_fence=fence.how)
    status.step("choosing_backup")
    choice: FailoverChoice = yield activity(context, failover_acts.choose_backup, ChooseBackup(ref, req.backup_id))
    status.step("chosen", backup_id=choice.backup_id, container=choice.container,
                target_cluster=choice.target_cluster)
    if req.verify:
        yield from _verify(context, ref, choice, status)
    chosen = BackupRef(ref, choice.backup_id)
    yield activity(context, failover_acts.mark_attached, chosen)
    target = begun.target_cluster or begun.context.cluster  # begin_run always resolves a failover's target
    attached = yield from attach(context, AttachRef(ref, backup_id=choice.backup_id), status, "attach",
                                 cluster=target, filer=ref.key, error=FailoverFailed)
    result = FailoverResult(cluster=req.cluster, filer=req.filer, target_cluster=choice.target_cluster,
                            backup_id=choice.backup_id, container=choice.container, mounts=attached.mounts,
                            junctions=choice.junctions)
    yield activity(context, failover_acts.record_failover, chosen)
    status.step("serving", mounts=[m.to_json() for m in result.mounts])
    return {**FailoverResult.to_json(result), "primary_fence": fence.how or None,
            "primary_fence_detail": fence.detail or None}


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
                    filer=ref.key, state=NOTHING_ATTACHED,
                    action="fail over to the other generation (backupId) or investigate the backup account")
        page += VERIFY_BATCH
        status.step("verifying", blobs_checked=checked, pages_checked=page)
