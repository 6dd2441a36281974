"""Failover's catalog and verification steps: choose a verified backup, mark it attached, check it, record."""

from __future__ import annotations

import logging

from shared.catalog.store import ATTACHED, VERIFIED, FilerState, Generation, attach_generation
from shared.core.errors import CatalogConflict
from shared.plan.load import Cluster, Plan, UnknownClusterError
from shared.runbook import services
from shared.runbook.blockers import Blocker, Reason
from shared.runbook.copy import check_backup_page, manifest_index
from shared.runbook.failover_payloads import (
    BackupPageCheck,
    FailoverChoice,
    FailoverRequest,
    MarkAttached,
    RecordFailover,
    VerifyBackupPage,
)
from shared.runbook.payloads import (
    RunContext,
)
from shared.runbook.services import open_catalog

log = logging.getLogger("vfxtdr.failover")

# What a failover that stops before attaching leaves: the request fenced the primary filer, and that stays.
NOTHING_ATTACHED = ("nothing attached, no backup marked; the primary filer stays fenced (fail over with another "
                    "backupId, or lift the fence: POST .../readd?override=failed-over)")


def _target(plan: Plan, ctx: RunContext, request: FailoverRequest) -> Cluster:
    name = request.target_cluster or ctx.filer.failover_cluster
    if not name:
        raise CatalogConflict("no target cluster: the request names none and the plan gives the filer no "
                              "failover_cluster", filer=ctx.filer.key, state=NOTHING_ATTACHED,
                              action="pass target_cluster or set failover_cluster in the plan")
    try:
        return plan.dr_cluster(name)
    except UnknownClusterError as exc:
        raise CatalogConflict(str(exc), filer=ctx.filer.key, state=NOTHING_ATTACHED,
                              action="fail over to one of the plan's dr_clusters") from None


def _refuse(ctx: RunContext, what: str) -> CatalogConflict:
    return CatalogConflict(what, filer=ctx.filer.key, state=NOTHING_ATTACHED,
                           action="choose a verified backup (see the catalog's backups)")


def _usable(gen: Generation, target: str) -> bool:
    """Verified, or already attached to this same target (a failover being resumed)."""
    if gen.status == VERIFIED:
        return True
    return gen.status == ATTACHED and (gen.attached_to or {}).get("target_cluster") == target


def failover_blocker(state: FilerState, backup_id: str | None, target: str) -> Blocker | None:
    """Why the catalog alone rules a failover out, or None when it may go on.

    The route asks this before it cancels a running backup, and `choose_backup` applies the same rules."""
    if backup_id:
        return _named_blocker(state, backup_id, target)
    if any(_usable(state.generations[g], target) for g in state.attached()):
        return None  # a failover to this target being resumed
    elsewhere = [(state.generations[g].backup_id, (state.generations[g].attached_to or {}).get("target_cluster"))
                 for g in state.attached()]
    if elsewhere:
        named = ", ".join(f"backup {b} to cluster {c}" for b, c in elsewhere)
        return Blocker(Reason.ATTACHED_ELSEWHERE,
                       f"a backup of this filer is already attached ({named}): a failover there started; "
                       f"finish or undo it, or name the backup to attach to {target} with backupId")
    if not any(gen.status == VERIFIED and gen.manifest for gen in state.generations.values()):
        return Blocker(Reason.NO_VERIFIED_BACKUP, "the filer has no verified backup")
    return None


def _named_blocker(state: FilerState, backup_id: str, target: str) -> Blocker | None:
    g = state.generation_of(backup_id)
    if g is None:
        return Blocker(Reason.UNKNOWN_BACKUP, f"backup {backup_id} is not held by either backup container (it "
                                              "was overwritten by a later run, or never existed)")
    gen = state.generations[g]
    if not _usable(gen, target):
        where = (gen.attached_to or {}).get("target_cluster")
        now = f"attached to cluster {where}" if gen.status == ATTACHED else gen.status
        return Blocker(Reason.NOT_VERIFIED, f"backup {backup_id} is {now}, not verified")
    return None


def _pick(state: FilerState, ctx: RunContext, request: FailoverRequest, target: str) -> str:
    blocked = failover_blocker(state, request.backup_id, target)
    if blocked is not None:
        raise _refuse(ctx, blocked.message)
    if request.backup_id:
        return str(state.generation_of(request.backup_id))
    resumed = [g for g in state.attached() if _usable(state.generations[g], target)]
    if resumed:
        return resumed[0]
    order = [g for g in (state.latest_verified, *state.generations) if g]
    for g in dict.fromkeys(order):
        gen = state.generations[g]
        if gen.status == VERIFIED and gen.manifest:
            index = manifest_index(ctx, gen.manifest)
            if index is not None and index.state == "complete":
                return g
    raise _refuse(ctx, "the filer has no verified backup with a complete manifest")


def choose_backup(request: FailoverRequest) -> FailoverChoice:
    """The backup to attach: the requested one, else the newest verified one whose manifest is complete."""
    plan = services.load_plan()
    ctx = RunContext.from_plan(plan, request.cluster, request.filer)
    target = _target(plan, ctx, request)
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        g = _pick(state, ctx, request, target.name)
        gen = state.generations[g]
        if not gen.manifest or not gen.backup_id:
            raise _refuse(ctx, f"generation {g} has no manifest")
        record = catalog.record(ctx.filer, gen.backup_id)
    if record is None:
        raise _refuse(ctx, f"the catalog holds no filer record for backup {gen.backup_id}")
    index = manifest_index(ctx, gen.manifest)
    if index is None or index.state != "complete":
        raise _refuse(ctx, f"the manifest of backup {gen.backup_id} is "
                      f"{'missing' if index is None else index.state}, not complete")
    if record.encrypted and gen.key is None:
        raise _refuse(ctx, f"backup {gen.backup_id} is encrypted but the catalog names no key for it")
    log.info("failover of %s to %s: backup %s in %s", ctx.filer.key, target.name, gen.backup_id, gen.container)
    return FailoverChoice(context=ctx, target_cluster=target, backup_id=gen.backup_id, generation=g,
                          container=gen.container, manifest=gen.manifest, record=record, key=gen.key,
                          extras=gen.extras)


def mark_attached(request: MarkAttached) -> None:
    """Before anything attaches it: the container is attached; no backup writes into it from now on."""
    choice = request.choice
    ctx = choice.context
    with open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, lambda s: attach_generation(
            s, choice.generation, choice.backup_id, target=choice.target_cluster.name,
            instance_id=request.instance_id, at=request.at, filer=ctx.filer.key))
    log.info("%s: backup container %s marked attached to %s", ctx.filer.key, choice.container,
             choice.target_cluster.name)


def verify_backup_page(request: VerifyBackupPage) -> BackupPageCheck:
    """One manifest page against the backup container: every blob present and identical, and none extra unless
    the backup was recorded verified with extras (deletes nobody approved: kept on purpose, still listed)."""
    choice = request.choice
    check, pages = check_backup_page(choice.context, choice.container, choice.manifest, request.page)
    extra = 0 if choice.extras else check.extra
    return BackupPageCheck(page=request.page, checked=check.checked, mismatches=check.mismatched + extra,
                           missing=check.missing, last=request.page >= pages - 1,
                           problems=tuple(check.problems))


def record_failover(request: RecordFailover) -> None:
    """Where the filer serves from now (the schedule skips it from here on)."""
    choice, result = request.choice, request.result
    ctx = choice.context
    mark = {"target_cluster": result.target_cluster, "generation": choice.generation,
            "container": choice.container, "backup_id": choice.backup_id, "at": request.at,
            "instance_id": request.instance_id, "junctions": list(result.junctions)}

    def change(state: FilerState) -> None:
        state.failed_over = mark

    with open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, change)
    log.info("%s failed over to %s (backup %s)", ctx.filer.key, result.target_cluster, choice.backup_id)
