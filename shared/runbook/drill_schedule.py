"""Which drills the timer starts on a tick: each filer's own `drill_schedule` (NCRONTAB, off by default), one
scheduled drill per cluster at a time, never during a drill or failover of the filer, never without a verified
backup or a DR cluster. `tick` is pure (the caller reads the catalog and the running instances); each filer's
last scheduled occurrence is read and recorded by `schedule_marks` and `record_scheduled`."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.catalog.store import FilerState, filer_prefix
from shared.core import ncrontab
from shared.core.clock import to_iso
from shared.plan.load import Filer, Plan
from shared.runbook import services
from shared.runbook.drill import SCHEMA, drill_blocker
from shared.runbook.drill_payloads import drill_instance_id
from shared.runbook.payloads import RunContext, failover_instance_id
from shared.runbook.schedule import latest_occurrence


@dataclass(frozen=True)
class DrillStart:
    filer: Filer
    instance_id: str
    occurrence: str  # record it once the drill started: not due again until the next occurrence


@dataclass(frozen=True)
class DrillSkip:
    filer: Filer
    reason: str


@dataclass(frozen=True)
class DrillTick:
    start: tuple[DrillStart, ...]
    skip: tuple[DrillSkip, ...]


def scheduled(plan: Plan) -> tuple[Filer, ...]:
    """The enabled filers whose plan entry has a drill schedule."""
    return tuple(f for f in plan.enabled_filers() if f.drill_schedule)


def _reason(filer: Filer, state: FilerState | None, running: Collection[str]) -> str | None:
    if failover_instance_id(filer.cluster, filer.name) in running:
        return "a failover of this filer is running"
    if drill_instance_id(filer.cluster, filer.name) in running:
        return "a drill of this filer is already running"
    if not filer.failover_cluster:
        return "the plan names no failover_cluster to drill on"
    blocked = drill_blocker(state or FilerState(), None)
    return blocked.message if blocked else None


def tick(
    plan: Plan,
    states: Mapping[str, FilerState | None],
    marks: Mapping[str, str | None],
    now: datetime,
    running: Collection[str],
) -> DrillTick:
    """marks: each filer's last scheduled drill occurrence (None: never). A filer is due when its schedule fired
    since; a skipped one stays due for the next tick."""
    busy = {f.cluster for f in plan.filers if drill_instance_id(f.cluster, f.name) in running}
    start: list[DrillStart] = []
    skip: list[DrillSkip] = []
    for filer in scheduled(plan):
        occurrence = latest_occurrence(ncrontab.parse(filer.drill_schedule or ""), now)
        if occurrence is None:
            continue
        occ = to_iso(occurrence)
        last = marks.get(filer.key)
        if last is not None and last >= occ:
            continue
        reason = _reason(filer, states.get(filer.key), running)
        if reason is None and filer.cluster in busy:
            reason = f"another drill runs on cluster {filer.cluster} (one scheduled drill at a time)"
        if reason:
            skip.append(DrillSkip(filer, reason))
            continue
        start.append(DrillStart(filer, drill_instance_id(filer.cluster, filer.name), occ))
        busy.add(filer.cluster)
    return DrillTick(start=tuple(start), skip=tuple(skip))


# --- the marks: each filer's last scheduled drill, beside its state -------------------------------------------------
def schedule_path(cluster: str, filer: str) -> str:
    """Beside the filer's state, not among its drill records (every JSON document there is one)."""
    return f"{filer_prefix(cluster, filer)}drill-schedule.json"


def schedule_marks(plan: Plan, filers: tuple[Filer, ...]) -> dict[str, str | None]:
    """Each filer's last scheduled drill occurrence (None: never), by filer key."""
    out: dict[str, str | None] = {}
    for filer in filers:
        with services.open_catalog(RunContext.from_plan(plan, filer.cluster, filer.name)) as catalog:
            data = catalog.read_json(schedule_path(filer.cluster, filer.name))[0]
        value = data.get("last_scheduled") if isinstance(data, dict) else None
        out[filer.key] = value if isinstance(value, str) else None
    return out


def record_scheduled(plan: Plan, filer: Filer, occurrence: str) -> None:
    """The timer started a drill for this occurrence: not due again until the next one."""
    with services.open_catalog(RunContext.from_plan(plan, filer.cluster, filer.name)) as catalog:
        path = schedule_path(filer.cluster, filer.name)
        data = catalog.read_json(path)[0]
        last = data.get("last_scheduled") if isinstance(data, dict) else None
        if not isinstance(last, str) or last < occurrence:
            catalog.write_json(path, {"last_scheduled": occurrence, "schema": SCHEMA})
