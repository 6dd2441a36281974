"""Recovery points: every verified backup a filer's catalog holds, newest first, with what an operator picks by."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.blobcopy.manifest import ManifestIndex
from shared.catalog.store import ATTACHED, VERIFIED, FilerState, Generation
from shared.core.errors import DrError
from shared.plan.load import Filer, Plan, UnknownClusterError
from shared.plan.model import GENERATION_IDS
from shared.runbook.blockers import reprotecting
from shared.runbook.copy import manifest_index
from shared.runbook.home import directed, home_of
from shared.runbook.payloads import RunContext
from shared.runbook.services import open_catalog

log = logging.getLogger("vfxtdr.catalog")


def _verification(gen: Generation, entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the run that wrote it checked: every blob verified, and (with extras) the blobs kept because their
    deletion was not approved. Counts are null for an entry the catalog no longer holds."""
    verified = (entry or {}).get("verified") or {}
    summary = (entry or {}).get("summary") or {}
    return {
        "result": "verified_with_extras" if gen.extras else "verified",
        "blobs": verified.get("blobs"),
        "copied": verified.get("copied"),
        "mismatches": summary.get("mismatches"),
        "extras": summary.get("delete_candidates", 0) if gen.extras else 0,
    }


def recovery_points(
    state: FilerState,
    count: int,
    entries: Mapping[str, Mapping[str, Any] | None],
    indexes: Mapping[str, ManifestIndex | None],
) -> dict[str, Any]:
    """The verified backups of a filer (pure): from its catalog state, its backup entries by backup id and
    its manifest indexes by manifest id. Newest first. Generations beyond `count` are outside retention:
    listed (never deleted, never written again) and named in `outside_retention`."""
    kept = set(GENERATION_IDS[:count])
    points = []
    for g, gen in state.generations.items():
        if gen.status not in (VERIFIED, ATTACHED) or not gen.backup_id or not gen.manifest:
            continue
        index = indexes.get(gen.manifest)
        points.append(
            {
                "backup_id": gen.backup_id,
                "generation": g,
                "container": gen.container,
                "consistent_point": gen.consistent_at,
                "verified_at": gen.verified_at,
                "size_bytes": index.bytes if index else None,
                "blobs": index.count if index else None,
                "manifest": index.state if index else "missing",
                "key_version": gen.key.version if gen.key else None,
                "verification": _verification(gen, entries.get(gen.backup_id)),
                "outside_retention": g not in kept,
                "attached_to": (gen.attached_to or {}).get("target_cluster") if gen.status == ATTACHED else None,
                "pinned_by": gen.pinned_by,
            }
        )
    points.sort(key=lambda p: (p["verified_at"] or "", p["generation"]), reverse=True)
    newest = state.newest_verified()
    return {
        "generations": count,
        "newest": state.generations[newest].backup_id if newest else None,
        "recovery_points": points,
        "outside_retention": state.outside_retention(count),
    }


def _points_of(ctx: RunContext, count: int) -> tuple[FilerState, dict[str, Any]]:
    """(the state, its recovery points) of one side of a filer's catalog (the context's: the main document, or
    the re-protect one)."""
    with open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
        held = [
            gen
            for gen in state.generations.values()
            if gen.status in (VERIFIED, ATTACHED) and gen.backup_id and gen.manifest
        ]
        entries = {str(gen.backup_id): catalog.backup(ctx.filer, str(gen.backup_id)) for gen in held}
    indexes = {str(gen.manifest): manifest_index(ctx, str(gen.manifest)) for gen in held}
    return state, recovery_points(state, count, entries, indexes)


def list_recovery_points(plan: Plan, filer: Filer) -> dict[str, Any]:
    """The recovery points of a filer of the plan, read from its catalog and its manifests (reads only). Serving
    at the DR cluster, also the re-protect backups (in the primary region's account: what a failback takes).
    Raises DrError when the catalog's home names a DR cluster the plan no longer has."""
    ctx = RunContext.from_plan(plan, filer.cluster, filer.name)
    state, main = _points_of(ctx, filer.backup.generations)
    if main["outside_retention"]:
        log.warning(
            "%s: generations %s are outside retention (the plan keeps %d): listed, kept, never deleted by the app",
            filer.key,
            ", ".join(main["outside_retention"]),
            filer.backup.generations,
        )
    reprotect = None
    if reprotecting(state):
        home = home_of(state, filer)
        try:
            rp_ctx = directed(ctx, plan, home)
        except UnknownClusterError as err:
            raise DrError(
                f"the filer serves at cluster {home.cluster}, which the plan does not list: {err}",
                filer=filer.key,
                state="nothing read or changed",
                action="put the DR cluster back in the plan's dr_clusters",
            ) from None
        _, points = _points_of(rp_ctx, filer.backup.generations)
        reprotect = {
            "account": rp_ctx.filer.backup.account,
            "region": rp_ctx.filer.backup.region,
            "from_cluster": rp_ctx.cluster.name,
            **points,
        }
    return {"cluster": filer.cluster, "filer": filer.name, **main, "reprotect": reprotect}
