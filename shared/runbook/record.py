"""A backup run's bookkeeping in the catalog: begin, complete, removed / needs-attention marks, re-add plans."""

from __future__ import annotations

import logging
from typing import Any

from shared.avere.records import FilerRecord
from shared.azure.keyvault import SecretRef
from shared.catalog.fence import active_fence, describe, lift_fence
from shared.catalog.store import WRITING, Catalog, FilerState, begin_writing, finish_writing
from shared.core.codec import plain
from shared.plan.load import Filer, Plan
from shared.runbook import services
from shared.runbook.payloads import (
    NEEDS_ATTENTION,
    Attention,
    BackupTarget,
    BeginBackup,
    CompleteBackup,
    FilerRef,
    MarkRemoved,
    ReaddPlan,
    RunContext,
    readd_instance_id,
)
from shared.runbook.services import open_catalog

log = logging.getLogger("vfxtdr.catalog")

VERIFIED_STATUSES = ("verified", "verified_with_extras")


def _ref_json(ref: SecretRef | None) -> dict[str, str] | None:
    return SecretRef.to_json(ref) if ref else None


def begin_backup(request: BeginBackup) -> BackupTarget:
    """Mark the generation not holding the newest verified backup `writing` (idempotent per backup id) and
    make sure its container and the catalog container exist."""
    ctx = request.context
    filer = ctx.filer
    with open_catalog(ctx) as catalog:
        catalog.ensure_container()
        generation, gen = catalog.update(filer, lambda s: begin_writing(
            s, request.backup_id, request.instance_id, request.started_at, filer.key))
        catalog.ensure_backup_container(gen.container)
    log.info("backup %s of %s writes generation %s (%s), incremental from %s", request.backup_id, filer.key,
             generation, gen.container, gen.previous_manifest or "the container's own listing")
    return BackupTarget(backup_id=request.backup_id, generation=generation, container=gen.container,
                        previous_manifest=gen.previous_manifest, precopy_job=f"{request.backup_id}-pre",
                        final_job=f"{request.backup_id}-final")


def complete_backup(request: CompleteBackup) -> dict[str, Any]:
    """Write the backup entry, then settle the generation: verified (newest verified) or failed."""
    ctx, target, status = request.context, request.target, request.status
    if status in VERIFIED_STATUSES and not (request.summary and request.summary.verified):
        raise ValueError(f"backup {target.backup_id} cannot be recorded as {status}: its final copy pass is "
                         "not verified")
    key = request.key.secret if request.key else None
    entry: dict[str, Any] = {
        "backup_id": target.backup_id, "cluster": ctx.cluster.name, "filer": ctx.filer.name,
        "instance_id": request.instance_id, "status": status, "generation": target.generation,
        "container": target.container, "backup_account": ctx.filer.backup.account,
        "source": f"{ctx.filer.source.account}/{ctx.filer.source.container}",
        "started_at": request.started_at, "finished_at": request.finished_at,
        "manifest": target.final_job if status in VERIFIED_STATUSES else None,
        "previous_manifest": target.previous_manifest,
        "key": ({**SecretRef.to_json(key), "key_id": request.key.key_id} if request.key and key else None),
        "summary": plain(request.summary) if request.summary else None,
        "precopy": plain(request.precopy) if request.precopy else None,
        "verified": ({"blobs": request.summary.listed, "copied": request.summary.copied,
                      "bytes_copied": request.summary.bytes_copied}
                     if request.summary and request.summary.verified else None),
        "timings": dict(request.timings),
        "record": FilerRecord.to_json(request.record) if request.record else None,
        "error": request.error[:2000],
        "deletes_approval": dict(request.approval) or None,
    }
    with open_catalog(ctx) as catalog:
        catalog.put_backup(ctx.filer, target.backup_id, entry)
        if request.record is not None:
            catalog.put_record(ctx.filer, target.backup_id, request.record)
        catalog.update(ctx.filer, lambda s: finish_writing(
            s, target.generation, target.backup_id, status, request.finished_at, manifest=entry["manifest"],
            key=key, filer=ctx.filer.key))
    log.info("backup %s of %s: %s (generation %s)", target.backup_id, ctx.filer.key, status, target.generation)
    return entry


def mark_removed(request: MarkRemoved) -> None:
    """Before anything is removed: what this run removes, so a reconcile or `readd` can put it back."""
    ctx = request.context
    mark = {"since": request.at, "instance_id": request.instance_id, "backup_id": request.backup_id,
            "record": FilerRecord.to_json(request.record), "key": _ref_json(request.key)}

    def change(state: FilerState) -> None:
        state.removed_by_app = mark

    with open_catalog(ctx) as catalog:
        catalog.put_record(ctx.filer, request.backup_id, request.record)
        catalog.update(ctx.filer, change)
    log.info("%s: marked removed by %s", ctx.filer.key, request.instance_id)


def mark_attention(request: Attention) -> None:
    """The filer is left removed and needs a person: the mark keeps the record; one alertable log line."""
    ctx = request.context
    at = services.now_iso()

    def change(state: FilerState) -> None:
        record, key = state.removed_record()
        if request.record is not None:
            record = request.record
        state.needs_attention = {"since": (state.needs_attention or {}).get("since", at), "last": at,
                                 "instance_id": request.instance_id, "error": request.error[:2000],
                                 "record": FilerRecord.to_json(record) if record else None,
                                 "key": _ref_json(key)}

    with open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, change)
    log.error("%s filer=%s instance=%s: %s", NEEDS_ATTENTION, ctx.filer.key, request.instance_id,
              request.error[:500] or "re-add failed")


def clear_removed(request: Attention) -> None:
    """After a successful re-add: neither removed nor needing attention any more. When another instance
    (readd, reconcile) re-added the filer, the run that removed it is gone: its generation, still `writing`,
    is marked failed so the catalog does not claim a backup in progress."""
    ctx = request.context
    at = services.now_iso()

    def change(state: FilerState) -> None:
        mark = state.removed_by_app or state.needs_attention or {}
        if mark.get("instance_id") not in (None, request.instance_id) and mark.get("backup_id"):
            generation = state.generation_of(mark["backup_id"])
            if generation and state.generations[generation].status == WRITING:
                finish_writing(state, generation, mark["backup_id"], "failed", at, manifest=None, key=None,
                               filer=ctx.filer.key)
                state.last_run = {**(state.last_run or {}), "status": "interrupted"}
        state.removed_by_app = None
        state.needs_attention = None

    with open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, change)
    log.info("%s: re-added by %s; removed and attention marks cleared", ctx.filer.key, request.instance_id)


def readd_plan(ref: FilerRef) -> ReaddPlan:
    """What the catalog says this app removed, to replay it. A filer fenced after a failover is left alone
    (`fenced` says how), unless an operator's override authorised this run to lift the fence: then it is
    lifted here, and the plan replays what was removed, or else what the fence captured (to unsuspend)."""
    plan = services.load_plan()
    ctx = RunContext.from_plan(plan, ref.cluster, ref.filer)
    run = readd_instance_id(ref.cluster, ref.filer)
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        fence = active_fence(state)
        lifted = None
        if fence is not None and not ref.lift_fence:
            return ReaddPlan(context=ctx, record=None, key=None, needs_attention=state.needs_attention is not None,
                             removed_by_app=state.removed_by_app is not None, fenced=describe(fence))
        if fence is not None:
            lifted = catalog.update(ctx.filer, lambda s: lift_fence(s, instance_id=run, at=services.now_iso(),
                                                                    filer=ctx.filer.key))
            log.warning("%s: fence lifted for %s, as %s asked", ctx.filer.key, run,
                        (lifted.get("lift") or {}).get("by") or "an unidentified operator")
        elif ref.lift_fence and ((state.fence or {}).get("lifted") or {}).get("instance_id") == run:
            lifted = state.fence  # lifted by an earlier attempt of this activity
        record, key = state.removed_record()
        if record is None and lifted is not None:
            record = _fenced_record(catalog, state, ctx, lifted)
    return ReaddPlan(context=ctx, record=record, key=key, needs_attention=state.needs_attention is not None,
                     removed_by_app=state.removed_by_app is not None, fence_lifted=lifted is not None)


def _fenced_record(catalog: Catalog, state: FilerState, ctx: RunContext, fence: dict[str, Any]
                   ) -> FilerRecord | None:
    """What a lifted fence restores when nothing was removed: the record the fence captured, else the newest
    backup's."""
    if fence.get("record"):
        return FilerRecord.from_json(fence["record"])
    newest = state.newest_verified() or next(iter(state.attached()), None)
    backup_id = state.generations[newest].backup_id if newest else None
    return catalog.record(ctx.filer, backup_id) if backup_id else None


def _catalog_for(plan: Plan, filer: Filer) -> Catalog:
    return Catalog(services.backup_account(filer, plan.storage_auth, plan.keyvault_url), plan.catalog_container)


def load_states(plan: Plan, filers: tuple[Filer, ...] | list[Filer] | None = None) -> dict[str, FilerState]:
    """The catalog state of each filer of the plan (for the schedule), by filer key."""
    out: dict[str, FilerState] = {}
    for filer in plan.filers if filers is None else filers:
        with _catalog_for(plan, filer) as catalog:
            out[filer.key] = catalog.load(filer)
    return out


def record_scheduled(plan: Plan, filer: Filer, occurrence: str) -> None:
    """The schedule started a run for this occurrence: it is not due again until the next one."""

    def change(state: FilerState) -> None:
        if state.last_scheduled is None or state.last_scheduled < occurrence:
            state.last_scheduled = occurrence

    with _catalog_for(plan, filer) as catalog:
        catalog.update(filer, change)
