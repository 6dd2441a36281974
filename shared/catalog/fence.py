"""The primary filer's fence after a failover (pure transitions of a filer's catalog state).

Once a failover of a filer is requested, its primary copy must not serve clients again: the DR cluster serves
it from the backup, and two clusters writing the same files is split brain. The fence is the catalog's record
of that (`state.fence`): who asked, towards which cluster, and how the primary filer is kept from serving:

- `pending`: nothing applied yet (the primary was unreachable): the next timer tick that reaches it applies it;
- `suspended`: client access suspended on the primary cluster (`corefiler.modify clientSuspend yes`);
- `removed`: the filer is not on the primary cluster (a cancelled backup had removed it, and leaves it so).

Nothing re-adds or unsuspends a fenced filer (re-add, compensation, reconcile all check first), until an
operator lifts the fence: the readd route with `?override=failed-over` records a short-lived authorisation
(`lift`) that the re-add run it starts consumes (`lifted`). A failed-over state written before fences existed
(failed_over or an attached generation with no fence mark) counts as a pending fence: fail closed.
"""

from __future__ import annotations

from typing import Any

from shared.avere.records import FilerRecord
from shared.catalog.store import FilerState
from shared.core.clock import parse_iso
from shared.core.errors import CatalogConflict

PENDING, SUSPENDED, REMOVED = "pending", "suspended", "removed"
HOWS = (PENDING, SUSPENDED, REMOVED)
OVERRIDE = "failed-over"  # the readd route's ?override= value that lifts a fence


def active_fence(state: FilerState) -> dict[str, Any] | None:
    """The fence that keeps the primary filer from serving, or None when there is none (or it was lifted)."""
    mark = state.fence
    if mark is not None:
        return None if mark.get("lifted") else mark
    if state.failed_over or state.attached():
        target = (state.failed_over or {}).get("target_cluster") or next(
            ((state.generations[g].attached_to or {}).get("target_cluster") for g in state.attached()), None
        )
        return {
            "how": PENDING,
            "target_cluster": target,
            "legacy": True,
            "detail": "failed over before fences were recorded: the primary filer is fenced at the next tick",
        }
    return None


def begin_fence(
    state: FilerState, *, instance_id: str, target: str, by: str, at: str, request: str = "", claim: bool = False
) -> dict[str, Any]:
    """A failover was requested: fence the primary filer (idempotent: an active fence keeps its history).

    `request` (a route's own token) marks a fence this call wrote, so that route may withdraw it if it then
    starts nothing (`withdraw_fence`); `claim` is the failover run's own call: from then on a run relies on the
    fence and nobody withdraws it."""
    current = active_fence(state)
    if current is not None and not current.get("legacy"):
        if claim and not current.get("claimed"):
            current["claimed"] = instance_id  # current is state.fence itself (not legacy)
        return current
    how = (current or {}).get("how", PENDING)
    state.fence = {
        "since": at,
        "instance_id": instance_id,
        "target_cluster": target,
        "by": by,
        "how": how,
        "at": at,
        "detail": "failover requested; not applied on the primary cluster yet",
    }
    if request:
        state.fence["request"] = request
    if claim:
        state.fence["claimed"] = instance_id
    return state.fence


WITHDRAWN, IN_USE, HELD = "withdrawn", "in use", "held"


def withdraw_fence(state: FilerState, request: str) -> str:
    """Withdraw the fence a route wrote (`request`, its token) when the route then started nothing, only with
    positive evidence that nothing relies on it. WITHDRAWN; IN_USE when it is not this request's fence (another
    request's or an older one) or a failover run claimed it; HELD when it was applied on the primary cluster
    meanwhile (suspended or removed) or an operator acted on it: then it stays (fail closed)."""
    mark = state.fence
    if not request or mark is None or mark.get("request") != request or mark.get("claimed"):
        return IN_USE
    if mark.get("how") != PENDING or mark.get("lift") or mark.get("lifted"):
        return HELD
    state.fence = None
    return WITHDRAWN


def settle_fence(
    state: FilerState, *, how: str, detail: str, at: str, record: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Record how the primary filer is fenced now (what the cluster showed). No-op without an active fence:
    a fence lifted meanwhile stays lifted."""
    if how not in HOWS:
        raise ValueError(f"fence how {how!r} is not one of {', '.join(HOWS)}")
    current = active_fence(state)
    if current is None:
        return None
    mark = {k: v for k, v in current.items() if k != "legacy"}
    mark.setdefault("since", at)
    mark.update(how=how, at=at, detail=detail[:500])
    if record is not None:
        mark["record"] = record
    state.fence = mark
    return mark


def authorize_lift(state: FilerState, *, by: str, at: str, until: str, instance_id: str) -> None:
    """An operator asked to bring the fenced primary filer back: the re-add run `instance_id` may lift it."""
    current = active_fence(state)
    if current is None:
        return
    mark = {k: v for k, v in current.items() if k != "legacy"}
    mark["lift"] = {"by": by, "at": at, "until": until, "instance_id": instance_id}
    state.fence = mark


def revoke_lift(state: FilerState, instance_id: str) -> None:
    """Withdraw an authorisation nobody used (the re-add run could not start)."""
    mark = state.fence
    if mark and not mark.get("lifted") and (mark.get("lift") or {}).get("instance_id") == instance_id:
        state.fence = {k: v for k, v in mark.items() if k != "lift"}


def lift_fence(state: FilerState, *, instance_id: str, at: str, filer: str) -> dict[str, Any]:
    """Lift the active fence for re-add run `instance_id`: only with an operator's authorisation for that run,
    not yet expired. Returns the fence as it was (its record and how). Raises CatalogConflict otherwise."""
    current = active_fence(state)
    if current is None:
        raise CatalogConflict(
            "the filer is not fenced: nothing to lift",
            filer=filer,
            state="catalog unchanged",
            action="re-add without the override",
        )
    lift = current.get("lift") or {}
    problem = None
    if lift.get("instance_id") != instance_id:
        problem = "no operator asked to lift it for this run"
    elif parse_iso(str(lift.get("until"))) < parse_iso(at):
        problem = f"the operator's request expired at {lift.get('until')}"
    if problem:
        raise CatalogConflict(
            f"the primary filer is fenced after a failover and {problem}",
            filer=filer,
            state="still fenced; nothing re-added or unsuspended",
            action=f"POST /api/filers/{{cluster}}/{{filer}}/readd?override={OVERRIDE}",
        )
    state.fence = {**{k: v for k, v in current.items() if k not in ("legacy", "lift")}, "lifted": {**lift, "at": at}}
    return current


def restorable(state: FilerState) -> bool:
    """Whether lifting the fence could bring the filer back: a record of what this app removed, or the record the
    fence captured when it suspended the filer. Without one nothing is lifted (an operator restores it by hand)."""
    fence = active_fence(state) or {}
    marks = (state.removed_by_app, state.needs_attention)
    return any((mark or {}).get("record") for mark in marks) or bool(fence.get("record"))


def lifted_record(state: FilerState, instance_id: str) -> FilerRecord | None:
    """What a re-add run that lifted the fence restores when nothing was removed (the filer was suspended): the
    record the fence captured. None when the fence was not lifted for this run, or captured no record."""
    mark = state.fence or {}
    if (mark.get("lifted") or {}).get("instance_id") != instance_id or not mark.get("record"):
        return None
    return FilerRecord.from_json(mark["record"])


def describe(fence: dict[str, Any]) -> str:
    """One line for an operator: how the filer is fenced, since when, for which failover."""
    how = fence.get("how", PENDING)
    state = {
        PENDING: "fence pending (the primary cluster was not reachable yet)",
        SUSPENDED: "client access suspended on the primary cluster",
        REMOVED: "left removed from the primary cluster",
    }.get(how, how)
    target = fence.get("target_cluster")
    since = f" since {fence['since']}" if fence.get("since") else ""
    return f"fenced after a failover to cluster {target}{since}: {state}"
