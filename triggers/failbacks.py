"""The failback route: POST /api/failbacks/{cluster}/{filer} brings a failed-over filer home to its primary cluster.

202 with the app's run URLs (triggers/runs.py) when it started the run `failback~{cluster}~{filer}`; 404 for a
filer the plan does not know; 409 when the filer has not failed over, has no verified re-protect backup, its
primary cluster does not answer, or a run of the filer is in progress. A refusal changes nothing.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from shared.core.codec import plain
from shared.runbook.failback import failback_blocker, primary_blocker, states
from shared.runbook.failover_payloads import FAILBACK, FailbackRequest
from shared.runbook.payloads import failback_instance_id
from shared.runbook.run_ids import filer_run_ids
from triggers.common import (
    Refusal,
    caller,
    catalog_io,
    check_body_size,
    find_filer,
    load_plan,
    refusal,
    refuse,
    running_blocker,
    start_run,
    started,
)

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.http")


@bp.route(route="failbacks/{cluster}/{filer}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_failback(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Fail the filer back: its re-protect backup's final delta with the DR filer removed, attached at home."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        await running_blocker(client, filer_run_ids(cluster, name), "one run per filer at a time")
        state, reprotect = await catalog_io(filer, states, plan, filer)
        blocked = failback_blocker(state, reprotect) or await asyncio.to_thread(primary_blocker, plan, filer)
        if blocked is not None:
            raise refusal(blocked)
        instance_id = failback_instance_id(cluster, name)
        await start_run(client, FAILBACK, instance_id, plain(FailbackRequest(cluster=cluster, filer=name)))
    except Refusal as err:
        return refuse(err)
    log.warning("failback of %s started as %s by %s", filer.key, instance_id, caller(req) or "an unnamed caller")
    return started(req, instance_id, cancellable=False)
