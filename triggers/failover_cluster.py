"""HTTP route: fail over every protected filer of a cluster (a regional outage), each as its own failover run."""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from shared.core.codec import plain
from shared.runbook.blockers import Blocker, Reason
from shared.runbook.failover_payloads import ClusterFailoverRequest
from shared.runbook.payloads import (
    CANCEL_EVENT,
    CLUSTER_FAILOVER,
    backup_instance_id,
    cluster_failover_instance_id,
    failover_instance_id,
)
from triggers.common import Refusal, check_body_size, is_running, load_plan, refusal, refuse
from triggers.http_api import verify_mode

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.http")


@bp.route(route="failovers/{cluster}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_cluster_failover(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Fail over every protected filer of the cluster to `?target=` (or each filer's failover_cluster)."""
    cluster = req.route_params["cluster"]
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
        for other in (instance_id, *(failover_instance_id(cluster, f.name) for f in filers)):
            if await is_running(client, other):
                raise refusal(Blocker(Reason.RUNNING, f"{other} is running"))
        for filer in filers:  # the failover takes precedence: a running backup re-adds what it removed and stops
            backup = backup_instance_id(cluster, filer.name)
            if await is_running(client, backup):
                await client.raise_event(backup, CANCEL_EVENT, {"reason": "failover"})
                log.warning("cluster failover of %s cancelled the running backup %s", cluster, backup)
        await client.start_new(CLUSTER_FAILOVER, instance_id, plain(ClusterFailoverRequest(
            cluster=cluster, target_cluster=target, verify=verify)))
    except Refusal as err:
        return refuse(err)
    log.info("failover of cluster %s (%d filers) started as %s", cluster, len(filers), instance_id)
    return client.create_check_status_response(req, instance_id)
