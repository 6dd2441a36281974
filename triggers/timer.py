"""The timer tick: fence what a failover left unfenced, re-add what a stopped run left removed, then start the
backups the plan's schedule says are due, then the drills: a clean-up after a drill that stopped without one,
and those each filer's `drill_schedule` says are due (triggers/drills.py).

The tick runs every five minutes; the plan's own NCRONTAB decides when a filer is due (the plan is the one
place a schedule lives). Each backup is a singleton `backup~{cluster}~{filer}`; one backup per cluster at a
time by default; a filer that needs attention, has failed over, or already runs is skipped with a log line.
A filer fenced after a failover whose primary cluster could not be reached then is fenced first, before the
tick starts anything; reconcile never re-adds a fenced filer. A start the engine refuses (the run id is live:
another start won) is skipped with a log line, as a running filer is.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from shared.core.clock import from_epoch
from shared.core.codec import plain
from shared.runbook import fence as fencing
from shared.runbook import record as catalog_ops
from shared.runbook import report_catalog, services, signals
from shared.runbook import schedule as scheduling
from shared.runbook.payloads import BACKUP, READD, BackupRequest, FilerRef, readd_instance_id
from shared.runbook.run_ids import filer_run_ids
from triggers.common import Refusal, load_plan, running_ids, start_run
from triggers.drills import tick_drills

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.timer")

TICK = "0 */5 * * * *"


@bp.timer_trigger(schedule=TICK, arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def tick(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    # Plan file, catalog blobs, clusters: blocking I/O goes to a thread, the worker's event loop serves others.
    try:
        plan = await asyncio.to_thread(load_plan)
    except Refusal as err:
        log.error("tick skipped: %s", err)
        return
    ids = [i for f in plan.filers for i in filer_run_ids(f.cluster, f.name)]
    # The catalog first, the runs second: a removal mark read here was written by a run that had started, so
    # it is still seen running below, or it has ended (and `readd_plan` re-reads the catalog before acting).
    states = await asyncio.to_thread(catalog_ops.load_states, plan)
    reprotect = await asyncio.to_thread(catalog_ops.load_reprotect_states, plan, states)
    running = await running_ids(client, ids)
    now = from_epoch(services.now())
    decision = scheduling.tick(plan, states, now, running, reprotect=reprotect)
    for filer in decision.fence:  # before anything else runs there
        outcome = await asyncio.to_thread(fencing.apply_fence, plan, filer)
        log.warning("fence: %s after its failover: %s (%s)", filer.key, outcome.how or "not fenced", outcome.detail)
    for held in decision.held:
        log.info("reconcile: %s left removed: %s", held.filer.key, held.reason)
    started: set[str] = set()
    for filer in decision.readd:
        instance_id = readd_instance_id(filer.cluster, filer.name)
        try:
            await start_run(client, READD, instance_id, plain(FilerRef(filer.cluster, filer.name)))
        except Refusal as err:
            log.info("reconcile: %s skipped: %s", filer.key, err)
            continue
        started.add(instance_id)
        where = " at the DR cluster" if filer.key in reprotect else ""
        log.warning(
            "reconcile: %s is removed by this app%s with no run in progress; re-adding as %s",
            filer.key,
            where,
            instance_id,
        )
    for skip in decision.skip:
        log.info("schedule: %s skipped: %s", skip.filer.key, skip.reason)
    for start in decision.start:
        try:
            await start_run(
                client,
                BACKUP,
                start.instance_id,
                plain(BackupRequest(cluster=start.filer.cluster, filer=start.filer.name, reason="schedule")),
            )
        except Refusal as err:  # not recorded as scheduled: still due at the next tick
            log.info("schedule: %s skipped: %s", start.filer.key, err)
            continue
        started.add(start.instance_id)
        await asyncio.to_thread(catalog_ops.record_scheduled, plan, start.filer, start.occurrence)
        log.info("schedule: started %s for the %s occurrence", start.instance_id, start.occurrence)
    await tick_drills(client, plan, states, now)
    # Signals for alerts (docs/operations.md): a status line per filer, breaches, then the heartbeat.
    reports = await asyncio.to_thread(report_catalog.reports_for_tick, plan, states, running | started, now)
    backups = sum(1 for s in decision.start if s.instance_id in started)  # a refused start counts as skipped
    readds = len(started) - backups
    signals.emit(
        log,
        signals.for_tick(
            reports, started=backups, skipped=len(decision.skip) + len(decision.start) - backups, readd=readds
        ),
    )
