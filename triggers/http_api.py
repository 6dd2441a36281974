"""HTTP routes: back up a filer now (or only preflight it), replay a removed filer, fail a filer over.

Each answers 202 with the Durable status URLs when it started an orchestration, 404 for a filer the plan
does not know, 409 when the filer's state forbids it, and changes nothing when it refuses.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from shared.core.codec import plain
from shared.plan.load import Filer, Plan
from shared.runbook.blockers import Blocker, Reason, backup_blocker, readd_blocker
from shared.runbook.drill_payloads import drill_instance_id
from shared.runbook.failover import failover_blocker
from shared.runbook.failover_payloads import FAILOVER_MODES, VERIFY_MODES, FailoverRequest
from shared.runbook.payloads import (
    BACKUP,
    CANCEL_EVENT,
    FAILOVER,
    READD,
    BackupRequest,
    FilerRef,
    backup_instance_id,
    failover_instance_id,
    readd_instance_id,
)
from shared.runbook.preflight import run_preflight
from triggers.common import (
    Refusal,
    check_body_size,
    filer_state,
    find_filer,
    is_running,
    load_plan,
    refusal,
    refuse,
    reply,
)

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.http")


def _flag(req: func.HttpRequest, name: str, default: bool = False) -> bool:
    value = req.params.get(name)
    if value is None:
        return default
    if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
        raise Refusal(400, f"query parameter {name}: expected true or false, got {value!r}")
    return value.lower() in {"true", "1", "yes"}


def verify_mode(req: func.HttpRequest) -> str:
    """`?verify=`: sample (default) | full | none; the earlier flag's true/false (1/0, yes/no) as full/none."""
    value = req.params.get("verify")
    if value is None:
        return "sample"
    flags = {"true": "full", "1": "full", "yes": "full", "false": "none", "0": "none", "no": "none"}
    mode = flags.get(value.lower(), value.lower())
    if mode not in VERIFY_MODES:
        raise Refusal(400, f"query parameter verify: expected sample, full or none, got {value[:40]!r}")
    return mode


@bp.route(route="backups/{cluster}/{filer}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_backup(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Back up one core filer now; `?dryRun=true` runs only the preflight and answers its findings."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    try:
        check_body_size(req)
        dry_run = _flag(req, "dryRun")
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        request = BackupRequest(cluster=cluster, filer=name, dry_run=dry_run, reason="manual")
        if dry_run:
            found = await asyncio.to_thread(run_preflight, request, plan)
            return reply(200, {"dryRun": True, "ok": found.ok,
                               "findings": [{"check": f.check, "ok": f.ok, "detail": f.detail}
                                            for f in found.findings]})
        instance_id = backup_instance_id(cluster, name)
        for other in (instance_id, readd_instance_id(cluster, name), failover_instance_id(cluster, name)):
            if await is_running(client, other):
                raise refusal(Blocker(Reason.RUNNING, f"{other} is running; one run per filer at a time"))
        blocked = backup_blocker(await filer_state(plan, filer))
        if blocked is not None:
            raise refusal(blocked)
        await client.start_new(BACKUP, instance_id, plain(request))
    except Refusal as err:
        return refuse(err)
    log.info("backup of %s/%s started as %s", cluster, name, instance_id)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="filers/{cluster}/{filer}/readd", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def readd_filer(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Replay the recorded filer this app removed (after NEEDS_ATTENTION, or when a run was terminated)."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        instance_id = readd_instance_id(cluster, name)
        for other in (backup_instance_id(cluster, name), instance_id):
            if await is_running(client, other):
                raise refusal(Blocker(Reason.RUNNING, f"{other} is running; wait for it or cancel it first"))
        blocked = readd_blocker(await filer_state(plan, filer), filer.key)
        if blocked is not None:
            raise refusal(blocked)
        await client.start_new(READD, instance_id, plain(FilerRef(cluster, name)))
    except Refusal as err:
        return refuse(err)
    log.info("re-add of %s/%s started as %s", cluster, name, instance_id)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="failovers/{cluster}/{filer}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_failover(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Attach the newest verified backup (or `?backupId=`) to the DR cluster (`?target=` or the plan's)."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        target = req.params.get("target") or filer.failover_cluster
        if not target:
            raise Refusal(400, f"{filer.key} names no failover_cluster in the plan: give ?target=<dr cluster>")
        if target not in {c.name for c in plan.dr_clusters}:
            raise Refusal(404, f"target {target!r} is not one of the plan's dr_clusters")
        mode = req.params.get("mode", "unplanned")
        if mode not in FAILOVER_MODES:
            raise Refusal(400, f"query parameter mode: expected unplanned or planned, got {mode[:40]!r}")
        if mode == "planned":
            return await _start_planned(req, client, plan, filer, target)
        verify = verify_mode(req)
        instance_id = failover_instance_id(cluster, name)
        if await is_running(client, instance_id):
            raise refusal(Blocker(Reason.RUNNING, f"{instance_id} is running"))
        blocked = failover_blocker(await filer_state(plan, filer), req.params.get("backupId"), target)
        if blocked is not None:  # before anything is cancelled: a request that cannot succeed changes nothing
            raise refusal(blocked)
        drill = drill_instance_id(cluster, name)
        if await is_running(client, drill):
            # A rehearsal never holds up the real thing: the drill stops at its next wait and cleans up.
            await client.raise_event(drill, CANCEL_EVENT, {"reason": "failover"})
            log.warning("failover of %s cancelled the running drill %s", filer.key, drill)
        backup = backup_instance_id(cluster, name)
        if await is_running(client, backup):
            # The failover takes precedence: the backup stops at its next wait and re-adds what it removed.
            await client.raise_event(backup, CANCEL_EVENT, {"reason": "failover"})
            log.warning("failover of %s cancelled the running backup %s", filer.key, backup)
        await client.start_new(FAILOVER, instance_id, plain(FailoverRequest(
            cluster=cluster, filer=name, target_cluster=target, backup_id=req.params.get("backupId"),
            verify=verify)))
    except Refusal as err:
        return refuse(err)
    log.info("failover of %s/%s to %s started as %s", cluster, name, target, instance_id)
    return client.create_check_status_response(req, instance_id)


async def _start_planned(req: func.HttpRequest, client: df.DurableOrchestrationClient, plan: Plan, filer: Filer,
                         target: str) -> func.HttpResponse:
    """A planned failover: the backup run of the filer, which attaches its fresh backup at `target` instead of
    re-adding the filer at the primary. Refused while any run of the filer is in progress (nothing is cancelled)
    and wherever a backup would be refused."""
    for given in ("backupId", "verify"):
        if req.params.get(given) is not None:
            raise Refusal(400, f"query parameter {given} is for an unplanned failover: a planned one attaches the "
                               "backup it makes, checked as it is made")
    instance_id = backup_instance_id(filer.cluster, filer.name)
    for other in (instance_id, readd_instance_id(filer.cluster, filer.name),
                  failover_instance_id(filer.cluster, filer.name)):
        if await is_running(client, other):
            raise refusal(Blocker(Reason.RUNNING, f"{other} is running; a planned failover starts only when no "
                                                  "run of the filer is in progress"))
    blocked = backup_blocker(await filer_state(plan, filer))
    if blocked is not None:
        raise refusal(blocked)
    await client.start_new(BACKUP, instance_id, plain(BackupRequest(
        cluster=filer.cluster, filer=filer.name, reason="manual", fail_over_to=target)))
    log.info("planned failover of %s to %s started as %s", filer.key, target, instance_id)
    return client.create_check_status_response(req, instance_id)
