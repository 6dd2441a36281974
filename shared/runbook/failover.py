"""Failover's catalog and verification steps: choose a verified backup, mark it attached, check it, record.

Each names its run (the DR cluster is the one the run's snapshot resolved when it started) and the backup id;
containers, manifests, records and keys come from the catalog, which must hold that backup as verified (or as
attached to the run's DR cluster by this run).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from shared.catalog.generations import attach_generation
from shared.catalog.store import ATTACHED, VERIFIED, FilerState, Generation
from shared.core.clock import parse_iso
from shared.core.errors import CatalogConflict, InputRefused
from shared.runbook import services
from shared.runbook.blockers import Blocker, Reason
from shared.runbook.copy import check_backup_page, manifest_index
from shared.runbook.failover_payloads import (
    BackupPageCheck,
    BackupPageRef,
    BackupRef,
    ChooseBackup,
    ClusterName,
    FailoverChoice,
    FailoverRecordRef,
    FailoverTimes,
    FilerNames,
    SampleCheck,
)
from shared.runbook.home import DR, PRIMARY, Home, home_of
from shared.runbook.manifest_check import sample_problems
from shared.runbook.payloads import RunContext
from shared.runbook.refs import RunRef
from shared.runbook.runs import RunSnapshot, load_run
from shared.runbook.services import open_catalog

log = logging.getLogger("vfxtdr.failover")

# What a failover that stops before attaching leaves: the request fenced the primary filer, and that stays.
NOTHING_ATTACHED = (
    "nothing attached, no backup marked; the primary filer stays fenced (fail over with another "
    "backupId, or lift the fence: POST .../readd?override=failed-over)"
)


def _refuse(ctx: RunContext, what: str) -> CatalogConflict:
    return CatalogConflict(
        what, filer=ctx.filer.key, state=NOTHING_ATTACHED, action="choose a verified backup (see the catalog's backups)"
    )


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
    elsewhere = [
        (state.generations[g].backup_id, (state.generations[g].attached_to or {}).get("target_cluster"))
        for g in state.attached()
    ]
    if elsewhere:
        named = ", ".join(f"backup {b} to cluster {c}" for b, c in elsewhere)
        return Blocker(
            Reason.ATTACHED_ELSEWHERE,
            f"a backup of this filer is already attached ({named}): a failover there started; "
            f"finish or undo it, or name the backup to attach to {target} with backupId",
        )
    if not any(gen.status == VERIFIED and gen.manifest for gen in state.generations.values()):
        return Blocker(Reason.NO_VERIFIED_BACKUP, "the filer has no verified backup")
    return None


def _named_blocker(state: FilerState, backup_id: str, target: str) -> Blocker | None:
    g = state.generation_of(backup_id)
    if g is None:
        return Blocker(
            Reason.UNKNOWN_BACKUP,
            f"backup {backup_id} is not held by any backup generation (it "
            "was overwritten by a later run, or never existed; "
            "GET .../recovery-points lists those held)",
        )
    gen = state.generations[g]
    if not _usable(gen, target):
        where = (gen.attached_to or {}).get("target_cluster")
        now = f"attached to cluster {where}" if gen.status == ATTACHED else gen.status
        return Blocker(Reason.NOT_VERIFIED, f"backup {backup_id} is {now}, not verified")
    return None


def _pick(state: FilerState, ctx: RunContext, backup_id: str | None, target: str) -> str:
    blocked = failover_blocker(state, backup_id, target)
    if blocked is not None:
        raise _refuse(ctx, blocked.message)
    if backup_id:
        return str(state.generation_of(backup_id))
    resumed = [g for g in state.attached() if _usable(state.generations[g], target)]
    if resumed:
        return resumed[0]
    # The newest first: the catalog's latest, then every other verified one by when it was verified.
    by_age = sorted(state.generations, key=lambda g: state.generations[g].verified_at or "", reverse=True)
    order = [g for g in (state.newest_verified(), *by_age) if g]
    for g in dict.fromkeys(order):
        gen = state.generations[g]
        if gen.status == VERIFIED and gen.manifest:
            index = manifest_index(ctx, gen.manifest)
            if index is not None and index.state == "complete":
                return g
    raise _refuse(ctx, "the filer has no verified backup with a complete manifest")


def _run(run: RunRef) -> tuple[RunSnapshot, RunContext, str]:
    snapshot = load_run(run, "failover")
    if not snapshot.target_cluster:
        raise InputRefused(f"run {run.run_id} recorded no DR cluster", filer=snapshot.key)
    return snapshot, snapshot.context(), snapshot.target_cluster


def choose_backup(request: ChooseBackup) -> FailoverChoice:
    """The backup to attach: the requested one, else the newest verified one whose manifest is complete."""
    _, ctx, target = _run(request.run)
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        g = _pick(state, ctx, request.backup_id, target)
        gen = state.generations[g]
        if not gen.manifest or not gen.backup_id:
            raise _refuse(ctx, f"generation {g} has no manifest")
        record = catalog.record(ctx.filer, gen.backup_id)
        entry = catalog.backup(ctx.filer, gen.backup_id)
    if record is None:
        raise _refuse(ctx, f"the catalog holds no filer record for backup {gen.backup_id}")
    index = manifest_index(ctx, gen.manifest)
    if index is None or index.state != "complete":
        raise _refuse(
            ctx,
            f"the manifest of backup {gen.backup_id} is {'missing' if index is None else index.state}, not complete",
        )
    if record.encrypted and gen.key is None:
        raise _refuse(ctx, f"backup {gen.backup_id} is encrypted but the catalog names no key for it")
    log.info("failover of %s to %s: backup %s in %s", ctx.filer.key, target, gen.backup_id, gen.container)
    return FailoverChoice(
        backup_id=gen.backup_id,
        generation=g,
        container=gen.container,
        target_cluster=target,
        junctions=tuple(j.path for j in record.junctions),
        extras=gen.extras,
        digest=_recorded_digest(entry) is not None,
    )


def _recorded_digest(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest digest a backup entry recorded, when a sample may rely on it (every page hashed)."""
    digest = (entry or {}).get("manifest_digest")
    return digest if isinstance(digest, dict) and digest.get("pages_hashed") is True else None


def verify_backup_sample(request: BackupRef) -> SampleCheck:
    """The manifest against the digest recorded with the backup, then SAMPLE_SIZE blobs (the same ones on every
    replay: seeded by the run's instance id and the backup id) against it and the container."""
    _, ctx, target = _run(request.run)
    with open_catalog(ctx) as catalog:
        _, gen = _usable_backup(catalog.load(ctx.filer), ctx, request.backup_id, target)
        recorded = _recorded_digest(catalog.backup(ctx.filer, request.backup_id))
    if recorded is None:
        return SampleCheck(
            checked=0,
            problems=(
                f"backup {request.backup_id} has no manifest digest on record: "
                "a sample cannot be relied on (check it with verify=full)",
            ),
        )
    checked, problems = sample_problems(
        ctx,
        gen.container,
        str(gen.manifest),
        recorded,
        seed=f"{request.run.instance_id}/{request.run.run_id}/{request.backup_id}",
    )
    return SampleCheck(checked=checked, problems=tuple(problems[:20]))


def cluster_filers(request: ClusterName) -> FilerNames:
    """The protected filers of a cluster, by name, as the plan has them now (each one's failover then records
    its own snapshot)."""
    plan = services.load_plan()
    if request.cluster not in {f.cluster for f in plan.filers}:
        raise InputRefused(f"no protected cluster {request.cluster[:100]!r} in the plan")
    return FilerNames(names=tuple(f.name for f in plan.filers if f.cluster == request.cluster))


def _usable_backup(state: FilerState, ctx: RunContext, backup_id: str, target: str) -> tuple[str, Generation]:
    """The generation holding backup_id, when a failover to target may use it (else InputRefused)."""
    blocked = _named_blocker(state, backup_id, target)
    if blocked is not None:
        raise InputRefused(blocked.message, filer=ctx.filer.key)
    g = str(state.generation_of(backup_id))
    gen = state.generations[g]
    if not gen.manifest:
        raise InputRefused(f"backup {backup_id} has no manifest", filer=ctx.filer.key)
    return g, gen


def mark_attached(request: BackupRef) -> None:
    """Before anything attaches it: the container is attached; no backup writes into it from now on."""
    _, ctx, target = _run(request.run)
    with open_catalog(ctx) as catalog:
        g, gen = _usable_backup(catalog.load(ctx.filer), ctx, request.backup_id, target)
        catalog.update(
            ctx.filer,
            lambda s: attach_generation(
                s,
                g,
                request.backup_id,
                target=target,
                instance_id=request.run.instance_id,
                at=services.now_iso(),
                filer=ctx.filer.key,
            ),
        )
    log.info("%s: backup container %s marked attached to %s", ctx.filer.key, gen.container, target)


def verify_backup_page(request: BackupPageRef) -> BackupPageCheck:
    """One manifest page against the backup container: every blob present and identical, and none extra unless
    the backup was recorded verified with extras (deletes nobody approved: kept on purpose, still listed)."""
    _, ctx, target = _run(request.run)
    with open_catalog(ctx) as catalog:
        _, gen = _usable_backup(catalog.load(ctx.filer), ctx, request.backup_id, target)
    check, pages = check_backup_page(ctx, gen.container, str(gen.manifest), request.page)
    extra = 0 if gen.extras else check.extra
    return BackupPageCheck(
        page=request.page,
        checked=check.checked,
        mismatches=check.mismatched + extra,
        missing=check.missing,
        last=request.page >= pages - 1,
        problems=tuple(check.problems),
    )


def record_failover(request: FailoverRecordRef) -> FailoverTimes:
    """Where the filer serves from now (the schedule skips it from here on): the backup this run attached, with
    the failover's RPO (serving time - the backup's recovery point; 0 when planned) and RTO (request → serving)."""
    _, ctx, target = _run(request.run)
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        g = state.generation_of(request.backup_id)
        gen = state.generations[g] if g else None
        by = (gen.attached_to or {}) if gen else {}
        if (
            gen is None
            or gen.status != ATTACHED
            or (by.get("target_cluster"), by.get("instance_id")) != (target, request.run.instance_id)
        ):
            raise InputRefused(
                f"backup {request.backup_id[:80]} is not attached to {target} by "
                f"{request.run.instance_id}: nothing to record",
                filer=ctx.filer.key,
            )
        record = catalog.record(ctx.filer, request.backup_id)
        # A planned failover: the filer has stayed removed since this backup's recovery point (the mark its run
        # wrote before removing it), so the backup holds every write. Nothing else proves a zero RPO.
        zero_loss = (state.removed_by_app or {}).get("backup_id") == request.backup_id
        times = _times(request, catalog.backup(ctx.filer, request.backup_id), zero_loss)
        mark = {
            "target_cluster": target,
            "generation": g,
            "container": gen.container,
            "backup_id": request.backup_id,
            "at": services.now_iso(),
            "instance_id": request.run.instance_id,
            "junctions": [j.path for j in record.junctions] if record else [],
            "mode": "planned" if zero_loss else "unplanned",
            "requested_at": request.requested_at or None,
            "serving_at": request.serving_at or None,
            "consistent_at": times.consistent_at,
            "rpo_s": times.rpo_s,
            "rto_s": times.rto_s,
            "phases": dict(times.phases),
        }

        home = Home(DR, target, gen.container, generation=g, since=str(mark["at"]), by=request.run.instance_id)

        def change(state: FilerState) -> None:
            before = home_of(state, ctx.filer)  # read before the mark: the primary container it leaves is
            state.failed_over = mark  # never written again (recorded once: a redelivery finds the DR home)
            retired = (*before.retired, before.container) if before.side == PRIMARY else before.retired
            state.home = replace(home, retired=tuple(dict.fromkeys(retired))).to_json()
            if zero_loss and (state.removed_by_app or {}).get("backup_id") == request.backup_id:
                # The removal stands for good: the fence is the failover mark from now on (the tick's
                # reconcile re-adds removed filers; it must never re-add this one at the primary).
                state.removed_by_app = None

        catalog.put_failover(
            ctx.filer, {**mark, "cluster": ctx.filer.cluster, "filer": ctx.filer.name, "status": "serving"}
        )
        catalog.update(ctx.filer, change)
    log.info(
        "%s failed over to %s (backup %s, %s): RPO %s s, RTO %s s",
        ctx.filer.key,
        target,
        request.backup_id,
        mark["mode"],
        times.rpo_s,
        times.rto_s,
    )
    return times


def _times(request: FailoverRecordRef, entry: dict[str, Any] | None, zero_loss: bool) -> FailoverTimes:
    """RPO from the backup's recovery point as the catalog recorded it (an entry of an earlier version has
    none: its run's start stands in, which over-states the RPO rather than under-states it); RTO from the
    run's times. A planned failover copied the final delta with the filer removed: nothing is lost."""
    entry = entry or {}
    point = entry.get("consistent_at") or entry.get("started_at")
    serving = parse_iso(request.serving_at) if request.serving_at else None
    rto = (
        round((serving - parse_iso(request.requested_at)).total_seconds(), 3)
        if (serving and request.requested_at)
        else None
    )
    if zero_loss:
        rpo: float | None = 0.0
    else:
        try:
            rpo = round((serving - parse_iso(point)).total_seconds(), 3) if serving and point else None
        except ValueError:
            rpo = None
    return FailoverTimes(
        rpo_s=rpo, rto_s=rto, consistent_at=point if isinstance(point, str) else None, phases=request.phases[:20]
    )
