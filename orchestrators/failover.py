"""Fail a core filer over to a DR cluster from its newest (or a chosen) verified backup.

record the plan snapshot (and the DR cluster) → choose the backup → check it (no source needed: the source
region may be gone; `verify`: sample — the manifest against the digest recorded with the backup and a bounded
sample of blobs —, full — every page, in a sub-orchestration of bounded history —, or none) → mark it
attached in the catalog (from then on no backup writes into it
and the schedule skips the filer) → add the cloud core filer on the backup container ('used', the key from Key
Vault) → restore every junction → health → record the failover with its RPO and RTO → report the client mount
addresses. Before choosing, the primary filer is fenced (client access suspended, or left removed — a planned
failover's backup removed it —; pending when its cluster cannot be reached, then the timer tick fences it): the
DR cluster serves it, the primary never again on its own. The HTTP starter records the fence and cancels a
running backup or drill of the filer. Activities are given the run's reference and the backup id only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import azure.durable_functions as df

from activities import failover as failover_acts
from activities import runs as runs_acts
from orchestrators.durable_helpers import (
    Gen,
    RunStatus,
    activity,
    attach,
    new_run_id,
    now,
    reason,
    run_input,
    seconds_since,
)
from orchestrators.failover_verify import FULL_VERIFY, verify_instance_id
from shared.core.clock import to_iso
from shared.core.codec import plain
from shared.core.errors import FailoverFailed
from shared.runbook.failover import NOTHING_ATTACHED
from shared.runbook.failover_payloads import (
    BackupRef,
    ChooseBackup,
    FailoverChoice,
    FailoverRecordRef,
    FailoverRequest,
    FailoverResult,
    FailoverTimes,
    FenceOutcome,
    FullVerify,
    SampleCheck,
)
from shared.runbook.payloads import AttachRef, RunStarted
from shared.runbook.refs import RunRef, RunStart

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def failover_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, FailoverRequest)
    started = now(context)
    status = RunStatus(context, "failover", f"{req.cluster}/{req.filer}", started)
    ref = RunRef(req.cluster, req.filer, context.instance_id, new_run_id(context, started))
    phases = Phases(context)
    try:
        status.step("starting")
        begun: RunStarted = yield activity(
            context, runs_acts.begin_run, RunStart(ref, "failover", target_cluster=req.target_cluster)
        )
        phases.stage = "fencing the primary"
        status.step("fencing_primary")  # the primary copy stops serving before the DR cluster serves it
        fence: FenceOutcome = yield activity(context, failover_acts.fence_primary, ref)
        status.update(primary_fence=fence.how)
        phases.stage = "choosing the backup"
        status.step("choosing_backup")
        choice: FailoverChoice = yield activity(context, failover_acts.choose_backup, ChooseBackup(ref, req.backup_id))
        phases.done("choose_s")
        status.step(
            "chosen", backup_id=choice.backup_id, container=choice.container, target_cluster=choice.target_cluster
        )
        phases.stage = "checking the backup"
        checked = yield from check_backup(context, ref, choice, req.verify, status)
        phases.done("verify_s")
        result = yield from attach_backup(context, ref, begun, choice, status=status, phases=phases)
        phases.stage = "recording the failover in the catalog"
        times: FailoverTimes = yield activity(
            context,
            failover_acts.record_failover,
            FailoverRecordRef(
                ref,
                choice.backup_id,
                requested_at=to_iso(started),
                serving_at=to_iso(phases.serving or now(context)),
                phases=phases.items(),
            ),
        )
    except FailoverFailed:
        raise
    except Exception as err:  # an activity's bare failure: name the filer and the stage for the operator
        raise FailoverFailed(
            f"{phases.stage} failed: {reason(err)}",
            filer=ref.key,
            state=_STATE_AFTER[phases.stage],
            action="read the run's history, fix the cause, "
            "then POST the failover again (the catalog's attached mark fences the filer)",
        ) from None
    result = replace(
        result,
        verify=req.verify,
        blobs_checked=checked,
        rpo_s=times.rpo_s,
        rto_s=times.rto_s,
        consistent_at=times.consistent_at,
        phases=times.phases,
    )
    status.step("serving", mounts=[m.to_json() for m in result.mounts], rpo_s=times.rpo_s, rto_s=times.rto_s)
    return {
        **FailoverResult.to_json(result),
        "primary_fence": fence.how or None,
        "primary_fence_detail": fence.detail or None,
    }


# What a failure at each stage leaves behind, for the error an operator reads.
_STATE_AFTER = {
    "recording the run's start in the catalog": "nothing attached; at most the run's start is recorded",
    "choosing the backup": "nothing attached; the catalog is unchanged",
    "checking the backup": "nothing attached; the catalog is unchanged",
    "marking the backup attached in the catalog": "nothing attached; the backup may be marked attached",
    "attaching the backup to the DR cluster": "the backup is marked attached; the DR cluster may hold part of it",
    "recording the failover in the catalog": "the DR cluster SERVES the filer; the catalog marks the backup "
    "attached but has not recorded the failover",
}


class Phases:
    """Seconds each phase of a failover took (from the end of the one before), and when the filer served."""

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self._context, self._mark = context, now(context)
        self._seconds: dict[str, float] = {}
        self.serving: datetime | None = None
        self.stage = "recording the run's start in the catalog"  # what it is doing, for the error an operator reads

    def done(self, name: str) -> None:
        self._seconds[name] = seconds_since(self._context, self._mark)
        self._mark = now(self._context)

    def items(self) -> tuple[tuple[str, float], ...]:
        return tuple(self._seconds.items())


def attach_backup(
    context: df.DurableOrchestrationContext,
    ref: RunRef,
    begun: RunStarted,
    choice: FailoverChoice,
    *,
    status: RunStatus,
    phases: Phases,
) -> Gen[FailoverResult]:
    """Mark the chosen backup attached, then add it on the DR cluster with every junction, until it serves."""
    chosen = BackupRef(ref, choice.backup_id)
    phases.stage = "marking the backup attached in the catalog"
    yield activity(context, failover_acts.mark_attached, chosen)
    phases.stage = "attaching the backup to the DR cluster"
    target = begun.target_cluster or begun.context.cluster  # begin_run always resolves a failover's target
    attached = yield from attach(
        context,
        AttachRef(ref, backup_id=choice.backup_id),
        status,
        "attach",
        cluster=target,
        filer=ref.key,
        error=FailoverFailed,
    )
    phases.done("attach_s")
    phases.serving = now(context)
    return FailoverResult(
        cluster=ref.cluster,
        filer=ref.filer,
        target_cluster=choice.target_cluster,
        backup_id=choice.backup_id,
        container=choice.container,
        mounts=attached.mounts,
        junctions=choice.junctions,
    )


def check_backup(
    context: df.DurableOrchestrationContext, ref: RunRef, choice: FailoverChoice, mode: str, status: RunStatus
) -> Gen[int]:
    """The check `verify` asks for before anything is attached; blobs checked. A sample needs the manifest
    digest the backup recorded: a backup recorded without one gets the full check instead."""
    if mode == "none":
        return 0
    if mode == "sample" and choice.digest:
        status.step("verifying", verify="sample")
        sample: SampleCheck = yield activity(
            context, failover_acts.verify_backup_sample, BackupRef(ref, choice.backup_id)
        )
        if sample.problems:
            raise FailoverFailed(
                f"backup {choice.backup_id} failed its sample check: {'; '.join(sample.problems[:3])}",
                filer=ref.key,
                state=NOTHING_ATTACHED,
                action="check it with verify=full, fail over to the other generation (backupId), "
                "or investigate the backup account",
            )
        status.update(blobs_checked=sample.checked)
        return sample.checked
    status.step("verifying", verify="full", **({"reason": "no manifest digest on record"} if mode == "sample" else {}))
    task = context.call_sub_orchestrator(
        FULL_VERIFY, plain(FullVerify(ref, choice.backup_id)), verify_instance_id(context.instance_id)
    )
    try:
        done = yield task
    except Exception as err:
        raise FailoverFailed(
            reason(err),
            filer=ref.key,
            state=NOTHING_ATTACHED,
            action="fail over to the other generation (backupId) or investigate the backup account",
        ) from None
    checked = int((done or {}).get("checked", 0))
    status.update(blobs_checked=checked)
    return checked
