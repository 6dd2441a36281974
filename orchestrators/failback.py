"""Fail a filer back home: the planned failover in the other direction, from the DR cluster to its primary.

record the plan snapshot (the filer's home at DR, from the catalog) → preflight (the re-protect direction: DR
cluster as the filer's, the primary as the other) → check the catalog (failed over, a verified re-protect
backup) → the backup runbook from the DR cluster into the re-protect generation (key rules, pre-copy online,
suspend + flush, record the removal, remove the DR filer, final delta, verify, record) → retire the fenced
primary filer from before the outage (flushed into its old container, removed; never `invalidate`) → mark the
re-protect generation attached to the primary → attach it there (captured name, junctions, policies, this run's
key), unsuspend, health → record the new home (the failover's marks and fence go).

The DR filer is removed before anything attaches at the primary: never two clusters serving. A failure before
the primary serves re-adds it at DR (whatever the attach made at the primary is client-suspended first); if
that re-add fails the run ends NEEDS_ATTENTION with the record (orchestrators/backup.py:_readd_or_attention).
"""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df

from activities import backup as backup_acts
from activities import failback as failback_acts
from activities import runs as runs_acts
from orchestrators.backup import _before_removal, _compensate_before_removal, _readd_or_attention, _record, _typed
from orchestrators.backup_steps import NOTHING_REMOVED, Run, begin, remove, run_copy
from orchestrators.durable_helpers import (
    Gen,
    RunStatus,
    activity,
    attach,
    cluster_poll,
    new_run_id,
    now,
    reason,
    run_input,
    sleep,
)
from shared.core.errors import DrError, PreflightFailed, ReaddFailed
from shared.runbook.failover_payloads import FailbackRequest, FailbackStep
from shared.runbook.payloads import (
    NEEDS_ATTENTION,
    AttachRef,
    AttachStep,
    AttentionRef,
    Preflight,
    RunStarted,
)
from shared.runbook.refs import RunRef, RunStart

bp = df.Blueprint()

RETIRE_STEPS = 200  # bounded: each step is one cluster call, paced by the primary cluster's poll interval


class FailbackFailed(DrError):
    """The failback stopped; its state says where the filer serves."""


@bp.orchestration_trigger(context_name="context")
def failback_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, FailbackRequest)
    started = now(context)
    status = RunStatus(context, "failback", f"{req.cluster}/{req.filer}", started)
    ref = RunRef(req.cluster, req.filer, context.instance_id, new_run_id(context, started))
    status.step("starting", backup_id=ref.run_id)
    begun: RunStarted = yield activity(context, runs_acts.begin_run, RunStart(ref, "failback"))
    status.step("preflight")
    pre: Preflight = yield activity(context, backup_acts.preflight, ref)
    if not pre.ok:
        problems = "; ".join(f"{f.check}: {f.detail}" for f in pre.findings if not f.ok)
        status.step("preflight_failed", findings=[f.to_json() for f in pre.findings])
        raise PreflightFailed(
            f"preflight failed: {problems}",
            filer=ref.key,
            state="unchanged: the DR cluster serves the filer",
            action="fix what the findings name (the primary region must answer), then fail back again",
        )
    yield activity(context, failback_acts.failback_check, ref)
    run = yield from begin(context, ref, begun.context, status, started)
    try:
        yield from _before_removal(run, pre.encrypted)
    except Exception as err:
        yield from _compensate_before_removal(run, err)
        raise _typed(err, ref, f"{NOTHING_REMOVED}: the DR cluster serves the filer") from None
    try:
        yield from remove(run)
        run.final = yield from run_copy(run, run.passes()[1], "copy")
    except Exception as err:  # a held pass too: a failback does not wait for approvals with the filer removed
        yield from _readd_or_attention(run, err)
        yield from _record(run, "failed", error=reason(err))
        raise _failed(err, ref, "re-added at the DR cluster, which serves it again") from None
    entry = yield from _record(run, "verified")  # deletes awaiting approval are not waited for: extras stay
    try:
        yield from _retire_primary(run)
        status.step("marking_attached")
        yield activity(context, failback_acts.failback_mark_attached, ref)
        served = yield from attach(
            context,
            AttachRef(ref, backup_id=ref.run_id),
            status,
            "attach",
            cluster=begun.context.failover_cluster or begun.context.cluster,
            filer=ref.key,
            error=FailbackFailed,
        )
        status.step("recording")
        home = yield activity(context, failback_acts.record_failback, ref)
    except Exception as err:
        status.step("undoing", error=reason(err)[:500])
        try:
            left = yield activity(context, failback_acts.failback_undo_primary, ref)
        except Exception as stuck:
            left = f"the primary cluster could not be checked: {reason(stuck)}"
            yield from _attention(run, f"failback failed: {reason(err)}; {left}")
        status.update(primary=left)
        yield from _readd_or_attention(run, err)
        raise _failed(err, ref, f"re-added at the DR cluster, which serves it again; at the primary: {left}") from None
    status.step("serving", mounts=[m.to_json() for m in served.mounts])
    return {
        **run.result("failed_back", entry=entry),
        "home": home,
        "mounts": [m.to_json() for m in served.mounts],
    }


def _retire_primary(run: Run) -> Gen[None]:
    """The fenced primary filer from before the outage: flushed into its old container and removed, if there."""
    context = run.context
    primary = run.ctx.failover_cluster or run.ctx.cluster
    step = AttachStep(phase="retiring", done=False)
    for _ in range(RETIRE_STEPS):
        step = yield activity(
            context, failback_acts.failback_retire_step, FailbackStep(run.ref, step.activity_ids), retry=None
        )
        run.status.step("retiring_primary", phase=step.phase, detail=step.detail[:300])
        if step.done:
            return
        yield from sleep(context, cluster_poll(primary))
    raise FailbackFailed(
        f"the fenced primary filer was not removed after {RETIRE_STEPS} steps: {step.detail}",
        filer=run.ref.key,
        state="the DR filer is removed; the primary filer is client-suspended",
        action="check the primary cluster's activities",
    )


def _attention(run: Run, why: str) -> Gen[None]:
    """The primary could not be checked after a failed attach there: re-adding at DR could serve the filer
    from two clusters. NEEDS_ATTENTION with the record, never a guess."""
    record = run.captured
    yield activity(run.context, backup_acts.mark_attention, AttentionRef(run.ref, error=why))
    run.status.step(NEEDS_ATTENTION, error=why, record=record.to_json())
    raise ReaddFailed(
        f"{NEEDS_ATTENTION}: {why}; record: {json.dumps(record.to_json())}",
        filer=run.ref.key,
        state="REMOVED from the DR cluster; the primary cluster may hold it client-suspended",
        action="check the primary cluster; then POST /api/filers/{cluster}/{filer}/readd or fail back again",
    )


def _failed(err: Exception, ref: RunRef, where: str) -> DrError:
    return FailbackFailed(
        f"failback failed: {reason(err)}",
        filer=ref.key,
        state=where,
        action="read the run's history, fix the cause, then fail back again",
    )
