"""Why a run of a filer may not start now, as a typed reason: domain code says why, the HTTP routes choose the
status (triggers/common.py). The catalog's failover rules are `failover.failover_blocker`; they answer the same."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.catalog.fence import OVERRIDE, active_fence, describe, restorable
from shared.catalog.store import ATTACHED, FilerState


class Reason(Enum):
    RUNNING = "running"  # a run of the filer (backup, re-add or failover) is in progress
    FAILED_OVER = "failed_over"  # the filer serves from a DR cluster now; backups stopped
    NEEDS_ATTENTION = "needs_attention"  # a re-add failed: a person fixes the cluster, then re-adds
    AWAITING_READD = "awaiting_readd"  # removed by this app, its re-add still to come
    NOTHING_TO_READD = "nothing_to_readd"  # the catalog shows no removal by this app
    NO_VERIFIED_BACKUP = "no_verified_backup"  # nothing to fail over to
    UNKNOWN_BACKUP = "unknown_backup"  # the named backup is held by neither backup container
    NOT_VERIFIED = "not_verified"  # the named backup is not verified (or attached to another cluster)
    ATTACHED_ELSEWHERE = "attached_elsewhere"  # a backup of the filer is attached to another cluster
    NOT_FAILED_OVER = "not_failed_over"  # a failback needs a filer that failed over
    NO_REPROTECT_BACKUP = "no_reprotect_backup"  # a failback needs a verified re-protect backup
    PRIMARY_UNREACHABLE = "primary_unreachable"  # a failback needs the primary cluster to answer
    FENCED = "fenced"  # a failover fenced the primary filer: nothing re-adds or unsuspends it without an override


@dataclass(frozen=True)
class Blocker:
    """A reason and the message that names the problem for the operator."""

    reason: Reason
    message: str


def reprotecting(state: FilerState) -> bool:
    """The filer failed over and serves from its backup container at the DR cluster: a backup now re-protects it
    (from the DR cluster into the primary region's account, shared/runbook/home.py); the fence stays."""
    done = state.failed_over or {}
    g = done.get("generation")
    return bool(done) and g in state.generations and state.generations[g].status == ATTACHED


def failback_attached(reprotect: FilerState) -> str | None:
    """Why a DR filer a re-protect or failback run left removed may not be re-added at DR, if it may not: a
    failback marked a re-protect generation attached to the primary cluster (it may serve there now)."""
    for g in reprotect.attached():
        by = reprotect.generations[g].attached_to or {}
        return (
            f"re-protect generation {g} is attached to cluster {by.get('target_cluster') or '?'} by "
            f"{by.get('instance_id') or 'an unknown run'} (a failback that did not finish): re-adding the filer at "
            "the DR cluster could serve it from two clusters; check which cluster serves it, then re-add it by hand"
        )
    return None


def backup_blocker(state: FilerState) -> Blocker | None:
    """Why the catalog forbids a new backup of this filer now, if it does. After a failover a backup re-protects
    the filer at DR: the primary's marks (its fence, its removal) are not the DR filer's."""
    if reprotecting(state):
        return None
    if state.failed_over:
        return Blocker(
            Reason.FAILED_OVER,
            f"the filer failed over to cluster {state.failed_over.get('target_cluster')}; backups stopped",
        )
    fence = active_fence(state)
    if fence is not None:
        return Blocker(Reason.FENCED, f"{describe(fence)}; backups stopped")
    if state.needs_attention:
        return Blocker(
            Reason.NEEDS_ATTENTION, "the filer needs attention (a re-add failed): fix the cluster, then POST .../readd"
        )
    if state.removed_by_app:
        return Blocker(Reason.AWAITING_READD, "the filer is removed and waits for its re-add: POST .../readd")
    return None


def readd_blocker(state: FilerState, filer_key: str, override: bool = False) -> Blocker | None:
    """Why there is nothing to re-add: only a removal by this app (or a failed re-add of one) is replayed; and
    a filer fenced after a failover only with the operator's explicit override (it then comes back, removed
    or suspended as it was left)."""
    fence = active_fence(state)
    if fence is not None and override and not restorable(state):
        return Blocker(
            Reason.NOTHING_TO_READD,
            f"{describe(fence)}, and the catalog holds no record of {filer_key} "
            "to bring back (nothing removed by this app, no record captured "
            "when it was fenced): restore it on its cluster by hand",
        )
    if fence is not None:
        if override:
            return None
        return Blocker(
            Reason.FENCED,
            f"{describe(fence)}. Re-adding or unsuspending {filer_key} there would serve "
            "it from two clusters. Once the DR cluster no longer serves it, "
            f"POST .../readd?override={OVERRIDE}",
        )
    if state.removed_by_app or state.needs_attention:
        return None
    return Blocker(
        Reason.NOTHING_TO_READD, f"the catalog shows no removal of {filer_key} by this app: nothing to re-add"
    )


def readd_at_dr_blocker(reprotect: FilerState, filer_key: str) -> Blocker | None:
    """Why a filer serving at DR is not re-added there: only a removal by a re-protect run (or a failed re-add of
    one) is replayed at the DR cluster, and never once a failback attached a generation at the primary."""
    attached = failback_attached(reprotect)
    if attached is not None:
        return Blocker(Reason.ATTACHED_ELSEWHERE, attached)
    if reprotect.removed_by_app or reprotect.needs_attention:
        return None
    return Blocker(
        Reason.NOTHING_TO_READD,
        f"{filer_key} serves at the DR cluster and no re-protect run of it left it removed there: nothing to re-add. "
        f"Its primary copy stays fenced until POST .../readd?override={OVERRIDE}",
    )
