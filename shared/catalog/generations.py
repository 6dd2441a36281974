"""Pure transitions of a filer's backup generations in its catalog state: which one a run writes, writing and
finishing it, attaching it to a DR cluster, pinning it for a drill. The store (store.py) applies them under an
ETag condition."""

from __future__ import annotations

from shared.azure.keyvault import SecretRef
from shared.catalog.store import (
    ATTACHED,
    FAILED,
    NOT_APPROVED,
    VERIFIED,
    WRITING,
    FilerState,
    Generation,
)
from shared.core.errors import CatalogConflict
from shared.plan.model import DEFAULT_GENERATIONS, GENERATION_IDS


def choose_generation(state: FilerState, backup_id: str, filer: str, count: int = DEFAULT_GENERATIONS) -> str:
    """The generation a run writes into: the one already `writing` for this backup id; else, among the plan's
    first `count` generations, an empty or unverified one (in order a, b, c, ...); else the oldest verified
    one. Never the newest verified, an attached one (failover) or a pinned one (a drill)."""
    mine = state.generation_of(backup_id)
    if mine is not None and state.generations[mine].status == WRITING:
        return mine
    newest = state.newest_verified()
    unavailable: list[str] = []
    candidates: list[str] = []
    for g in GENERATION_IDS[:count]:
        gen = state.generations.get(g)
        if gen is None:
            continue
        if g == newest:
            unavailable.append(f"{g} holds the newest verified backup")
        elif gen.status == ATTACHED:
            unavailable.append(f"{g} is attached to cluster {(gen.attached_to or {}).get('target_cluster')}")
        elif g in state.pins:  # a drill reads it
            pin = state.pins[g] or {}
            unavailable.append(f"generation {g} is read by drill {pin.get('drill_id')} ({pin.get('instance_id')})")
        elif gen.pinned_by:
            unavailable.append(f"{g} is pinned by {gen.pinned_by}")
        else:
            candidates.append(g)
    unverified = [g for g in candidates if state.generations[g].status != VERIFIED]
    if unverified:
        return unverified[0]
    if candidates:
        return min(candidates, key=lambda g: (state.generations[g].verified_at or "", g))
    raise CatalogConflict(
        "no backup generation can be written: " + "; ".join(unavailable or ["none exists"]),
        filer=filer,
        state="catalog unchanged",
        action="fail back or end the drill, or raise backup.generations in the plan",
    )


def begin_writing(
    state: FilerState, backup_id: str, instance_id: str, at: str, filer: str, *, count: int = DEFAULT_GENERATIONS
) -> tuple[str, Generation]:
    g = choose_generation(state, backup_id, filer, count)
    gen = state.generations[g]
    if gen.status == WRITING and gen.backup_id == backup_id:
        return g, gen
    previous = gen.manifest if gen.status == VERIFIED else None
    before = gen.to_json() if gen.status == VERIFIED else None
    state.generations[g] = Generation(
        container=gen.container, status=WRITING, backup_id=backup_id, previous_manifest=previous, before_run=before
    )
    state.last_run = {
        "backup_id": backup_id,
        "instance_id": instance_id,
        "status": "running",
        "started_at": at,
        "generation": g,
    }
    return g, state.generations[g]


def finish_writing(
    state: FilerState,
    generation: str,
    backup_id: str,
    status: str,
    at: str,
    *,
    manifest: str | None,
    key: SecretRef | None,
    filer: str,
    untouched: bool = False,
) -> None:
    """verified / verified_with_extras make the generation the newest verified; failed / cancelled mark only
    it failed, and so does changes_not_approved, unless the run copied nothing into it (`untouched`): then it
    holds its earlier verified backup again. No other generation is ever touched."""
    gen = state.generations.get(generation)
    if gen is None or gen.backup_id != backup_id or gen.status not in (WRITING, VERIFIED, FAILED):
        now = "missing" if gen is None else f"{gen.status} for backup {gen.backup_id}"
        raise CatalogConflict(
            f"generation {generation} is {now}, not being written by backup {backup_id}",
            filer=filer,
            state="catalog unchanged",
            action="start a new backup",
        )
    if status in ("verified", "verified_with_extras"):
        if not manifest:
            raise ValueError("a verified backup needs its manifest")
        gen.status, gen.verified_at, gen.manifest, gen.key = VERIFIED, at, manifest, key
        gen.extras = status == "verified_with_extras"
        state.latest_verified = generation
    elif status == NOT_APPROVED and untouched and gen.status == WRITING and gen.before_run:
        state.generations[generation] = Generation.from_json(gen.before_run)
    elif status in ("failed", "cancelled", NOT_APPROVED):
        if gen.status != VERIFIED:
            gen.status = FAILED
    else:
        raise ValueError(
            f"backup status {status!r} is not verified, verified_with_extras, failed, cancelled or {NOT_APPROVED}"
        )
    gen.previous_manifest = gen.before_run = None
    state.last_run = {
        **(state.last_run or {}),
        "backup_id": backup_id,
        "status": status,
        "finished_at": at,
        "generation": generation,
    }


def attach_generation(
    state: FilerState, generation: str, backup_id: str, *, target: str, instance_id: str, at: str, filer: str
) -> None:
    gen = state.generations.get(generation)
    if gen is None or gen.backup_id != backup_id or gen.status not in (VERIFIED, ATTACHED):
        now = "missing" if gen is None else f"{gen.status} (backup {gen.backup_id})"
        raise CatalogConflict(
            f"backup {backup_id} cannot be attached: generation {generation} is {now}",
            filer=filer,
            state="catalog unchanged",
            action="choose a verified backup",
        )
    if gen.status == ATTACHED and (gen.attached_to or {}).get("target_cluster") != target:
        raise CatalogConflict(
            f"backup {backup_id} is already attached to cluster {(gen.attached_to or {}).get('target_cluster')}",
            filer=filer,
            state="catalog unchanged",
            action="fail over to that cluster or fail back first",
        )
    gen.status = ATTACHED
    gen.attached_to = {"target_cluster": target, "instance_id": instance_id, "at": at, "backup_id": backup_id}


def pin_generation(state: FilerState, backup_id: str, *, drill_id: str, instance_id: str, at: str, filer: str) -> str:
    """A drill reads the verified generation holding backup_id: no backup writes it until `unpin`. The pin of an
    earlier drill of the filer (one runs at a time: it ended without unpinning) gives way."""
    g = state.generation_of(backup_id)
    gen = state.generations.get(g) if g else None
    if g is None or gen is None or gen.status != VERIFIED or not gen.manifest:
        now = "held by neither generation" if gen is None else f"{gen.status} in generation {g}"
        raise CatalogConflict(
            f"backup {backup_id} cannot be drilled: it is {now}, not verified",
            filer=filer,
            state="catalog unchanged",
            action="drill a verified backup",
        )
    state.pins = {g: {"drill_id": drill_id, "instance_id": instance_id, "backup_id": backup_id, "since": at}}
    return g


def unpin(state: FilerState, drill_id: str) -> bool:
    """The drill no longer reads its generation; True when it had a pin."""
    mine = [g for g, p in state.pins.items() if p.get("drill_id") == drill_id]
    for g in mine:
        del state.pins[g]
    return bool(mine)
