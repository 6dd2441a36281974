"""Failback's own steps: the re-protect backup's last run is the failover in the other direction. Retire the fenced
primary filer (flushed into its old container, then removed), mark the re-protect generation attached to the primary
cluster, attach it there (shared/runbook/attach.py), record the new home; undo on the primary when that fails."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from shared.avere.client import AvereClient
from shared.avere.errors import AvereConflict
from shared.avere.records import FilerRecord
from shared.catalog.generations import attach_generation
from shared.catalog.store import ATTACHED, FAILED, VERIFIED, Catalog, FilerState
from shared.core.errors import CatalogConflict, InputRefused
from shared.plan.load import Cluster, Filer, Plan
from shared.runbook import services
from shared.runbook.attach import AttachRequest
from shared.runbook.blockers import Blocker, Reason, reprotecting
from shared.runbook.failover_payloads import FailbackStep
from shared.runbook.home import DR, PRIMARY, REPROTECT, Home, home_of, reprotect_containers, reprotect_filer
from shared.runbook.payloads import AttachStep, RunContext
from shared.runbook.preflight_probes import login
from shared.runbook.refs import RunRef
from shared.runbook.runs import RunSnapshot, catalog_of, load_run

log = logging.getLogger("vfxtdr.failback")

FAILBACKS = "failbacks"


def failback_blocker(state: FilerState, reprotect: FilerState) -> Blocker | None:
    """Why the catalog rules a failback out now: the filer has not failed over, or no re-protect backup of it is
    verified (the failback's own final delta goes on top of one)."""
    if not reprotecting(state):
        return Blocker(Reason.NOT_FAILED_OVER, "the filer has not failed over: it is served by its own cluster")
    if not any(g.status == VERIFIED and g.manifest for g in reprotect.generations.values()):
        return Blocker(
            Reason.NO_REPROTECT_BACKUP,
            "the filer has no verified re-protect backup in the primary region: back it up first "
            "(POST /api/backups/{cluster}/{filer} re-protects it from the DR cluster)",
        )
    return None


def states(plan: Plan, filer: Filer) -> tuple[FilerState, FilerState]:
    """(the filer's catalog state, its re-protect generations' state), as the plan places the catalog."""
    with catalog_of(plan, filer) as main:
        state = main.load(filer)
    home = home_of(state, filer)
    rp_filer = reprotect_filer(filer, home) if home.side == DR else filer
    account = services.backup_account(filer, plan.storage_auth, plan.keyvault_url)
    with Catalog(account, plan.catalog_container, side=REPROTECT) as rp:
        return state, rp.load(rp_filer)


def primary_blocker(plan: Plan, filer: Filer) -> Blocker | None:
    """The primary cluster must answer (a login with the app's credential) before a failback starts."""
    client, detail = login(plan, plan.cluster(filer.cluster), retries=1)
    if client is None:
        return Blocker(Reason.PRIMARY_UNREACHABLE, f"the primary cluster does not answer: {detail}")
    client.close()
    return None


def _run(run: RunRef) -> tuple[RunSnapshot, RunContext, Home, Cluster]:
    snapshot = load_run(run, "failback")
    if snapshot.home is None or snapshot.home.side == PRIMARY:
        raise InputRefused(f"run {run.run_id} recorded no home at DR: nothing to fail back", filer=snapshot.key)
    ctx = snapshot.context()
    return snapshot, ctx, snapshot.home, snapshot.plan.cluster(snapshot.cluster)


def _main(ctx: RunContext) -> RunContext:
    """The same catalog, its main document (the DR generations, the failover's marks)."""
    return replace(ctx, side="dr")


def check(run: RunRef) -> None:
    """The catalog still allows the failback this run started for (the route asked the same)."""
    _, ctx, _, _ = _run(run)
    with services.open_catalog(_main(ctx)) as main, services.open_catalog(ctx) as rp:
        blocked = failback_blocker(main.load(ctx.filer), rp.load(ctx.filer))
    if blocked is not None:
        raise CatalogConflict(blocked.message, filer=ctx.filer.key, state="nothing changed", action="see the message")


def _original(catalog: Catalog, ctx: RunContext) -> FilerRecord:
    """The record the filer had on its primary cluster (the backup the failover attached captured it there)."""
    done = catalog.load(ctx.filer).failed_over or {}
    record = catalog.record(ctx.filer, str(done.get("backup_id"))) if done.get("backup_id") else None
    if record is None:
        raise InputRefused("the catalog holds no record of the filer on its primary cluster", filer=ctx.filer.key)
    return record


def retire_step(request: FailbackStep) -> AttachStep:
    """One step of removing the fenced primary filer from before the outage, if the primary cluster still has it:
    suspended, flushed into the container it is on (the retired one; never `invalidate`), junctions removed,
    removed. Only a filer on a container other than the re-protect generations is touched."""
    run = request.run
    _, ctx, _, primary = _run(run)
    name = ctx.filer.name
    targets = {f"{ctx.filer.backup.account}/{c}" for c in reprotect_containers(_plan_filer(run))}
    with services.avere_client(primary, ctx.keyvault_url) as client:
        running = _running(client, request.activity_ids)
        if running:
            return AttachStep(phase="retiring", done=False, activity_ids=running, detail="waiting for the cluster")
        state = client.filer_state(name)
        if state == "removed":
            return AttachStep(phase="retired", done=True, detail=f"no core filer {name!r} on {primary.name}")
        if state == "removing":
            return AttachStep(phase="retiring", done=False, detail=f"{name!r} is being removed")
        bucket = str(client.filer_info(name)["bucket"])
        if bucket in targets:
            raise AvereConflict(
                f"core filer {name!r} on {primary.name} is on {bucket}, a re-protect generation: not the fenced "
                "filer from before the outage; it was left untouched"
            )
        client.suspend_clients(name)
        dirty = client.dirty_files(name)
        if dirty.num_files:
            flush = client.flush_core_filer(name)
            return _step("flushing", flush, f"{dirty.num_files} dirty file(s) flushed into {bucket}")
        junctions = [i for i in client.remove_junctions(name) if i != "success"]
        if junctions or client.junctions(name):
            return AttachStep(
                phase="retiring", done=False, activity_ids=tuple(junctions), detail="removing its junctions"
            )
        removed = client.remove_core_filer(name)
        log.info("%s: the fenced primary filer on %s (%s) is being removed", ctx.filer.key, primary.name, bucket)
        return _step("retiring", removed, f"removing core filer {name!r} from {primary.name} ({bucket})")


def _step(phase: str, activity: str, detail: str) -> AttachStep:
    return AttachStep(phase=phase, done=False, activity_ids=() if activity == "success" else (activity,), detail=detail)


def _running(client: AvereClient, ids: tuple[str, ...]) -> tuple[str, ...]:
    pending = []
    for status in (client.activity_status(i) for i in ids):
        if status.state == "failure":
            raise AvereConflict(f"activity {status.id} ({status.process}) failed: {status.status}")
        if not status.succeeded:
            pending.append(status.id)
    return tuple(pending)


def _plan_filer(run: RunRef) -> Any:
    snapshot = load_run(run, "failback")
    return snapshot.plan.filer(snapshot.cluster, snapshot.filer)


def mark_attached(run: RunRef) -> None:
    """Before anything attaches it: the re-protect generation this run wrote is attached to the primary."""
    _, ctx, _, primary = _run(run)
    with services.open_catalog(ctx) as catalog:
        g = catalog.load(ctx.filer).generation_of(run.run_id)
        if g is None:
            raise InputRefused(f"no re-protect generation holds backup {run.run_id}", filer=ctx.filer.key)
        catalog.update(
            ctx.filer,
            lambda s: attach_generation(
                s,
                g,
                run.run_id,
                target=primary.name,
                instance_id=run.instance_id,
                at=services.now_iso(),
                filer=ctx.filer.key,
            ),
        )


def attach_request(run: RunRef, backup_id: str) -> AttachRequest:
    """The attach at the primary cluster: the record this run captured at DR (name, junctions, policies), on the
    re-protect generation it wrote, through the credential and server the filer had there, with this run's key."""
    _, ctx, _, primary = _run(run)
    if backup_id != run.run_id:
        raise InputRefused("a failback attaches the re-protect backup it wrote, no other", filer=ctx.filer.key)
    with services.open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        g = state.generation_of(backup_id)
        gen = state.generations[g] if g else None
        by = (gen.attached_to or {}) if gen else {}
        if gen is None or gen.status != ATTACHED or by.get("instance_id") != run.instance_id:
            raise InputRefused(f"backup {backup_id} is not marked attached to {primary.name} by this run")
        record = catalog.record(ctx.filer, backup_id)
        rotated = catalog.key(ctx.filer, backup_id)
    with services.open_catalog(_main(ctx)) as main:
        original = _original(main, ctx)
    if record is None:
        raise InputRefused(f"backup {backup_id} captured no record", filer=ctx.filer.key)
    bucket = f"{ctx.filer.backup.account}/{gen.container}"
    record = replace(record, bucket=bucket, server_name=original.server_name, credential_name=original.credential_name)
    return AttachRequest(
        cluster=primary,
        keyvault_url=ctx.keyvault_url,
        record=record,
        bucket=bucket,
        server_name=original.server_name,
        credential=original.credential_name,
        key=rotated[0] if rotated else gen.key,
    )


def undo_primary(run: RunRef) -> str:
    """The attach at the primary failed: whatever it made there stops serving (clients suspended) and the
    re-protect generation is verified again, so the run can re-add the filer at DR. How it was left."""
    _, ctx, _, primary = _run(run)
    name = ctx.filer.name
    with services.avere_client(primary, ctx.keyvault_url) as client:
        if client.filer_state(name) == "removed":
            how = f"nothing of {name!r} on {primary.name}"
        else:
            client.suspend_clients(name)
            how = f"core filer {name!r} left on {primary.name} with client access suspended"

    def change(state: FilerState) -> None:
        g = state.generation_of(run.run_id)
        gen = state.generations.get(g) if g else None
        if gen is not None and gen.status == ATTACHED and (gen.attached_to or {}).get("instance_id") == run.instance_id:
            gen.status, gen.attached_to = VERIFIED, None

    with services.open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, change)
    log.warning("%s: failback undone at %s: %s", ctx.filer.key, primary.name, how)
    return how


def record_failback(run: RunRef) -> dict[str, Any]:
    """The filer is home again: on the primary cluster, on the re-protect generation this run attached. The
    failover's marks and fence go; the DR generation it served from is written by the next backup (its contents
    changed since it was verified); the container it lived on before the outage is retired (never written)."""
    snapshot, ctx, dr_home, primary = _run(run)
    at = services.now_iso()
    with services.open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        g = state.generation_of(run.run_id)
        gen = state.generations[g] if g else None
        if gen is None or gen.status != ATTACHED or (gen.attached_to or {}).get("instance_id") != run.instance_id:
            raise InputRefused(
                f"backup {run.run_id} is not attached to {primary.name} by this run", filer=ctx.filer.key
            )
        container = gen.container

        def clear_removal(s: FilerState) -> None:
            if (s.removed_by_app or {}).get("instance_id") == run.instance_id:
                s.removed_by_app = None  # the DR filer's removal stands: the primary serves it now

        catalog.update(ctx.filer, clear_removal)
    plan_filer = snapshot.plan.filer(snapshot.cluster, snapshot.filer)
    with services.open_catalog(_main(ctx)) as main:
        before = home_of(main.load(plan_filer), plan_filer)
        entry = {
            "cluster": ctx.filer.cluster,
            "filer": ctx.filer.name,
            "instance_id": run.instance_id,
            "backup_id": run.run_id,
            "from_cluster": dr_home.cluster,
            "from_container": dr_home.container,
            "to_cluster": primary.name,
            "container": container,
            "at": at,
            "status": "serving",
        }

        def change(s: FilerState) -> None:
            done = s.failed_over or {}
            served = s.generations.get(str(done.get("generation")))
            if served is not None and served.status == ATTACHED:
                served.status, served.attached_to = FAILED, None  # written first by the next backup
            s.home = Home(
                PRIMARY, primary.name, container, generation=g, since=at, retired=before.retired, by=run.instance_id
            ).to_json()
            s.failed_over = None
            s.fence = None
            s.removed_by_app = None

        main.write_json(f"filers/{plan_filer.cluster}/{plan_filer.name}/{FAILBACKS}/{run.run_id}.json", entry)
        main.update(plan_filer, change)
    log.info("%s failed back to %s on %s (backup %s)", ctx.filer.key, primary.name, container, run.run_id)
    return entry
