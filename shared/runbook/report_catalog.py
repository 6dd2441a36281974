"""What a filer report reads from the catalog: the filer's state, its newest verified backup's entry, drills, and
for the detail view every backup, failover and drill entry. Blocking I/O: async callers use a thread."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.catalog.store import DRILLS, FAILOVERS, Catalog, FilerState
from shared.plan.load import Filer, Plan
from shared.runbook import record as catalog_ops
from shared.runbook import services
from shared.runbook.blockers import reprotecting
from shared.runbook.report import FilerFacts, RunInfo, newest_verified, report, run_ids

log = logging.getLogger("vfxtdr.report")


@dataclass(frozen=True)
class CatalogView:
    """What the catalog says about one filer; state None and problem set when it could not be read."""

    state: FilerState | None
    backup_entry: dict[str, Any] | None = None
    drills: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    reprotect: FilerState | None = None  # serving at DR: the re-protect side's state


@dataclass(frozen=True)
class History:
    """Every entry the catalog holds about one filer (unordered)."""

    state: FilerState
    backups: list[dict[str, Any]]
    failovers: list[dict[str, Any]]
    drills: list[dict[str, Any]]
    reprotect: FilerState | None = None  # serving at DR: the re-protect side's state


def catalog_for(plan: Plan, filer: Filer) -> Catalog:
    return Catalog(services.backup_account(filer, plan.storage_auth, plan.keyvault_url), plan.catalog_container)


def _problem(filer: Filer, err: Exception) -> str:
    # The operator-facing text names the kind of failure only; the log line has the message (no secrets: the
    # storage SDK's errors name accounts and blobs, never keys).
    log.warning(
        "report: the catalog of %s could not be read: %s: %s",
        filer.key,
        type(err).__name__,
        str(err).split("\n", 1)[0][:300],
    )
    return f"{type(err).__name__} reading the catalog of {filer.key} (see the app's log)"


def read_view(plan: Plan, filer: Filer, state: FilerState | None = None, *, drills: bool = True) -> CatalogView:
    """The filer's catalog view. A given state (the tick has read it) is not read again. Any failure is
    reported as the view's problem: one unreadable catalog must not hide the other filers."""
    reprotect = None
    try:
        with catalog_for(plan, filer) as catalog:
            if state is None:
                state = catalog.load(filer)
            if reprotecting(state):  # serving at DR: its backups are the re-protect side's
                reprotect = catalog_ops.load_reprotect_states(plan, {filer.key: state}).get(filer.key)
            found = newest_verified(reprotect if reprotect is not None else state)
            entry = catalog.backup(filer, found[1].backup_id) if found and found[1].backup_id else None
            drill_entries = catalog.list_entries(filer, DRILLS) if drills else []
    except Exception as err:  # any failure to read is shown as such, never as a good state
        return CatalogView(state=state, problem=_problem(filer, err))
    return CatalogView(
        state=state,
        backup_entry=entry if isinstance(entry, dict) else None,
        drills=drill_entries,
        reprotect=reprotect,
    )


def read_history(plan: Plan, filer: Filer) -> History:
    """Everything the detail view lists (raises when the catalog cannot be read)."""
    with catalog_for(plan, filer) as catalog:
        state = catalog.load(filer)
        reprotect = (
            catalog_ops.load_reprotect_states(plan, {filer.key: state}).get(filer.key) if reprotecting(state) else None
        )
        backups = catalog.list_backups(filer)
        failovers = catalog.list_entries(filer, FAILOVERS)
        drill_entries = catalog.list_entries(filer, DRILLS)
    mark = state.failed_over
    if mark and not any(f.get("instance_id") == mark.get("instance_id") for f in failovers):
        failovers.append({**mark, "status": "serving"})  # recorded before failovers had entries of their own
    return History(state=state, backups=backups, failovers=failovers, drills=drill_entries, reprotect=reprotect)


def reports_for_tick(
    plan: Plan, states: Mapping[str, FilerState], running: Collection[str], now: datetime
) -> list[dict[str, Any]]:
    """Every filer's report as the tick sees it: the states it read, the instance ids it knows are live."""
    out = []
    for filer in plan.filers:
        view = read_view(plan, filer, states.get(filer.key), drills=False)
        runs = [RunInfo(i, kind, "live") for i, kind in run_ids(filer, view.state).items() if i in running]
        facts = FilerFacts(filer, view.state, view.backup_entry, (), runs, view.problem, view.reprotect)
        out.append(report(plan, facts, now))
    return out
