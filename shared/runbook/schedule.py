"""What the timer does on a tick (pure): which filers are due and start, which are skipped and why, which need a
reconcile re-add, and which fences are still to apply. The caller reads the catalog states and running runs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.catalog.fence import OVERRIDE, PENDING, active_fence, describe
from shared.catalog.store import FilerState
from shared.core import ncrontab
from shared.core.clock import to_iso
from shared.plan.load import Filer, Plan
from shared.runbook.blockers import failback_attached, reprotecting
from shared.runbook.payloads import backup_instance_id
from shared.runbook.run_ids import BACKUP, FAILBACK, FAILOVER, KINDS, READD, filer_run_ids

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
    """One timer tick's decisions. `fence`: filers whose failover fence is still to be applied on their primary
    cluster (first of all); `held`: filers removed by this app that reconcile leaves removed (fenced)."""

    occurrence: str | None
    start: tuple[Start, ...]
    skip: tuple[Skip, ...]
    not_due: tuple[Filer, ...]
    readd: tuple[Filer, ...]
    fence: tuple[Filer, ...] = ()
    held: tuple[Skip, ...] = ()


def _running(filer: Filer, kind: str, running: Collection[str]) -> bool:
    """A run of this kind of the filer is in progress, under its id or the one earlier versions gave it."""
    return any(i in running for i in filer_run_ids(filer.cluster, filer.name, (kind,)))


def _skip_reason(
    filer: Filer, state: FilerState | None, running: Collection[str], reprotect: FilerState | None = None
) -> str | None:
    reasons: list[tuple[bool, str]] = [
        (_running(filer, FAILOVER, running), "a failover of this filer is running"),
        (_running(filer, BACKUP, running), "a backup of this filer is already running"),
        (_running(filer, READD, running), "a re-add of this filer is running"),
        (_running(filer, FAILBACK, running), "a failback of this filer is running"),
    ]
    if state is not None and reprotecting(state):  # it serves at DR: the backup re-protects it from there
        if reprotect is not None:  # the re-protect runs' own marks (the primary's are the fence's)
            reasons += [
                (bool(reprotect.needs_attention), "it needs attention at the DR cluster (a re-add there failed)"),
                (bool(reprotect.removed_by_app), "it is removed at the DR cluster and waits for its re-add"),
            ]
        return next((reason for hit, reason in reasons if hit), None)
    if state is not None:
        target = (state.failed_over or {}).get("target_cluster")
        fence = active_fence(state)
        reasons += [
            (bool(state.failed_over), f"it failed over to cluster {target}"),
            (bool(state.attached()), "a backup container is attached to a cluster (failover)"),
            (fence is not None, describe(fence) if fence else ""),
            (bool(state.needs_attention), "it needs attention (a re-add failed); resolve it, then run `readd`"),
            (bool(state.removed_by_app), "it is removed and waits for its re-add"),
        ]
    return next((reason for hit, reason in reasons if hit), None)


def tick(
    plan: Plan,
    states: Mapping[str, FilerState | None],
    now: datetime,
    running: Collection[str],
    *,
    one_per_cluster: bool = True,
    reprotect: Mapping[str, FilerState] | None = None,
) -> Tick:
    """Decide a tick. states: catalog state per filer key (None: never backed up); running: instance ids
    in progress; reprotect: the re-protect side's state of each filer that serves at DR. A filer is due when the
    schedule fired since its last_scheduled; with one_per_cluster, only one backup per cluster runs at a time (the
    others stay due for the next tick)."""
    occurrence = latest_occurrence(plan.parsed_schedule(), now)
    occ = to_iso(occurrence) if occurrence else None
    busy = {f.cluster for f in plan.filers if _running(f, BACKUP, running)}
    start: list[Start] = []
    skip: list[Skip] = []
    not_due: list[Filer] = []
    for filer in plan.enabled_filers():
        state = states.get(filer.key)
        last = state.last_scheduled if state else None
        if occ is None or (last is not None and last >= occ):
            not_due.append(filer)
            continue
        reason = _skip_reason(filer, state, running, (reprotect or {}).get(filer.key))
        if reason is None and one_per_cluster and filer.cluster in busy:
            reason = f"another backup runs on cluster {filer.cluster} (one at a time)"
        if reason:
            skip.append(Skip(filer, reason))
            continue
        start.append(Start(filer, backup_instance_id(filer.cluster, filer.name), occ))
        busy.add(filer.cluster)
    return Tick(
        occurrence=occ,
        start=tuple(start),
        skip=tuple(skip),
        not_due=tuple(not_due),
        readd=tuple(reconcile(plan, states, running, reprotect)),
        fence=tuple(pending_fences(plan, states)),
        held=tuple(held(plan, states, running, reprotect)),
    )


def pending_fences(plan: Plan, states: Mapping[str, FilerState | None]) -> list[Filer]:
    """Filers fenced after a failover whose primary cluster has not been reached yet: fence them first."""
    out = []
    for filer in plan.filers:
        state = states.get(filer.key)
        fence = active_fence(state) if state is not None else None
        if fence is not None and fence.get("how", PENDING) == PENDING:
            out.append(filer)
    return out


def reconcile(
    plan: Plan,
    states: Mapping[str, FilerState | None],
    running: Collection[str],
    reprotect: Mapping[str, FilerState] | None = None,
) -> list[Filer]:
    """Filers the catalog shows removed by this app, with no run of them in progress: on their own cluster when
    not fenced by a failover (those are `held`); at the DR cluster, where a filer that failed over serves, when a
    re-protect backup (or a failback that attached nothing at the primary) left it removed there."""
    at_dr = [f for f, rp in _removed_at_dr(plan, states, running, reprotect) if failback_attached(rp) is None]
    return [f for f, state in _removed_idle(plan, states, running) if active_fence(state) is None] + at_dr


def held(
    plan: Plan,
    states: Mapping[str, FilerState | None],
    running: Collection[str],
    reprotect: Mapping[str, FilerState] | None = None,
) -> list[Skip]:
    """Filers removed by this app that reconcile leaves removed, and why: fenced by a failover (only an operator's
    override brings them back), or removed at DR by a failback that attached a generation at the primary."""
    out = []
    for filer, state in _removed_idle(plan, states, running):
        fence = active_fence(state)
        if fence is not None:
            out.append(Skip(filer, f"{describe(fence)}; not re-added (lift: readd?override={OVERRIDE})"))
    for filer, rp in _removed_at_dr(plan, states, running, reprotect):
        why = failback_attached(rp)
        if why is not None:
            out.append(Skip(filer, f"removed at the DR cluster, not re-added: {why}"))
    return out


def _removed_at_dr(
    plan: Plan,
    states: Mapping[str, FilerState | None],
    running: Collection[str],
    reprotect: Mapping[str, FilerState] | None,
) -> list[tuple[Filer, FilerState]]:
    """Filers serving at DR whose re-protect side records a removal by this app, with no run of them in progress."""
    out = []
    for filer in plan.filers:
        state, rp = states.get(filer.key), (reprotect or {}).get(filer.key)
        if state is None or rp is None or not reprotecting(state) or not rp.removed_by_app:
            continue
        if not any(_running(filer, kind, running) for kind in KINDS):
            out.append((filer, rp))
    return out


def _removed_idle(
    plan: Plan, states: Mapping[str, FilerState | None], running: Collection[str]
) -> list[tuple[Filer, FilerState]]:
    out = []
    for filer in plan.filers:
        state = states.get(filer.key)
        if state is None or not state.removed_by_app:
            continue  # failed over: fenced (active_fence counts it), never re-added here
        if not any(_running(filer, kind, running) for kind in KINDS):
            out.append((filer, state))
    return out
