"""HTTP route: fail over every protected filer of a cluster (a regional outage), each as its own failover run.

Every filer of the cluster is fenced in the catalog first (as the one-filer failover route does), then the run
starts, then running backups and drills of its filers are cancelled: a cancelled backup finds the fence and leaves
its filer removed or suspended. 202 with the app's run URLs; 409 while it or a failover of a filer runs, or when
the engine refuses the start."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import azure.durable_functions as df
import azure.functions as func

from shared.core.codec import plain
from shared.runbook.failover_payloads import ClusterFailoverRequest
from shared.runbook.payloads import CANCEL_EVENT, CLUSTER_FAILOVER, cluster_failover_instance_id, failover_instance_id
from shared.runbook.run_ids import BACKUP, DRILL, FAILOVER, filer_run_ids
from triggers.common import (
    Refusal,
    caller,
    check_body_size,
    load_plan,
    refuse,
    running_blocker,
    running_ids,
    start_run,
    started,
)
from triggers.fenced_start import FenceAsk, fence_then_start
from triggers.http_api import verify_mode

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.http")


@bp.route(route="failovers/{cluster}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_cluster_failover(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Fail over every protected filer of the cluster to `?target=` (or each filer's failover_cluster)."""
    cluster = req.route_params["cluster"]
    who = caller(req)
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        filers = [f for f in plan.filers if f.cluster == cluster]
        if not filers:
            raise Refusal(404, f"no protected cluster {cluster[:100]!r} in the plan")
        target = req.params.get("target")
        if target is not None and target not in {c.name for c in plan.dr_clusters}:
            raise Refusal(404, f"target {target[:100]!r} is not one of the plan's dr_clusters")
        unplaced = [f.name for f in filers if not (target or f.failover_cluster)]
        if unplaced:
            raise Refusal(400, f"{', '.join(unplaced)} name(s) no failover_cluster in the plan: give ?target=")
        verify = verify_mode(req)
        instance_id = cluster_failover_instance_id(cluster)
        await running_blocker(
            client,
            (instance_id, *(i for f in filers for i in filer_run_ids(cluster, f.name, (FAILOVER,)))),
            "wait for it",
        )
        # The fences first: nothing cancelled below brings a filer back on the primary. Fences whose run then
        # never starts are withdrawn (fenced_start).
        asks = [
            FenceAsk(filer, failover_instance_id(cluster, filer.name), target or filer.failover_cluster or "")
            for filer in filers
        ]
        request = ClusterFailoverRequest(cluster=cluster, target_cluster=target, verify=verify)
        begin = partial(start_run, client, CLUSTER_FAILOVER, instance_id, plain(request))
        await fence_then_start(plan, asks, who, begin)
        ids = [i for f in filers for i in filer_run_ids(cluster, f.name, (BACKUP, DRILL))]
        for other in sorted(await running_ids(client, ids)):  # the failover takes precedence
            await client.raise_event(other, CANCEL_EVENT, {"reason": "failover", "by": who})
            log.warning("cluster failover of %s cancelled the running run %s", cluster, other)
    except Refusal as err:
        return refuse(err)
    log.warning(
        "failover of cluster %s (%d filers) started as %s by %s",
        cluster,
        len(filers),
        instance_id,
        who or "an unnamed caller",
    )
    return started(req, instance_id, cancellable=False)
