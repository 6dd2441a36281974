"""HTTP routes of drills: rehearse a failover of one filer, or of every protected filer of a cluster.

`POST /api/drills/{cluster}/{filer}[?target=&backupId=]` and `POST /api/drills/{cluster}` answer 202 with the
run's id and the app's run URLs (triggers/runs.py; never the Durable webhooks'); 404 for a cluster, filer, target
or backup the plan or catalog does not know; 409 when a drill or failover of the filer runs, the filer failed
over, it has no verified backup (the named one not verified), or the engine refuses the start (another start
won); 503 naming the filer and its backup account when a catalog cannot be read. A refused request starts and
changes nothing. A drill works on the DR cluster only: it never unsuspends or re-adds the primary filer, fenced
or not.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import azure.durable_functions as df
import azure.functions as func

from shared.catalog.store import FilerState
from shared.core.codec import plain
from shared.plan.load import Filer, Plan
from shared.runbook import drill_schedule
from shared.runbook.blockers import Blocker, Reason
from shared.runbook.drill import drill_blocker
from shared.runbook.drill_payloads import (
    DRILL,
    DRILL_CLUSTER,
    DrillClusterRequest,
    DrillRequest,
    drill_cluster_instance_id,
    drill_instance_id,
)
from shared.runbook.run_ids import DRILL as DRILL_RUN
from shared.runbook.run_ids import FAILOVER as FAILOVER_RUN
from shared.runbook.run_ids import filer_run_ids
from triggers.common import (
    Refusal,
    check_body_size,
    filer_state,
    filer_states,
    find_filer,
    is_running,
    load_plan,
    refusal,
    refuse,
    running_ids,
    start_run,
    started,
)

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.http")


def _target(req: func.HttpRequest, plan: Plan, filer: Filer) -> str:
    target = req.params.get("target") or filer.failover_cluster
    if not target:
        raise Refusal(400, f"{filer.key} names no failover_cluster in the plan: give ?target=<dr cluster>")
    if target not in {c.name for c in plan.dr_clusters}:
        raise Refusal(404, f"target {target!r} is not one of the plan's dr_clusters")
    return target


def running_blocker(filer: Filer, running: set[str]) -> Blocker | None:
    """A drill or failover of the filer in progress rules a drill out (one drill per filer; a failover wins)."""
    for other in _drill_or_failover(filer):
        if other in running:
            return Blocker(Reason.RUNNING, f"{other} is running; one drill per filer, and never during a failover")
    return None


def _drill_or_failover(filer: Filer) -> tuple[str, ...]:
    """The ids under which a drill or a failover of the filer may run (current and earlier versions')."""
    return filer_run_ids(filer.cluster, filer.name, (DRILL_RUN, FAILOVER_RUN))


@bp.route(route="drills/{cluster}/{filer}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_drill(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Rehearse a failover of one filer from its newest verified backup (or `?backupId=`) on `?target=`."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        target = _target(req, plan, filer)
        backup_id = req.params.get("backupId") or None
        instance_id = drill_instance_id(cluster, name)
        running = await running_ids(client, list(_drill_or_failover(filer)))
        blocked = running_blocker(filer, running) or drill_blocker(await filer_state(plan, filer), backup_id)
        if blocked is not None:
            raise refusal(blocked)
        await start_run(
            client,
            DRILL,
            instance_id,
            plain(DrillRequest(cluster, name, backup_id=backup_id, target=target, reason="manual")),
        )
    except Refusal as err:
        return refuse(err)
    log.info("drill of %s/%s on %s started as %s", cluster, name, target, instance_id)
    return started(req, instance_id, cancellable=True)


@bp.route(route="drills/{cluster}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_cluster_drill(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Rehearse a failover of every protected filer of the cluster, a bounded number at a time."""
    cluster = req.route_params["cluster"]
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        if cluster not in {c.name for c in plan.clusters}:
            known = ", ".join(c.name for c in plan.clusters) or "none"
            raise Refusal(404, f"no protected cluster {cluster!r} in the plan (known: {known})")
        instance_id = drill_cluster_instance_id(cluster)
        if await is_running(client, instance_id):
            raise refusal(Blocker(Reason.RUNNING, f"{instance_id} is running"))
        filers = [f for f in plan.enabled_filers() if f.cluster == cluster]
        ids = [i for f in filers for i in _drill_or_failover(f)]
        running = await running_ids(client, ids)
        states = await filer_states(plan, filers)  # an unreadable catalog: 503, nothing started
        go, skipped = [], []
        for f in filers:
            blocked = running_blocker(f, running) or drill_blocker(states[f.key], None)
            if blocked is not None:
                skipped.append((f.name, blocked.message))
            elif not f.failover_cluster:
                skipped.append((f.name, "the plan names no failover_cluster for it (drill it alone with ?target=)"))
            else:
                go.append(f.name)
        if not go:
            why = "; ".join(f"{n}: {m}" for n, m in skipped) or "it has no enabled filer"
            raise Refusal(409, f"no filer of cluster {cluster} can be drilled now: {why}")
        await start_run(
            client, DRILL_CLUSTER, instance_id, plain(DrillClusterRequest(cluster, tuple(go), tuple(skipped)))
        )
    except Refusal as err:
        return refuse(err)
    log.info("drill of cluster %s (%d filers, %d skipped) started as %s", cluster, len(go), len(skipped), instance_id)
    return started(req, instance_id, cancellable=False)


async def tick_drills(
    client: df.DurableOrchestrationClient, plan: Plan, states: dict[str, FilerState], now: datetime
) -> None:
    """The timer's part for drills: clean up after a drill that stopped without doing so (its pin outlived it),
    then start each filer's drill whose `drill_schedule` fired since its last one."""
    pinned = [f for f in plan.filers if states.get(f.key) is not None and states[f.key].pins]
    filers = drill_schedule.scheduled(plan)
    ids = [i for f in {*pinned, *filers} for i in _drill_or_failover(f)]
    if not ids:
        return
    # The catalog was read before the running runs: a pin it shows was written by a drill that had started.
    running = await running_ids(client, ids)
    for f in pinned:
        instance_id = drill_instance_id(f.cluster, f.name)
        if not running.intersection(filer_run_ids(f.cluster, f.name, (DRILL_RUN,))):
            try:
                await start_run(client, DRILL, instance_id, plain(DrillRequest(f.cluster, f.name, reason="reconcile")))
            except Refusal as err:  # another start won: that drill cleans up
                log.info("reconcile: drill of %s skipped: %s", f.key, err)
                continue
            running.add(instance_id)
            log.warning(
                "reconcile: a drill of %s stopped without cleaning up (its pin remains); cleaning up as %s",
                f.key,
                instance_id,
            )
    if not filers:
        return
    marks = await asyncio.to_thread(drill_schedule.schedule_marks, plan, filers)
    decision = drill_schedule.tick(plan, states, marks, now, running)
    for skip in decision.skip:
        log.info("drill schedule: %s skipped: %s", skip.filer.key, skip.reason)
    for start in decision.start:
        try:
            await start_run(
                client,
                DRILL,
                start.instance_id,
                plain(DrillRequest(start.filer.cluster, start.filer.name, reason="schedule")),
            )
        except Refusal as err:  # not recorded as scheduled: still due at the next tick
            log.info("drill schedule: %s skipped: %s", start.filer.key, err)
            continue
        await asyncio.to_thread(drill_schedule.record_scheduled, plan, start.filer, start.occurrence)
        log.info("drill schedule: started %s for the %s occurrence", start.instance_id, start.occurrence)
