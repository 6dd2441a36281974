"""HTTP routes: back up a filer now (or only preflight it), replay a removed filer, fail a filer over.

Each answers 202 with the app's own run URLs (triggers/runs.py) when it started a run, 404 for a filer the plan
does not know, 409 when the filer's state forbids it or a run of it is in progress (checked first, and
guaranteed by the engine: a start on a live run id is refused), and changes nothing when it refuses.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

import azure.durable_functions as df
import azure.functions as func

from shared.catalog.fence import OVERRIDE, active_fence
from shared.core.codec import plain
from shared.plan.load import Filer, Plan
from shared.runbook import fence as fencing
from shared.runbook.blockers import backup_blocker, readd_at_dr_blocker, readd_blocker, reprotecting
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
from shared.runbook.run_ids import BACKUP as BACKUP_RUN
from shared.runbook.run_ids import DRILL as DRILL_RUN
from shared.runbook.run_ids import FAILBACK as FAILBACK_RUN
from shared.runbook.run_ids import FAILOVER as FAILOVER_RUN
from shared.runbook.run_ids import filer_run_ids
from triggers.common import (
    Refusal,
    caller,
    catalog_io,
    check_body_size,
    filer_state,
    find_filer,
    load_plan,
    refusal,
    refuse,
    reply,
    reprotect_state,
    running_blocker,
    running_ids,
    start_run,
    started,
)
from triggers.fenced_start import FenceAsk, fence_then_start

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


@bp.route(route="backups/{cluster}/{filer}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
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
            return reply(
                200,
                {
                    "dryRun": True,
                    "ok": found.ok,
                    "findings": [{"check": f.check, "ok": f.ok, "detail": f.detail} for f in found.findings],
                },
            )
        instance_id = backup_instance_id(cluster, name)
        await running_blocker(client, filer_run_ids(cluster, name), "one run per filer at a time")
        blocked = backup_blocker(await filer_state(plan, filer))
        if blocked is not None:
            raise refusal(blocked)
        await start_run(client, BACKUP, instance_id, plain(request))
    except Refusal as err:
        return refuse(err)
    log.info("backup of %s/%s started as %s by %s", cluster, name, instance_id, caller(req) or "an unnamed caller")
    return started(req, instance_id, cancellable=True)


def _override(req: func.HttpRequest) -> bool:
    value = req.params.get("override")
    if value is None:
        return False
    if value != OVERRIDE:
        raise Refusal(
            400,
            f"query parameter override: the only override is {OVERRIDE!r} (bring back a filer "
            f"fenced after a failover), got {value!r}",
        )
    return True


@bp.route(route="filers/{cluster}/{filer}/readd", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def readd_filer(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Replay the recorded filer this app removed (after NEEDS_ATTENTION, or when a run was terminated). A filer
    fenced after a failover comes back only with `?override=failed-over` (re-added or unsuspended)."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    who = caller(req)
    try:
        check_body_size(req)
        override = _override(req)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        instance_id = readd_instance_id(cluster, name)
        await running_blocker(client, filer_run_ids(cluster, name), "wait for it or cancel it first")
        state = await filer_state(plan, filer)
        # Serving at DR: a re-add replays what a re-protect run removed there; the override lifts the primary fence.
        at_dr = None if override else await reprotect_state(plan, filer, state)
        blocked = readd_blocker(state, filer.key, override) if at_dr is None else readd_at_dr_blocker(at_dr, filer.key)
        if blocked is not None:
            raise refusal(blocked)
        lift = override and active_fence(state) is not None
        if lift:  # the catalog holds the operator's authorisation; the run's input alone lifts nothing
            await catalog_io(
                filer, partial(fencing.authorize, plan, filer, instance_id=instance_id, by=who), what="written"
            )
        try:
            await start_run(client, READD, instance_id, plain(FilerRef(cluster, name, lift_fence=lift)))
        except BaseException:
            if lift:
                await asyncio.to_thread(fencing.revoke, plan, filer, instance_id=instance_id)
            raise
    except Refusal as err:
        return refuse(err)
    log.log(
        logging.WARNING if lift else logging.INFO,
        "re-add of %s/%s started as %s by %s%s",
        cluster,
        name,
        instance_id,
        who or "an unnamed caller",
        f" with override={OVERRIDE}: the failover fence is lifted" if lift else "",
    )
    return started(req, instance_id, cancellable=False)


@bp.route(route="failovers/{cluster}/{filer}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_failover(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Attach the newest verified backup (or `?backupId=`) to the DR cluster (`?target=` or the plan's), the
    primary filer fenced first."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    who = caller(req)
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
        await running_blocker(client, filer_run_ids(cluster, name, (FAILOVER_RUN, FAILBACK_RUN)), "wait for it")
        blocked = failover_blocker(await filer_state(plan, filer), req.params.get("backupId"), target)
        if blocked is not None:  # before anything is recorded or cancelled: a refused request changes nothing
            raise refusal(blocked)
        # The fence first: a backup cancelled below finds it in the catalog, and its compensation leaves the
        # filer removed or suspended instead of bringing it back on the primary.
        # A fence whose run then never starts is withdrawn (fenced_start).
        request = FailoverRequest(
            cluster=cluster, filer=name, target_cluster=target, backup_id=req.params.get("backupId"), verify=verify
        )
        await fence_then_start(
            plan,
            [FenceAsk(filer, instance_id, target)],
            who,
            partial(start_run, client, FAILOVER, instance_id, plain(request)),
        )
        for backup in sorted(await running_ids(client, list(filer_run_ids(cluster, name, (BACKUP_RUN,))))):
            # The failover takes precedence: the backup stops at its next wait, and leaves the filer fenced.
            await client.raise_event(backup, CANCEL_EVENT, {"reason": "failover", "by": who})
            log.warning("failover of %s cancelled the running backup %s", filer.key, backup)
        for drill in sorted(await running_ids(client, list(filer_run_ids(cluster, name, (DRILL_RUN,))))):
            # A rehearsal never holds up the real thing: the drill stops at its next wait and cleans up (on the
            # DR cluster only: a drill never touches the primary).
            await client.raise_event(drill, CANCEL_EVENT, {"reason": "failover", "by": who})
            log.warning("failover of %s cancelled the running drill %s", filer.key, drill)
    except Refusal as err:
        return refuse(err)
    log.warning(
        "failover of %s/%s to %s started as %s by %s", cluster, name, target, instance_id, who or "an unnamed caller"
    )
    return started(req, instance_id, cancellable=False)


async def _start_planned(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, plan: Plan, filer: Filer, target: str
) -> func.HttpResponse:
    """A planned failover: the backup run of the filer, which attaches its fresh backup at `target` instead of
    re-adding the filer at the primary. Refused while any run of the filer is in progress (nothing is cancelled)
    and wherever a backup would be refused (a fenced filer among them)."""
    for given in ("backupId", "verify"):
        if req.params.get(given) is not None:
            raise Refusal(
                400,
                f"query parameter {given} is for an unplanned failover: a planned one attaches the "
                "backup it makes, checked as it is made",
            )
    instance_id = backup_instance_id(filer.cluster, filer.name)
    await running_blocker(
        client,
        filer_run_ids(filer.cluster, filer.name),
        "a planned failover starts only when no run of the filer is in progress",
    )
    state = await filer_state(plan, filer)
    if reprotecting(state):
        raise Refusal(409, f"{filer.key} serves from the DR cluster already: fail it back (POST /api/failbacks/...)")
    blocked = backup_blocker(state)
    if blocked is not None:
        raise refusal(blocked)
    await start_run(
        client,
        BACKUP,
        instance_id,
        plain(BackupRequest(cluster=filer.cluster, filer=filer.name, reason="manual", fail_over_to=target)),
    )
    log.warning(
        "planned failover of %s to %s started as %s by %s",
        filer.key,
        target,
        instance_id,
        caller(req) or "an unnamed caller",
    )
    return started(req, instance_id, cancellable=True)
