"""Replay a filer this app removed: re-add it from the captured record (NEEDS_ATTENTION recovery, reconcile)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import backup as backup_acts
from orchestrators.durable_helpers import Gen, RunStatus, activity, attach, now
from shared.core.codec import decode
from shared.core.errors import ReaddFailed
from shared.runbook.attach import FENCED, readd_request
from shared.runbook.payloads import NEEDS_ATTENTION, Attention, FilerRef, ReaddPlan

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def readd_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    ref = decode(FilerRef, context.get_input())
    status = RunStatus(context, "readd", f"{ref.cluster}/{ref.filer}", now(context))
    status.step("reading_catalog")
    plan: ReaddPlan = yield activity(context, backup_acts.readd_plan, ref)
    if plan.fenced:  # a failover fenced the filer and no operator asked to lift it: never re-add it here
        status.step("fenced", fence=plan.fenced)
        return {"status": "fenced", "cluster": ref.cluster, "filer": ref.filer, "fence": plan.fenced}
    if plan.record is None or not (plan.removed_by_app or plan.needs_attention or plan.fence_lifted):
        status.step("nothing_to_do")
        return {"status": "nothing_to_do", "cluster": ref.cluster, "filer": ref.filer}
    ctx, record = plan.context, plan.record
    if plan.fence_lifted:
        status.step("fence_lifted")
    request = readd_request(ctx, record, plan.key)
    try:
        result = yield from attach(context, request, status, "readd")
    except ReaddFailed as err:
        yield activity(context, backup_acts.mark_attention,
                       Attention(ctx, context.instance_id, error=str(err), record=record))
        status.step(NEEDS_ATTENTION, error=str(err))
        raise
    if result.phase == FENCED:  # a failover was asked for while it ran
        status.step("fenced", fence=result.detail)
        return {"status": "fenced", "cluster": ref.cluster, "filer": ref.filer, "fence": result.detail}
    yield activity(context, backup_acts.clear_removed, Attention(ctx, context.instance_id))
    status.step("readded")
    return {"status": "readded", "cluster": ref.cluster, "filer": ref.filer,
            "mounts": [m.to_json() for m in result.mounts]}
