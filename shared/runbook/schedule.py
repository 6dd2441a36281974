"""What the timer does on a tick (pure): which filers are due and start, which are skipped and why, and
which need a reconcile re-add. The caller reads the catalog states and the running instances."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.catalog.store import FilerState
from shared.core import ncrontab
from shared.core.clock import to_iso
from shared.plan.load import Filer, Plan
from shared.runbook.payloads import backup_instance_id, failover_instance_id, readd_instance_id

# Looking back for the last occurrence starts small (per-second schedules) and doubles up to this.
_MAX_LOOKBACK = timedelta(days=366 * 60)


def latest_occurrence(schedule: ncrontab.Schedule, now: datetime) -> datetime | None:
    """The last time at or before now that the schedule fired (None if it never did within the lookback)."""
    now = now.astimezone(UTC).replace(microsecond=0)
    if schedule.matches(now):
        return now
    window = timedelta(minutes=1)
    while True:
        low = now - window
        if schedule.next_after(low) <= now:
            break
        if window >= _MAX_LOOKBACK:
            return None
        window *= 2
    # next_after is monotonic: find the latest start whose next firing is still <= now.
    lo, hi = 0, int(window.total_seconds())  # seconds after `low`
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if schedule.next_after(low + timedelta(seconds=mid)) <= now:
            lo = mid
        else:
            hi = mid - 1
    return schedule.next_after(low + timedelta(seconds=lo))


@dataclass(frozen=True)
class Start:
    filer: Filer
    instance_id: str
    occurrence: str  # record as last_scheduled once the instance started


@dataclass(frozen=True)
class Skip:
    filer: Filer
    reason: str


@dataclass(frozen=True)
class Tick:
    """One timer tick's decisions."""

    occurrence: str | None
    start: tuple[Start, ...]
    skip: tuple[Skip, ...]
    not_due: tuple[Filer, ...]
    readd: tuple[Filer, ...]


def _skip_reason(filer: Filer, state: FilerState | None, running: Collection[str]) -> str | None:
    c, f = filer.cluster, filer.name
    reasons: list[tuple[bool, str]] = [
        (failover_instance_id(c, f) in running, "a failover of this filer is running"),
        (backup_instance_id(c, f) in running, "a backup of this filer is already running"),
        (readd_instance_id(c, f) in running, "a re-add of this filer is running"),
    ]
    if state is not None:
        target = (state.failed_over or {}).get("target_cluster")
        reasons += [
            (bool(state.failed_over), f"it failed over to cluster {target}"),
            (bool(state.attached()), "a backup container is attached to a cluster (failover)"),
            (bool(state.needs_attention), "it needs attention (a re-add failed); resolve it, then run `readd`"),
            (bool(state.removed_by_app), "it is removed and waits for its re-add"),
        ]
    return next((reason for hit, reason in reasons if hit), None)


def tick(plan: Plan, states: Mapping[str, FilerState | None], now: datetime, running: Collection[str], *,
         one_per_cluster: bool = True) -> Tick:
    """Decide a tick. states: catalog state per filer key (None: never backed up); running: instance ids
    in progress. A filer is due when the schedule fired since its last_scheduled; with one_per_cluster, only
    one backup per cluster runs at a time (the others stay due for the next tick)."""
    occurrence = latest_occurrence(plan.parsed_schedule(), now)
    occ = to_iso(occurrence) if occurrence else None
    busy = {f.cluster for f in plan.filers if backup_instance_id(f.cluster, f.name) in running}
    start: list[Start] = []
    skip: list[Skip] = []
    not_due: list[Filer] = []
    for filer in plan.enabled_filers():
        state = states.get(filer.key)
        last = state.last_scheduled if state else None
        if occ is None or (last is not None and last >= occ):
            not_due.append(filer)
            continue
        reason = _skip_reason(filer, state, running)
        if reason is None and one_per_cluster and filer.cluster in busy:
            reason = f"another backup runs on cluster {filer.cluster} (one at a time)"
        if reason:
            skip.append(Skip(filer, reason))
            continue
        start.append(Start(filer, backup_instance_id(filer.cluster, filer.name), occ))
        busy.add(filer.cluster)
    return Tick(occurrence=occ, start=tuple(start), skip=tuple(skip), not_due=tuple(not_due),
                readd=tuple(reconcile(plan, states, running)))


def reconcile(plan: Plan, states: Mapping[str, FilerState | None], running: Collection[str]) -> list[Filer]:
    """Filers the catalog shows removed by this app, with no backup, re-add or failover of them running."""
    out = []
    for filer in plan.filers:
        state = states.get(filer.key)
        if state is None or not state.removed_by_app or state.failed_over:
            continue  # failed over: it serves from the DR cluster; re-adding it would serve it twice
        ids = (backup_instance_id(filer.cluster, filer.name), readd_instance_id(filer.cluster, filer.name),
               failover_instance_id(filer.cluster, filer.name))
        if not any(i in running for i in ids):
            out.append(filer)
    return out
