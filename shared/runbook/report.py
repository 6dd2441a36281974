"""The state of a protected filer as operators see it (pure): state, where it serves, RPO age and badge, drill, runs.

The timer's signals, the read API and the status page all show this one computation. Its inputs are facts read
elsewhere (`shared/runbook/report_catalog.py` reads the catalog; the doors ask Durable which runs are live);
nothing here does I/O or reads a clock. Every value copied from the catalog or a custom status is picked by
name and type, so a report holds plan names, catalog ids, states, times and numbers — never a record or a key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.catalog.store import VERIFIED, FilerState, Generation
from shared.core.codec import RecordError
from shared.plan.load import Filer, Plan
from shared.runbook.home import home_of
from shared.runbook.payloads import (
    backup_instance_id,
    failback_instance_id,
    failover_instance_id,
    readd_instance_id,
)
from shared.runbook.run_ids import BACKUP, FAILOVER, READD, legacy_run_id

# The state field is an open enum: clients show a value they do not know as one that needs a look.
PROTECTED = "protected"  # enabled, served by its own cluster, a verified backup exists, nothing running
UNPROTECTED = "unprotected"  # as protected, but no verified backup of it exists yet
RUNNING = "running"  # a backup, re-add, failover or drill of it is in progress
NEEDS_ATTENTION = "needs_attention"  # a re-add failed: it is removed from its cluster until a person acts
AWAITING_READD = "awaiting_readd"  # removed by this app with no run in progress: the next tick re-adds it
FAILED_OVER = "failed_over"  # a backup of it is attached to a DR cluster; no re-protect backup verified yet
REPROTECTED = "reprotected"  # failed over, and a re-protect backup of it is verified in the primary region
FAILING_BACK = "failing_back"  # a failback of it to its own cluster is in progress
DISABLED = "disabled"  # the plan lists it with enabled: false: the schedule does not back it up
UNKNOWN = "unknown"  # its catalog could not be read
STATES = (
    PROTECTED,
    UNPROTECTED,
    RUNNING,
    NEEDS_ATTENTION,
    AWAITING_READD,
    FAILED_OVER,
    REPROTECTED,
    FAILING_BACK,
    DISABLED,
    UNKNOWN,
)

GREEN, AMBER, RED = "green", "amber", "red"
AMBER_FACTOR = 1.5  # amber up to this multiple of the RPO target
VERIFIED_STATUSES = ("verified", "verified_with_extras")
API = "/api"  # host.json's routePrefix

# Numeric custom-status fields a progress display may show (RunStatus in orchestrators/durable_helpers.py).
PROGRESS_FIELDS = (
    "blobs_listed",
    "blobs_to_copy",
    "blobs_copied",
    "bytes_to_copy",
    "bytes_copied",
    "pending",
    "pages",
    "eta_s",
    "blobs_checked",
    "pages_checked",
    "flush_percent",
    "remove_percent",
    "dirty_files",
    "attach_failures",
)
_TEXT_LIMIT = 200


def run_link(instance_id: str) -> str:
    """Where a run's status is read (`GET /api/runs/{id}`: a secret-free view of the Durable status)."""
    return f"{API}/runs/{quote(instance_id, safe='')}"


def filer_link(filer: Filer) -> str:
    return f"{API}/filers/{quote(filer.cluster, safe='')}/{quote(filer.name, safe='')}"


def readd_action(filer: Filer) -> str:
    return f"fix the cluster, then POST {filer_link(filer)}/readd"


@dataclass(frozen=True)
class RunInfo:
    """A run of the filer the Durable client reports live (its custom status as the orchestrator set it)."""

    instance_id: str
    kind: str
    runtime_status: str
    custom_status: Any = None


@dataclass(frozen=True)
class FilerFacts:
    """What the report is computed from. state None: the catalog could not be read (problem says how)."""

    filer: Filer
    state: FilerState | None
    backup_entry: Mapping[str, Any] | None = None  # the catalog entry of the newest verified backup
    drills: Sequence[Mapping[str, Any]] = ()
    running: Sequence[RunInfo] = ()
    problem: str | None = None
    # serving at DR: the re-protect side's state (its runs' generations and marks); None otherwise or unread
    reprotect: FilerState | None = None


# --- small readers of untrusted JSON ------------------------------------------------------------------------
def text(value: Any, limit: int = _TEXT_LIMIT) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def number(value: Any) -> float | int | None:
    """A finite, non-negative JSON number (bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def mapping_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_time(value: Any) -> datetime | None:
    """A catalog time (`2030-01-01T02:00:00Z`, any ISO form with a zone); anything else is None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


# --- what the catalog says -------------------------------------------------------------------------------
def newest_verified(state: FilerState) -> tuple[str, Generation] | None:
    """The generation holding the newest verified backup (an attached one serves a cluster: it is no backup)."""
    latest = state.latest_verified
    if latest and latest in state.generations and state.generations[latest].status == VERIFIED:
        return latest, state.generations[latest]
    verified = [(g, gen) for g, gen in state.generations.items() if gen.status == VERIFIED and gen.backup_id]
    return max(verified, key=lambda item: item[1].verified_at or "", default=None)


def run_ids(filer: Filer, state: FilerState | None) -> dict[str, str]:
    """Instance ids a live run of the filer may have, with its kind: the singleton ids, and ids the catalog
    recorded for runs it shows in progress (a drill's, a backup's under another id scheme)."""
    ids = {
        backup_instance_id(filer.cluster, filer.name): "backup",
        readd_instance_id(filer.cluster, filer.name): "readd",
        failover_instance_id(filer.cluster, filer.name): "failover",
        failback_instance_id(filer.cluster, filer.name): "failback",
    }
    for kind in (
        BACKUP,
        READD,
        FAILOVER,
    ):  # a run started before the run ids changed may still be live under the earlier form
        ids.setdefault(legacy_run_id(kind, filer.cluster, filer.name), kind)
    if state is not None:
        last = state.last_run or {}
        if last.get("status") == "running" and text(last.get("instance_id")):
            ids.setdefault(last["instance_id"], "backup")
    return ids


def drill_ids(drills: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {d["instance_id"]: "drill" for d in drills if d.get("status") == "running" and text(d.get("instance_id"))}


def _backup_point(facts: FilerFacts) -> dict[str, Any] | None:
    """The newest verified backup, when the catalog proves it: the generation is verified and its entry names
    the same backup, verified, with a start time. The age counts from that start (a conservative bound: the
    backup holds everything written before it)."""
    if facts.state is None:
        return None
    found = newest_verified(facts.reprotect if facts.reprotect is not None else facts.state)
    entry = facts.backup_entry
    if found is None or entry is None:
        return None
    g, gen = found
    started = parse_time(entry.get("started_at"))
    if entry.get("backup_id") != gen.backup_id or entry.get("status") not in VERIFIED_STATUSES or started is None:
        return None
    verified = mapping_of(entry.get("verified"))
    instance = text(entry.get("instance_id"))
    return {
        "backup_id": gen.backup_id,
        "generation": g,
        "container": gen.container,
        "status": entry.get("status"),
        "started_at": entry.get("started_at"),
        "verified_at": gen.verified_at,
        "blobs": number(verified.get("blobs")),
        "bytes": number(verified.get("bytes_copied")),
        "instance_id": instance,
        "link": run_link(instance) if instance else None,
        "_started": started,
    }


def last_drill(drills: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest drill entry (by start), as shown: id, status, times, its RTO."""
    dated = [(t, d) for d in drills if (t := parse_time(d.get("started_at"))) is not None]
    if not dated:
        return None
    return drill_view(max(dated, key=lambda item: item[0])[1])


def drill_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    instance = text(entry.get("instance_id"))
    return {
        "drill_id": text(entry.get("drill_id")),
        "status": text(entry.get("status"), 40),
        "started_at": text(entry.get("started_at"), 40),
        "finished_at": text(entry.get("finished_at"), 40),
        "rto_s": number(entry.get("rto_s")),
        "target_cluster": text(entry.get("target_cluster")),
        "instance_id": instance,
        "link": run_link(instance) if instance else None,
    }


# --- what a live run says ------------------------------------------------------------------------------------
def run_view(run: RunInfo) -> dict[str, Any]:
    """A live run: its kind, step and progress picked from its custom status by name and type."""
    custom = run.custom_status if isinstance(run.custom_status, Mapping) else {}
    progress = {k: v for k in PROGRESS_FIELDS if (v := number(custom.get(k))) is not None}
    return {
        "instance_id": run.instance_id,
        "kind": text(custom.get("run"), 40) or run.kind,
        "runtime_status": run.runtime_status,
        "step": text(custom.get("step"), 80),
        "phase": text(custom.get("phase"), 80),
        "started": text(custom.get("started"), 40),
        "elapsed_s": number(custom.get("elapsed_s")),
        "progress": progress,
        "link": run_link(run.instance_id),
    }


# --- the report ------------------------------------------------------------------------------------------
def _state(facts: FilerFacts, proven: bool) -> tuple[str, str]:
    """The first state that holds, most pressing first."""
    filer, state = facts.filer, facts.state
    if state is None:
        return UNKNOWN, f"its catalog could not be read: {facts.problem or 'unknown error'}"
    kinds = {run_view(r)["kind"] for r in facts.running}
    target = (state.failed_over or {}).get("target_cluster") or _attached_target(state)
    rp = facts.reprotect or FilerState.new(())
    rp_point = newest_verified(rp)
    rules: list[tuple[bool, str, str]] = [
        (
            bool(state.needs_attention),
            NEEDS_ATTENTION,
            f"a re-add failed and the filer is removed from {filer.cluster}: {readd_action(filer)}",
        ),
        (
            bool(rp.needs_attention),
            NEEDS_ATTENTION,
            f"a re-protect run's re-add failed and the filer is removed from {target}: {readd_action(filer)}",
        ),
        ("failback" in kinds, FAILING_BACK, f"a failback to cluster {filer.cluster} is in progress"),
        (bool(facts.running), RUNNING, f"in progress: {', '.join(sorted(kinds))}"),
        (
            bool(rp.removed_by_app),
            AWAITING_READD,
            f"a re-protect run removed it from {target} and none is in progress: the next tick re-adds it there",
        ),
        (
            bool(state.failed_over) and rp_point is not None,
            REPROTECTED,
            f"serves at cluster {target}; re-protect backup {rp_point[1].backup_id if rp_point else ''} is verified "
            "in the primary region's account (a failback can bring it home)",
        ),
        (
            bool(state.failed_over or state.attached()),
            FAILED_OVER,
            f"a backup of it is attached to cluster {target}; no re-protect backup is verified yet (backups "
            "re-protect it once the primary region answers)",
        ),
        (
            bool(state.removed_by_app),
            AWAITING_READD,
            "removed by this app with no run in progress: the next tick re-adds it",
        ),
        (not filer.enabled, DISABLED, "enabled is false in the plan: the schedule does not back it up"),
        (not proven, UNPROTECTED, "the catalog proves no verified backup of it"),
    ]
    return next(
        ((name, detail) for hit, name, detail in rules if hit),
        (PROTECTED, "served by its cluster; backed up on the plan's schedule"),
    )


def _attached_target(state: FilerState) -> str | None:
    for g in state.attached():
        target = (state.generations[g].attached_to or {}).get("target_cluster")
        if target:
            return str(target)
    return None


def _serving(facts: FilerFacts, state_name: str) -> str | None:
    """The cluster that serves the filer now, None when none does (removed) or it is not known."""
    state = facts.state
    if state is None:
        return None
    if state.failed_over:
        rp = facts.reprotect
        if rp is not None and (rp.removed_by_app or rp.needs_attention):
            return None  # a re-protect run removed it from the DR cluster
        return text(state.failed_over.get("target_cluster"))
    if state.attached() or state.needs_attention or state.removed_by_app or state_name == UNKNOWN:
        return None  # attached but not recorded serving (a failover in flight or stopped), or removed
    return facts.filer.cluster


def home_view(facts: FilerFacts) -> dict[str, Any] | None:
    """Where the filer lives as the catalog records it (shared/runbook/home.py): the side (primary, or dr after a
    failover), the cluster serving it from there, the container behind it; None when the catalog is unreadable."""
    if facts.state is None:
        return None
    try:
        home = home_of(facts.state, facts.filer)
    except (RecordError, ValueError, TypeError):  # a home this version cannot read: not known
        return None
    return {
        "side": text(home.side, 40),
        "cluster": text(home.cluster),
        "container": text(home.container),
        "generation": text(home.generation, 8),
        "since": text(home.since, 40),
        "retired": [c for c in (text(r) for r in home.retired[:26]) if c],
    }


def rpo(
    facts: FilerFacts, state_name: str, point: dict[str, Any] | None, target_hours: float, now: datetime
) -> dict[str, Any]:
    """The RPO block: age of the newest verified backup against the target, the badge, whether it is a breach.

    red: needs attention, awaiting its re-add, catalog unreadable, no verified backup, or older than 1.5x the
    target with no backup running. amber: older than the target but within 1.5x, or older still while a backup
    of it runs. green: within the target. A breach (the VFXTDR_RPO_BREACH signal): older than the target, or
    no verified backup once a run of it was tried and none is running."""
    target_s = target_hours * 3600
    age = max(0.0, (now - point["_started"]).total_seconds()) if point else None
    backup_running = any(run_view(r)["kind"] == "backup" for r in facts.running)
    state = facts.state
    if state_name in (NEEDS_ATTENTION, AWAITING_READD, UNKNOWN):
        badge, reason = (
            RED,
            {
                NEEDS_ATTENTION: "needs attention",
                AWAITING_READD: "removed, awaiting its re-add",
                UNKNOWN: "its catalog could not be read",
            }[state_name],
        )
    elif age is None:
        badge, reason = (
            RED,
            f"no verified backup could be read ({facts.problem})" if facts.problem else "no verified backup",
        )
    elif age <= target_s:
        badge, reason = GREEN, "within the RPO target"
    elif age <= AMBER_FACTOR * target_s:
        badge, reason = AMBER, f"older than the RPO target (within {AMBER_FACTOR:g}x)"
    elif backup_running:
        badge, reason = AMBER, f"older than {AMBER_FACTOR:g}x the RPO target; a backup is running"
    else:
        badge, reason = RED, f"older than {AMBER_FACTOR:g}x the RPO target"
    # With no verified backup it is a breach once the app has tried (a scheduled or any run of it) and no
    # backup of it is under way: a new filer is not in breach before its first run has had its chance.
    tried = state is None or bool(state.last_scheduled or state.last_run)
    breach = age > target_s if age is not None else tried and not backup_running
    return {
        "target_hours": target_hours,
        "age_s": None if age is None else round(age),
        "age_hours": None if age is None else round(age / 3600, 2),
        "badge": badge,
        "reason": reason,
        "breach": breach,
    }


def report(plan: Plan, facts: FilerFacts, now: datetime) -> dict[str, Any]:
    """The JSON an operator reads about one filer (the read API's, the status page's, the tick signals')."""
    filer, state = facts.filer, facts.state
    point = _backup_point(facts)
    state_name, detail = _state(facts, point is not None)
    attention = None
    mark = (state.needs_attention or (facts.reprotect.needs_attention if facts.reprotect else None)) if state else None
    if mark:
        attention = {
            "since": text(mark.get("since"), 40),
            "error": text(mark.get("error"), 500),
            "action": readd_action(filer),
        }
    last = state.last_run if state is not None and isinstance(state.last_run, dict) else None
    last_run = None
    if last:
        instance = text(last.get("instance_id"))
        last_run = {
            "backup_id": text(last.get("backup_id")),
            "status": text(last.get("status"), 40),
            "started_at": text(last.get("started_at"), 40),
            "finished_at": text(last.get("finished_at"), 40),
            "instance_id": instance,
            "link": run_link(instance) if instance else None,
        }
    backup = None
    if point is not None:
        backup = {k: v for k, v in point.items() if not k.startswith("_")}
        backup["age_s"] = round(max(0.0, (now - point["_started"]).total_seconds()))
    return {
        "cluster": filer.cluster,
        "filer": filer.name,
        "key": filer.key,
        "enabled": filer.enabled,
        "state": state_name,
        "state_detail": detail,
        "serving_cluster": _serving(facts, state_name),
        "home": home_view(facts),
        "failover_cluster": filer.failover_cluster,
        "rpo": rpo(facts, state_name, point, plan.rpo_hours, now),
        "last_backup": backup,
        "last_drill": last_drill(facts.drills),
        "last_run": last_run,
        "running": [run_view(r) for r in facts.running],
        "attention": attention,
        "links": {"self": filer_link(filer), "readd": f"{filer_link(filer)}/readd"},
    }
