"""The timer tick: re-add what a stopped run left removed, then start the backups the plan's schedule says are due,
then the drills: a clean-up after a drill that stopped without one, and those each filer's `drill_schedule` says
are due (triggers/drills.py).

The tick runs every five minutes; the plan's own NCRONTAB decides when a filer is due (the plan is the one
place a schedule lives). Each backup is a singleton `backup-{cluster}-{filer}`; one backup per cluster at a
time by default; a filer that needs attention, has failed over, or already runs is skipped with a log line.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from shared.core.codec import plain
from shared.runbook import record as catalog_ops
from shared.runbook import report_catalog, services, signals
from shared.runbook import schedule as scheduling
from shared.runbook.payloads import (
    BACKUP,
    READD,
    BackupRequest,
    FilerRef,
    backup_instance_id,
    failover_instance_id,
    readd_instance_id,
)
from triggers.common import Refusal, load_plan, running_ids
from triggers.drills import tick_drills

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.timer")

TICK = "0 */5 * * * *"


@bp.timer_trigger(schedule=TICK, arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def tick(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    # Plan file, catalog blobs: blocking I/O goes to a thread, the worker's event loop serves other calls.
    try:
        plan = await asyncio.to_thread(load_plan)
    except Refusal as err:
        log.error("tick skipped: %s", err)
        return
    ids = [i for f in plan.filers for i in (backup_instance_id(f.cluster, f.name), readd_instance_id(f.cluster, f.name),
                                            failover_instance_id(f.cluster, f.name))]
    # The catalog first, the runs second: a removal mark read here was written by a run that had started, so
    # it is still seen running below, or it has ended (and `readd_plan` re-reads the catalog before acting).
    states = await asyncio.to_thread(catalog_ops.load_states, plan)
    running = await running_ids(client, ids)
    now = datetime.fromtimestamp(services.now(), UTC)
    decision = scheduling.tick(plan, states, now, running)
    for filer in decision.readd:
        instance_id = readd_instance_id(filer.cluster, filer.name)
        await client.start_new(READD, instance_id, plain(FilerRef(filer.cluster, filer.name)))
        log.warning("reconcile: %s is removed by this app with no run in progress; re-adding as %s",
                    filer.key, instance_id)
    for skip in decision.skip:
        log.info("schedule: %s skipped: %s", skip.filer.key, skip.reason)
    for start in decision.start:
        await client.start_new(BACKUP, start.instance_id, plain(
            BackupRequest(cluster=start.filer.cluster, filer=start.filer.name, reason="schedule")))
        await asyncio.to_thread(catalog_ops.record_scheduled, plan, start.filer, start.occurrence)
        log.info("schedule: started %s for the %s occurrence", start.instance_id, start.occurrence)
    await tick_drills(client, plan, states, now)
    # Signals for alerts (docs/operations.md): a status line per filer, breaches, then the heartbeat.
    live = running | {s.instance_id for s in decision.start} | {readd_instance_id(f.cluster, f.name)
                                                                for f in decision.readd}
    reports = await asyncio.to_thread(report_catalog.reports_for_tick, plan, states, live, now)
    signals.emit(log, signals.for_tick(reports, started=len(decision.start), skipped=len(decision.skip),
                                       readd=len(decision.readd)))
