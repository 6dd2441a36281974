"""A backup run's bookkeeping in the catalog: begin, complete, removed / needs-attention marks, re-add plans.

Each function names its run (a RunRef) and takes everything else from the run's snapshot and the catalog: the
record a removal marks is the one capture stored, the key the one rotation stored, and a backup is verified
only when the copy engine's stored summary of its final pass says so.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from shared.avere.records import FilerRecord
from shared.azure.keyvault import SecretRef
from shared.catalog.fence import active_fence, describe, lift_fence, lifted_record, restorable
from shared.catalog.generations import begin_writing, finish_writing
from shared.catalog.store import NOT_APPROVED, WRITING, Catalog, FilerState
from shared.core.codec import SCHEMA_KEY, plain
from shared.core.errors import InputRefused
from shared.plan.load import Filer, Plan
from shared.runbook import services, signals
from shared.runbook.blockers import failback_attached, reprotecting
from shared.runbook.copy import held_untouched, pass_ids, stored_outcome
from shared.runbook.home import REPROTECT, home_of, is_reprotect, reprotect_filer
from shared.runbook.manifest_check import manifest_digest
from shared.runbook.payloads import (
    AttentionRef,
    BackupTarget,
    CompleteBackup,
    ReaddPlan,
    RunContext,
)
from shared.runbook.refs import BACKUP_KINDS, LIFT_FENCE, RunRef
from shared.runbook.runs import RunSnapshot, job_ids, load_run, reserved_target
from shared.runbook.services import open_catalog

log = logging.getLogger("vfxtdr.catalog")

VERIFIED_STATUSES = ("verified", "verified_with_extras")
STATUSES = (*VERIFIED_STATUSES, "failed", "cancelled", NOT_APPROVED)
MAX_TIMINGS = 20


def _ref_json(ref: SecretRef | None) -> dict[str, str] | None:
    return SecretRef.to_json(ref) if ref else None


def begin_backup(ref: RunRef) -> BackupTarget:
    """Mark the generation the retention rule picks `writing` for this run (idempotent per run; never the newest
    verified, an attached or a pinned one) and make sure its container and the catalog container exist."""
    snapshot = load_run(ref, *BACKUP_KINDS)
    ctx = snapshot.context()
    filer, backup_id = ctx.filer, ref.run_id
    count = filer.backup.generations

    def change(state: FilerState) -> tuple[str, Any, list[str]]:
        held = state.generation_of(backup_id)
        if held is not None and state.generations[held].status != WRITING:
            raise InputRefused(
                f"backup {backup_id} has already ended (generation {held} holds it as "
                f"{state.generations[held].status})",
                filer=filer.key,
            )
        generation, gen = begin_writing(state, backup_id, ref.instance_id, snapshot.started_at, filer.key, count=count)
        return generation, gen, state.outside_retention(count)

    with open_catalog(ctx) as catalog:
        catalog.ensure_container()
        generation, gen, outside = catalog.update(filer, change)
        catalog.ensure_backup_container(gen.container)
    if outside:
        log.warning(
            "%s: generations %s are outside retention (the plan keeps %d): kept and listed as recovery "
            "points, never written, never deleted by the app",
            filer.key,
            ", ".join(outside),
            count,
        )
    log.info(
        "backup %s of %s writes generation %s (%s), incremental from %s",
        backup_id,
        filer.key,
        generation,
        gen.container,
        gen.previous_manifest or "the container's own listing",
    )
    pre, final = job_ids(backup_id)
    return BackupTarget(
        backup_id=backup_id,
        generation=generation,
        container=gen.container,
        previous_manifest=gen.previous_manifest,
        precopy_job=pre,
        final_job=final,
    )


def complete_backup(request: CompleteBackup) -> dict[str, Any]:
    """Write the backup entry, then settle the generation: verified (newest verified) or failed. Verified needs
    the stored summary of the final pass to say so; extras when its deletes were not applied."""
    ref = request.run
    snapshot = load_run(ref, *BACKUP_KINDS)
    ctx, backup_id = snapshot.context(), ref.run_id
    if request.status not in STATUSES:
        raise InputRefused(
            f"backup status {request.status[:40]!r} is not one of {', '.join(STATUSES)}", filer=ctx.filer.key
        )
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        held = state.generation_of(backup_id)
        if held is not None and state.generations[held].status != WRITING:
            recorded = catalog.backup(ctx.filer, backup_id)
            if recorded is not None:  # delivered again: the entry stands as first written
                return {k: v for k, v in recorded.items() if k != SCHEMA_KEY}
        target = reserved_target(state, backup_id, ctx.filer.key)
        summary, applied = stored_outcome(ctx, target.final_job)
        precopy = stored_outcome(ctx, target.precopy_job)[0] if ctx.short_offline_window else None
        status = request.status
        if status in VERIFIED_STATUSES:
            if not (summary and summary.verified):
                raise InputRefused(
                    f"backup {backup_id} cannot be recorded as {status}: its final copy pass is not verified",
                    filer=ctx.filer.key,
                )
            status = "verified_with_extras" if summary.needs_approval and applied is None else "verified"
        untouched = status == NOT_APPROVED and _untouched(ctx, target, backup_id)
        rotated = catalog.key(ctx.filer, backup_id)
        record = catalog.record(ctx.filer, backup_id)
        entry = _entry(snapshot, target, status, request)
        entry.update(
            {
                "manifest": target.final_job if status in VERIFIED_STATUSES else None,
                "key": {**SecretRef.to_json(rotated[0]), "key_id": rotated[1]} if rotated else None,
                "summary": plain(summary) if summary else None,
                "precopy": plain(precopy) if precopy else None,
                "verified": (
                    {"blobs": summary.listed, "copied": summary.copied, "bytes_copied": summary.bytes_copied}
                    if summary and summary.verified
                    else None
                ),
                "record": FilerRecord.to_json(record) if record else None,
                "generation_untouched": untouched,
                # The failover checks the manifest against this instead of re-reading it whole.
                "manifest_digest": (manifest_digest(ctx, target.final_job) if status in VERIFIED_STATUSES else None),
                # The recovery point: when the filer was flushed and removed for this backup, as the catalog's removal
                # mark recorded it (the run's own timing only when the catalog holds none).
                "consistent_at": _consistent_at(state, backup_id) or request.consistent_at or None,
            }
        )
        catalog.put_backup(ctx.filer, backup_id, entry)
        catalog.update(
            ctx.filer,
            lambda s: finish_writing(
                s,
                target.generation,
                backup_id,
                status,
                entry["finished_at"],
                manifest=entry["manifest"],
                key=rotated[0] if rotated else None,
                filer=ctx.filer.key,
                untouched=untouched,
            ),
        )
    log.info("backup %s of %s: %s (generation %s)", backup_id, ctx.filer.key, status, target.generation)
    return entry


def _untouched(ctx: RunContext, target: BackupTarget, backup_id: str) -> bool:
    """changes_not_approved: whether the generation still holds what it held when the run began, so the catalog
    keeps its earlier verified backup. Needs the engine's records: a pass held by the change guard and not
    approved, and no pass of the run that wrote anything (else the generation is marked failed)."""
    held, untouched = held_untouched(ctx, tuple(job for job in pass_ids(ctx, target) if job))
    if not held:
        raise InputRefused(
            f"backup {backup_id} cannot be recorded as {NOT_APPROVED}: no pass of it is held by the change guard",
            filer=ctx.filer.key,
        )
    return untouched


def _consistent_at(state: FilerState, backup_id: str) -> str | None:
    """When the backup's data was consistent: the filer flushed and about to be removed, as mark_removed recorded
    it in the catalog (None if this run never removed the filer). Drills measure their RPO from it."""
    last = state.last_run or {}
    at = last.get("removed_at") if last.get("backup_id") == backup_id else None
    return at if isinstance(at, str) else None


def _entry(snapshot: RunSnapshot, target: BackupTarget, status: str, request: CompleteBackup) -> dict[str, Any]:
    """The backup entry's fields about the run (complete_backup adds what the copy and the catalog hold)."""
    filer = snapshot.plan.filer(snapshot.cluster, snapshot.filer)
    return {
        "backup_id": target.backup_id,
        "cluster": snapshot.cluster,
        "filer": filer.name,
        "instance_id": snapshot.instance_id,
        "status": status,
        "generation": target.generation,
        "container": target.container,
        "backup_account": filer.backup.account,
        "source": f"{filer.source.account}/{filer.source.container}",
        "started_at": snapshot.started_at,
        "finished_at": services.now_iso(),
        "previous_manifest": target.previous_manifest,
        "timings": dict(request.timings[:MAX_TIMINGS]),
        "error": request.error[:2000],
        "deletes_approval": {k[:40]: v[:300] for k, v in request.approval[:8]} or None,
    }


def mark_removed(ref: RunRef) -> None:
    """Before anything is removed: what this run removes (the record capture stored, the key rotation stored),
    so a reconcile or `readd` can put it back."""
    ctx = load_run(ref, *BACKUP_KINDS).context()
    backup_id = ref.run_id
    with open_catalog(ctx) as catalog:
        reserved_target(catalog.load(ctx.filer), backup_id, ctx.filer.key)  # this run is writing its backup
        record = catalog.record(ctx.filer, backup_id)
        if record is None:
            raise InputRefused(
                f"backup {backup_id} has no captured record: capture comes before any removal", filer=ctx.filer.key
            )
        rotated = catalog.key(ctx.filer, backup_id)
        since = services.now_iso()
        mark = {
            "since": since,
            "instance_id": ref.instance_id,
            "backup_id": backup_id,
            "record": FilerRecord.to_json(record),
            "key": _ref_json(rotated[0] if rotated else None),
        }

        def change(state: FilerState) -> None:
            state.removed_by_app = mark
            generation = state.generation_of(backup_id)
            if generation and state.generations[generation].status == WRITING:
                state.generations[generation].consistent_at = since  # the backup's consistent point
            if (state.last_run or {}).get("backup_id") == backup_id:  # the consistent point, for drills' RPO
                state.last_run = {**(state.last_run or {}), "removed_at": mark["since"]}

        catalog.update(ctx.filer, change)
    log.info("%s: marked removed by %s", ctx.filer.key, ref.instance_id)


def removal_recorded(catalog: Catalog, filer: Filer, ref: RunRef) -> None:
    """Removing needs the catalog's record of the removal by this very run first (else InputRefused)."""
    mark = catalog.load(filer).removed_by_app or {}
    if (mark.get("instance_id"), mark.get("backup_id")) != (ref.instance_id, ref.run_id):
        raise InputRefused(
            f"the catalog does not record the removal of {filer.key} by backup {ref.run_id} "
            f"({ref.instance_id}): nothing is removed before the catalog can put it back",
            filer=filer.key,
        )


def _removed(catalog: Catalog, filer: Filer, ref: RunRef, kind: str) -> tuple[FilerRecord | None, SecretRef | None]:
    """The record and key to re-add: the marks' (readd, backup), else what a backup run captured and rotated."""
    record, key = catalog.load(filer).removed_record()
    if record is None and kind in BACKUP_KINDS:
        record = catalog.record(filer, ref.run_id)
        rotated = catalog.key(filer, ref.run_id)
        key = rotated[0] if rotated else None
    return record, key


def mark_attention(request: AttentionRef) -> None:
    """The filer is left removed and needs a person: the mark keeps the record; one alertable log line."""
    ref = request.run
    snapshot = load_run(ref, *BACKUP_KINDS, "readd")
    ctx = snapshot.context()
    at = services.now_iso()
    with open_catalog(ctx) as catalog:
        record, key = _removed(catalog, ctx.filer, ref, snapshot.kind)

        def change(state: FilerState) -> None:
            state.needs_attention = {
                "since": (state.needs_attention or {}).get("since", at),
                "last": at,
                "instance_id": ref.instance_id,
                "error": request.error[:2000],
                "record": FilerRecord.to_json(record) if record else None,
                "key": _ref_json(key),
            }

        catalog.update(ctx.filer, change)
    signals.emit(
        log,
        [
            signals.needs_attention(
                ctx.filer.key, instance_id=ref.instance_id, error=request.error[:500] or "re-add failed"
            )
        ],
    )


def clear_removed(ref: RunRef) -> None:
    """After a successful re-add (the cluster shows the filer online): neither removed nor needing attention any
    more. When another instance (readd, reconcile) re-added the filer, the run that removed it is gone: its
    generation, still `writing`, is marked failed so the catalog does not claim a backup in progress."""
    ctx = load_run(ref, *BACKUP_KINDS, "readd").context()
    with services.avere_client(ctx.cluster, ctx.keyvault_url) as client:
        state_now = client.filer_state(ctx.filer.name)
    if state_now != "online":
        raise InputRefused(
            f"core filer {ctx.filer.name!r} is {state_now or 'unknown'} on cluster "
            f"{ctx.cluster.name}, not online: its removed mark stays until it is re-added",
            filer=ctx.filer.key,
            state="the catalog still records the removal",
        )
    at = services.now_iso()

    def change(state: FilerState) -> None:
        mark = state.removed_by_app or state.needs_attention or {}
        if mark.get("instance_id") not in (None, ref.instance_id) and mark.get("backup_id"):
            generation = state.generation_of(mark["backup_id"])
            if generation and state.generations[generation].status == WRITING:
                finish_writing(
                    state, generation, mark["backup_id"], "failed", at, manifest=None, key=None, filer=ctx.filer.key
                )
                state.last_run = {**(state.last_run or {}), "status": "interrupted"}
        state.removed_by_app = None
        state.needs_attention = None

    with open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, change)
    log.info("%s: re-added by %s; removed and attention marks cleared", ctx.filer.key, ref.instance_id)


def _held_at_dr(ctx: RunContext, filer: Filer, reprotect: FilerState) -> str | None:
    """Why a readd run at DR re-adds nothing there: a failback attached a generation at the primary (it may serve
    there: never a second cluster); or no re-protect run removed it, and the primary copy stays fenced."""
    attached = failback_attached(reprotect)
    if attached is not None or reprotect.removed_record()[0] is not None:
        return attached
    with open_catalog(replace(ctx, side="dr")) as main:
        fence = active_fence(main.load(filer))
    return None if fence is None else f"{describe(fence)}; the re-protect side records no removal at the DR cluster"


def _left_alone(state: FilerState, why: str) -> ReaddPlan:
    """A readd run that re-adds nothing: the marks as they are, and why (`fenced`)."""
    return ReaddPlan(
        record=None,
        key=None,
        needs_attention=state.needs_attention is not None,
        removed_by_app=state.removed_by_app is not None,
        fenced=why,
    )


def readd_plan(ref: RunRef) -> ReaddPlan:
    """What the catalog says this app removed, to replay. A filer fenced after a failover is left alone
    (`fenced` says how), unless the run was started to lift the fence (its snapshot's reason, from the readd
    route's ?override=failed-over) and the catalog holds that operator's authorisation for this very run: then
    the fence is lifted here, and the plan replays what was removed, or else what the fence captured (to
    unsuspend the filer)."""
    snapshot = load_run(ref, "readd")
    ctx = snapshot.context()
    lift = snapshot.reason == LIFT_FENCE
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        plan_filer = snapshot.plan.filer(snapshot.cluster, snapshot.filer)
        at_dr = _held_at_dr(ctx, plan_filer, state) if is_reprotect(ctx) else None
        if at_dr is not None:
            return _left_alone(state, at_dr)
        fence = active_fence(state)
        if fence is not None and not (lift and restorable(state)):
            why = describe(fence) + ("" if not lift else "; nothing recorded to bring back: restore it by hand")
            return _left_alone(state, why)
        if fence is not None:
            lifted = catalog.update(
                ctx.filer,
                lambda s: lift_fence(s, instance_id=ref.instance_id, at=services.now_iso(), filer=ctx.filer.key),
            )
            log.warning(
                "%s: failover fence lifted by %s, as %s asked",
                ctx.filer.key,
                ref.instance_id,
                (lifted.get("lift") or {}).get("by") or "an unidentified operator",
            )
            state = catalog.load(ctx.filer)
        record, key = state.removed_record()
        if record is None and lift:
            record = lifted_record(state, ref.instance_id)
    return ReaddPlan(
        record=record,
        key=key,
        needs_attention=state.needs_attention is not None,
        removed_by_app=state.removed_by_app is not None,
        fence_lifted=lift and ((state.fence or {}).get("lifted") or {}).get("instance_id") == ref.instance_id,
    )


def _catalog_for(plan: Plan, filer: Filer) -> Catalog:
    return Catalog(services.backup_account(filer, plan.storage_auth, plan.keyvault_url), plan.catalog_container)


def load_states(plan: Plan, filers: tuple[Filer, ...] | list[Filer] | None = None) -> dict[str, FilerState]:
    """The catalog state of each filer of the plan (for the schedule), by filer key."""
    out: dict[str, FilerState] = {}
    for filer in plan.filers if filers is None else filers:
        with _catalog_for(plan, filer) as catalog:
            out[filer.key] = catalog.load(filer)
    return out


def load_reprotect_states(plan: Plan, states: dict[str, FilerState]) -> dict[str, FilerState]:
    """The re-protect side's state (its runs' removal and attention marks) of each filer that serves at DR."""
    out: dict[str, FilerState] = {}
    for filer in plan.filers:
        state = states.get(filer.key)
        if state is None or not reprotecting(state):
            continue
        rp_filer = reprotect_filer(filer, home_of(state, filer))
        account = services.backup_account(filer, plan.storage_auth, plan.keyvault_url)
        with Catalog(account, plan.catalog_container, side=REPROTECT) as catalog:
            out[filer.key] = catalog.load(rp_filer)
    return out


def record_scheduled(plan: Plan, filer: Filer, occurrence: str) -> None:
    """The schedule started a run for this occurrence: it is not due again until the next one."""

    def change(state: FilerState) -> None:
        if state.last_scheduled is None or state.last_scheduled < occurrence:
            state.last_scheduled = occurrence

    with _catalog_for(plan, filer) as catalog:
        catalog.update(filer, change)
