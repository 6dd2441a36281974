"""Replay a filer this app removed: re-add it from the captured record (NEEDS_ATTENTION recovery, reconcile).

record the plan snapshot → read what the catalog says was removed → attach it again → clear the marks (or mark
NEEDS_ATTENTION). Activities are given the run's reference only; the record and key come from the catalog.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import backup as backup_acts
from activities import runs as runs_acts
from orchestrators.durable_helpers import Gen, RunStatus, activity, attach, new_run_id, now, run_input
from shared.core.errors import ReaddFailed
from shared.runbook.attach import FENCED
from shared.runbook.payloads import NEEDS_ATTENTION, AttachRef, AttentionRef, FilerRef, ReaddPlan, RunStarted
from shared.runbook.refs import LIFT_FENCE, RunRef, RunStart

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def readd_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, FilerRef)
    started = now(context)
    status = RunStatus(context, "readd", f"{req.cluster}/{req.filer}", started)
    ref = RunRef(req.cluster, req.filer, context.instance_id, new_run_id(context, started))
    status.step("starting")
    begun: RunStarted = yield activity(
        context, runs_acts.begin_run, RunStart(ref, "readd", reason=LIFT_FENCE if req.lift_fence else "manual")
    )
    status.step("reading_catalog")
    plan: ReaddPlan = yield activity(context, backup_acts.readd_plan, ref)
    if plan.fenced:  # a failover fenced the filer and no operator asked to lift it: never re-add it here
        status.step("fenced", fence=plan.fenced)
        return {"status": "fenced", "cluster": req.cluster, "filer": req.filer, "fence": plan.fenced}
    if plan.record is None or not (plan.removed_by_app or plan.needs_attention or plan.fence_lifted):
        status.step("nothing_to_do")
        return {"status": "nothing_to_do", "cluster": req.cluster, "filer": req.filer}
    if plan.fence_lifted:
        status.step("fence_lifted")
    try:
        result = yield from attach(
            context, AttachRef(ref), status, "readd", cluster=begun.context.cluster, filer=ref.key
        )
    except ReaddFailed as err:
        yield activity(context, backup_acts.mark_attention, AttentionRef(ref, error=str(err)))
        status.step(NEEDS_ATTENTION, error=str(err))
        raise
    if result.phase == FENCED:  # a failover was asked for while it ran
        status.step("fenced", fence=result.detail)
        return {"status": "fenced", "cluster": req.cluster, "filer": req.filer, "fence": result.detail}
    yield activity(context, backup_acts.clear_removed, ref)
    status.step("readded")
    return {
        "status": "readded",
        "cluster": req.cluster,
        "filer": req.filer,
        "mounts": [m.to_json() for m in result.mounts],
    }
