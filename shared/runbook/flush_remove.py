"""Flush and remove: a backup run's cluster-side steps on the protected filer (suspend + flush, remove) and
their status. Each names its run; the cluster and filer come from the run's snapshot, and nothing is removed
before the catalog records the removal by that very run."""

from __future__ import annotations

import logging

from shared.avere.client import AvereClient
from shared.avere.errors import AvereUnexpectedAnswer
from shared.avere.records import ActivityStatus, DirtyInfo
from shared.runbook import fence as fencing
from shared.runbook import services
from shared.runbook.payloads import FlushStatus, RemoveStatus, RunContext, RunStep, StartedActivities
from shared.runbook.record import removal_recorded
from shared.runbook.refs import BACKUP_KINDS, RunRef
from shared.runbook.runs import load_run

log = logging.getLogger("vfxtdr.filer")


def _client(context: RunContext) -> AvereClient:
    return services.avere_client(context.cluster, context.keyvault_url)


def _context(run: RunRef) -> RunContext:
    return load_run(run, *BACKUP_KINDS).context()


def _removal_context(run: RunRef) -> RunContext:
    """The run's context, once the catalog records the removal by this run."""
    ctx = _context(run)
    with services.open_catalog(ctx) as catalog:
        removal_recorded(catalog, ctx.filer, run)
    return ctx


def _started(ids: list[str] | tuple[str, ...]) -> StartedActivities:
    return StartedActivities(activity_ids=tuple(str(i) for i in ids))


def suspend_and_flush(run: RunRef) -> StartedActivities:
    """Suspend client access, then start the flush (or join the running one); idempotent."""
    ctx = _context(run)
    with _client(ctx) as client:
        suspended = client.suspend_clients(ctx.filer.name)
        flush = client.flush_core_filer(ctx.filer.name)
    log.info("%s: clients suspended, flush %s", ctx.filer.key, flush)
    return _started([a for a in (suspended, flush) if a != "success"] or ["success"])


def unsuspend(run: RunRef) -> StartedActivities:
    """Give client access back, unless a failover fenced the filer: then it stays suspended (`fenced` says so).
    The fence is read before and again after the unsuspend, so one asked for in between still holds."""
    ctx = _context(run)
    with _client(ctx) as client:
        fence = fencing.held(ctx)
        if fence is None:
            result = client.unsuspend_clients(ctx.filer.name)
            fence = fencing.held(ctx)
            if fence is None:
                log.info("%s: clients unsuspended", ctx.filer.key)
                return _started([result])
        why = "a failover fenced it; the backup's compensation keeps client access suspended"
        return StartedActivities(activity_ids=(), fenced=fencing.keep(ctx, client, fence, why))


# adminState values after which a junction removal or a filer removal is over ('removing' and 'flushing' are not).
SETTLED_STATES = frozenset({"online", "offline", "removed"})


def _statuses(client: AvereClient, ids: tuple[str, ...]) -> list[ActivityStatus]:
    return [client.activity_status(i) for i in ids]


def _failure_detail(statuses: list[ActivityStatus]) -> str:
    return "; ".join(f"activity {s.id} ({s.process}) failed: {s.status}" for s in statuses if s.state == "failure")


def flush_status(step: RunStep) -> FlushStatus:
    """done: every flush activity succeeded and no dirty files remain; failed: an activity failed."""
    ctx = _context(step.run)
    with _client(ctx) as client:
        statuses = _statuses(client, step.activity_ids)
        try:
            dirty: DirtyInfo | None = client.dirty_files(ctx.filer.name)
        except AvereUnexpectedAnswer as err:  # not readable is not clean: keep waiting (the deadline still holds)
            dirty, unreadable = None, str(err)
    failed = any(s.state == "failure" for s in statuses)
    succeeded = all(s.succeeded for s in statuses)
    percent = min((s.percent if not s.succeeded else 100 for s in statuses), default=100)
    if failed:
        detail = _failure_detail(statuses)
    elif dirty is None:
        detail = unreadable
    else:
        detail = f"{dirty.num_files} dirty file(s), oldest {dirty.oldest_age:.0f}s" if dirty.num_files else "clean"
    clean = dirty is not None and dirty.num_files == 0
    return FlushStatus(
        done=succeeded and clean,
        failed=failed,
        percent=percent,
        dirty_files=dirty.num_files if dirty is not None else -1,
        oldest_age=dirty.oldest_age if dirty is not None else 0.0,
        detail=detail,
    )


def remove_junctions(run: RunRef) -> StartedActivities:
    ctx = _removal_context(run)
    with _client(ctx) as client:
        ids = client.remove_junctions(ctx.filer.name)
    log.info("%s: removing %d junction(s)", ctx.filer.key, len(ids))
    return _started(ids)


def remove_filer(run: RunRef) -> StartedActivities:
    """Maintenance API + corefiler.remove in one multicall; 'success' when the filer is already gone."""
    ctx = _removal_context(run)
    with _client(ctx) as client:
        activity = client.remove_core_filer(ctx.filer.name)
    log.info("%s: remove %s", ctx.filer.key, activity)
    return _started([activity])


def junction_count(client: AvereClient, filer: str) -> int:
    """Junctions pointing at the filer, on every vserver (a listing that cannot say whose a junction is raises
    AvereUnexpectedAnswer: it is never counted as "not this filer's")."""
    return len(client.junctions(filer))


def remove_status(step: RunStep) -> RemoveStatus:
    """Whether the started removals are over: activities succeeded and no junction of the filer remains;
    after the filer's own remove, also that it is gone."""
    ctx = _context(step.run)
    name = ctx.filer.name
    unreadable = ""
    with _client(ctx) as client:
        statuses = _statuses(client, step.activity_ids)
        try:
            state = client.filer_state(name)
            junctions = junction_count(client, name) if state != "removed" else 0
        except AvereUnexpectedAnswer as err:  # not readable is not removed: keep waiting (the deadline holds)
            state, junctions, unreadable = "unknown", -1, str(err)
    failed = any(s.state == "failure" for s in statuses)
    # A remove that succeeded leaves the filer "removed"; while it runs the state is "removing". Only a state
    # the runbook knows as settled counts: a missing or unexpected adminState means "not done" (fail closed).
    done = all(s.succeeded for s in statuses) and junctions == 0 and state in SETTLED_STATES
    percent = min((s.percent if not s.succeeded else 100 for s in statuses), default=100)
    detail = _failure_detail(statuses) if failed else unreadable or f"{name} is {state}; {junctions} junction(s) left"
    return RemoveStatus(
        done=done, failed=failed, admin_state=state, junctions=junctions, percent=percent, detail=detail
    )
