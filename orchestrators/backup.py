"""The backup orchestration of one core filer: the DR runbook, with re-add guaranteed after any removal.

record the plan snapshot → preflight → begin (generation) → rotate key → capture → pre-copy (online) → suspend
+ flush → mark removed → remove junctions, filer → copy the delta (mirror) → re-add → approve mass deletes →
record. A pass the change guard holds (mass overwrites) waits for `approve_changes` with the filer online
(orchestrators/change_guard.py).

Every activity is given the run's reference (RunRef) and nothing else of the plan: it reads the run's snapshot.

Compensation is written as `except` → compensate → re-raise, never `finally`: the 1.x SDK rebuilds the
generator every episode (a `finally` would run at each episode's end) and a terminated instance runs
nothing at all. Stop a run with the `cancel` event; the timer tick's reconcile re-adds anything a
terminated run left removed. After a failover the compensation neither re-adds nor unsuspends: the filer is
fenced (shared/runbook/fence.py) and stays removed or client-suspended until an operator lifts the fence.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import backup as backup_acts
from activities import copy as copy_acts
from activities import runs as runs_acts
from orchestrators.backup_steps import NOTHING_REMOVED, ChangesHeld, Run, begin, flush, remove, run_copy
from orchestrators.change_guard import NOT_APPROVED, ChangesNotApproved, approved, guarded_copy
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
    wait_for_approval,
)
from shared.core.clock import to_iso
from shared.core.codec import plain
from shared.core.errors import DrError, InputRefused, PreflightFailed, ReaddFailed, RunCancelled
from shared.runbook.attach import FENCED
from shared.runbook.failover_payloads import FailoverRequest
from shared.runbook.payloads import (
    APPROVE_DELETES_EVENT,
    FAILOVER,
    NEEDS_ATTENTION,
    AttachRef,
    AttentionRef,
    BackupRequest,
    CompleteBackup,
    CopyOutcome,
    CopyRef,
    KeyRotation,
    Preflight,
    RunStarted,
    StartedActivities,
    failover_instance_id,
)
from shared.runbook.refs import RunRef, RunStart

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def backup_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, BackupRequest)
    started = now(context)
    status = RunStatus(context, "backup", f"{req.cluster}/{req.filer}", started)
    if req.dry_run:
        raise InputRefused(
            "a dry run is the backup route's own (?dryRun=true): it starts no orchestration",
            filer=f"{req.cluster}/{req.filer}",
        )
    ref = RunRef(req.cluster, req.filer, context.instance_id, new_run_id(context, started))
    status.step("starting", backup_id=ref.run_id)
    begun: RunStarted = yield activity(
        context, runs_acts.begin_run, RunStart(ref, "backup", reason=req.reason, target_cluster=req.fail_over_to)
    )
    status.step("preflight")
    pre: Preflight = yield activity(context, backup_acts.preflight, ref)
    findings = [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in pre.findings]
    if not pre.ok:
        problems = "; ".join(f"{f.check}: {f.detail}" for f in pre.findings if not f.ok)
        status.step("preflight_failed", findings=findings)
        raise PreflightFailed(
            f"preflight failed: {problems}",
            filer=ref.key,
            state="unchanged: nothing was suspended, removed or written",
            action="fix what the findings name, then start the backup again",
        )
    run = yield from begin(context, ref, begun.context, status, started)
    try:
        yield from _before_removal(run, pre.encrypted)
    except Exception as err:
        yield from _compensate_before_removal(run, err)
        if isinstance(err, RunCancelled | ChangesNotApproved):
            return run.result(_outcome(err), error=reason(err))
        left = f"nothing removed; clients left suspended: {run.fenced}" if run.fenced else NOTHING_REMOVED
        raise _typed(err, ref, left) from None
    held: ChangesHeld | None = None
    try:
        yield from remove(run)
        run.final = final = yield from run_copy(run, run.passes()[1], "copy")
    except ChangesHeld as err:  # nothing of the pass overwritten: re-add, then wait for an approval
        held = err
    except Exception as err:
        yield from _readd_or_attention(run, err)  # raises NEEDS_ATTENTION itself if the re-add fails
        why = reason(err) + (f"; not re-added: {run.fenced}" if run.fenced else "")
        yield from _record(run, "cancelled" if isinstance(err, RunCancelled) else "failed", error=why)
        if isinstance(err, RunCancelled):
            return run.result("cancelled", error=reason(err))
        attached = "the filer is attached (re-added, or never removed); the generation being written is not verified"
        raise _typed(err, ref, f"not re-added: {run.fenced}" if run.fenced else attached) from None
    if req.fail_over_to:
        return (yield from _planned_failover(run, req.fail_over_to))
    yield from _readd_or_attention(run, None)
    if held is not None:
        approved_copy = yield from _copy_once_approved(run, held)
        if isinstance(approved_copy, str):  # not approved, or cancelled meanwhile: recorded
            return run.result(approved_copy, entry=run.entry, error=held.what)
        final = approved_copy
    outcome = yield from _mass_delete_guard(run, final)
    entry = yield from _record(run, outcome)
    return run.result(outcome, entry=entry)


def _before_removal(run: Run, encrypted: bool) -> Gen[None]:
    """Everything that happens while the filer is still attached: a failure here removes nothing."""
    context = run.context
    if encrypted:
        run.status.step("rotate_key")
        run.key = yield activity(context, backup_acts.rotate_key, run.ref, retry=None)
        key: KeyRotation = run.key
        run.status.update(key_id=key.key_id, key_secret_version=key.secret.version)
    run.status.step("capture")
    run.record = yield activity(context, backup_acts.capture_filer, run.ref)
    precopy, _ = run.passes()
    if precopy is not None:
        mark = now(context)
        run.precopy = yield from guarded_copy(run, precopy, "precopy")
        run.timings["precopy_s"] = seconds_since(context, mark)
    yield from flush(run)


def _outcome(err: Exception) -> str:
    if isinstance(err, ChangesNotApproved):
        return NOT_APPROVED
    return "cancelled" if isinstance(err, RunCancelled) else "failed"


def _copy_once_approved(run: Run, held: ChangesHeld) -> Gen[CopyOutcome | str]:
    """The final pass was held (the filer is re-added by now): wait for the approval, then run it again.
    Not approved or cancelled: the outcome, recorded. A failure now leaves the filer online and the generation
    unverified."""
    if not (yield from approved(run, held)):
        yield from _record(run, NOT_APPROVED, error=held.what)
        return NOT_APPROVED
    try:
        run.final = yield from run_copy(run, held.job_id, "copy", attempt=1)
    except Exception as err:
        yield from _record(run, _outcome(err), error=reason(err))
        if isinstance(err, RunCancelled):
            return "cancelled"
        raise _typed(
            err,
            run.ref,
            "the filer is attached (re-added before the approval); the generation being written is not verified",
        ) from None
    return run.final


def _compensate_before_removal(run: Run, err: Exception) -> Gen[None]:
    outcome = _outcome(err)
    if run.suspended:
        run.status.step("unsuspending")
        try:
            done: StartedActivities | None = yield activity(run.context, backup_acts.unsuspend_clients, run.ref)
        except Exception as stuck:
            first = err.what if isinstance(err, DrError) else reason(err)
            why = f"{first}; then unsuspending the clients failed: {reason(stuck)}"
            yield from _record(run, outcome, error=why)
            raise DrError(
                why,
                filer=run.ref.key,
                state="nothing removed, but clients are STILL SUSPENDED",
                action="unsuspend: corefiler.modify(<filer>, {'clientSuspend': 'no'})",
            ) from None
        run.suspended = False
        if done is not None and done.fenced:  # a failover fenced the filer: its clients stay suspended
            run.fenced = done.fenced
            run.status.step("fenced", fence=done.fenced)
    why = reason(err) + (f"; clients left suspended: {run.fenced}" if run.fenced else "")
    yield from _record(run, outcome, error=why)


def _typed(err: Exception, ref: RunRef, state: str) -> DrError:
    """What the run stops with: a typed error naming the filer, its state and what to do."""
    if isinstance(err, DrError):
        return err
    return DrError(
        reason(err), filer=ref.key, state=state, action="read the run's history (status --history), then back up again"
    )


def _readd_or_attention(run: Run, cause: Exception | None) -> Gen[None]:
    """Re-add the removed filer as captured. If that keeps failing: NEEDS_ATTENTION, recorded, and raised."""
    context, ref = run.context, run.ref
    record = run.captured
    try:
        result = yield from attach(context, AttachRef(ref), run.status, "readd", cluster=run.ctx.cluster, filer=ref.key)
    except Exception as err:
        why = f"re-add failed: {reason(err)}" + (f" (after: {reason(cause)})" if cause else "")
        yield activity(context, backup_acts.mark_attention, AttentionRef(ref, error=why))
        yield from _record(run, "failed", error=why)
        run.status.step(NEEDS_ATTENTION, error=why, record=record.to_json())
        raise ReaddFailed(
            f"{NEEDS_ATTENTION}: {why}; record: {json.dumps(record.to_json())}",
            filer=ref.key,
            state="REMOVED from the cluster; its data is in the container",
            action="fix the cluster, then POST /api/filers/{cluster}/{filer}/readd",
        ) from None
    if result.phase == FENCED:  # a failover fenced the filer: it stays off its cluster (the mark keeps the record)
        run.fenced = result.detail
        run.status.step("fenced", fence=result.detail)
        return
    yield activity(context, backup_acts.clear_removed, ref)
    run.timings["offline_s"] = seconds_since(context, run.offline_since) if run.offline_since else 0.0
    run.status.step("readded", offline_s=run.timings["offline_s"])


def _planned_failover(run: Run, target: str) -> Gen[dict[str, Any]]:
    """A planned failover: the final delta is in and verified with the filer removed (nothing written since).
        Record the backup, then attach it at the DR cluster (the failover run, as a sub-orchestration) instead of
        re-adding at the primary. Until the DR cluster serves, any failure re-adds the filer at the primary, unless the
    failover run fenced it already (then it stays removed: POST .../readd?override=failed-over brings it back)."""
    context, ref = run.context, run.ref
    entry = yield from _record(run, "verified")  # deletes awaiting approval are not waited for: extras stay
    child = failover_instance_id(ref.cluster, ref.filer)
    run.status.step("failing_over", target_cluster=target, failover_instance=child)
    request = FailoverRequest(
        cluster=ref.cluster, filer=ref.filer, target_cluster=target, backup_id=ref.run_id, verify="sample"
    )
    try:
        served = yield context.call_sub_orchestrator(FAILOVER, plain(request), child)
    except Exception as err:
        yield from _readd_or_attention(run, err)  # raises NEEDS_ATTENTION itself if the re-add fails
        # The failover run fenced the primary first: then the re-add stops at the fence (the filer stays
        # removed) until an operator lifts it; otherwise the primary serves it again.
        where = (
            f"not re-added at the primary cluster {ref.cluster}: {run.fenced}"
            if run.fenced
            else f"re-added at the primary cluster {ref.cluster}, which serves it again"
        )
        raise DrError(
            f"planned failover to {target} failed before the DR cluster served: {reason(err)}",
            filer=ref.key,
            state=f"{where}; backup {ref.run_id} is recorded {entry.get('status')}",
            action="read the failover run's history, fix the DR cluster, then fail over again",
        ) from None
    run.status.step("failed_over", target_cluster=target)
    return {**run.result("failed_over", entry=entry), "failover": served}


def _mass_delete_guard(run: Run, final: CopyOutcome) -> Gen[str]:
    """The mirror refused a mass delete: wait for `approve_deletes` or the timeout, the filer back online."""
    context, ctx, summary = run.context, run.ctx, final.summary
    if summary is None or not summary.needs_approval:
        return "verified"
    if run.fenced:  # no one approves deletes for a filer that failed over: the extras stay
        run.approval = {"decision": "not_asked", "reason": "the filer was fenced by a failover"}
        run.status.step("deletes_not_approved", reason=run.approval["reason"])
        return "verified_with_extras"
    deadline = now(context) + timedelta(hours=ctx.guard.approval_timeout_hours)
    run.status.step(
        "awaiting_approval",
        delete_candidates=summary.delete_candidates,
        approval_ref=summary.approval_ref,
        approval_deadline=to_iso(deadline),
    )
    decision = yield from wait_for_approval(context, APPROVE_DELETES_EVENT, summary.approval_ref, deadline, run.cancel)
    if not decision.approved:
        how = {"no approval before the deadline": "timed_out", "cancelled": "cancelled"}.get(decision.reason, "refused")
        run.approval = {"decision": how, "reason": decision.reason}
        run.status.step("deletes_not_approved", reason=decision.reason, received=decision.received or None)
        return "verified_with_extras"
    run.approval = {
        "decision": "approved",
        "by": (decision.decided_by or "unknown")[:200],
        "approval_ref": str(summary.approval_ref),
    }
    run.status.step("applying_deletes", approved_by=run.approval["by"])
    try:
        run.deletes = yield activity(
            context, copy_acts.copy_apply_deletes, CopyRef(run.ref, run.passes()[1], approval_ref=summary.approval_ref)
        )
    except Exception as err:  # the copy itself verified: a failed clean-up only leaves the extras in place
        run.status.step("deletes_failed", error=reason(err)[:500])
        return "verified_with_extras"
    return "verified"


def _record(run: Run, outcome: str, error: str = "") -> Gen[dict]:
    context = run.context
    run.timings["backup_s"] = seconds_since(context, run.started)
    entry = CompleteBackup(
        run=run.ref,
        status=outcome,
        timings=tuple(sorted(run.timings.items())),
        consistent_at=to_iso(run.offline_since) if run.offline_since else "",
        error=error[:2000],
        approval=tuple(sorted(run.approval.items())),
    )
    result = yield activity(context, backup_acts.complete_backup, entry)
    run.status.step(outcome)
    run.entry = result
    return result
