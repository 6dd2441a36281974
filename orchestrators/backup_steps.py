"""The phases of a backup run that wait on the cluster or the copy (flush, remove, copy), and run state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities import backup as backup_acts
from activities import copy as copy_acts
from orchestrators.durable_helpers import (
    Gen,
    RunStatus,
    activity,
    cancellable_timer,
    cluster_poll,
    failed,
    now,
    raise_if_cancelled,
    reason,
    seconds_since,
    sleep,
    sleep_or_cancel,
)
from shared.avere.records import FilerRecord
from shared.blobcopy.model import ChangeCheck, DeleteReport
from shared.core.codec import decode, plain
from shared.core.errors import CopyFailed, DrError, FlushTimeout
from shared.runbook.copy import pass_ids
from shared.runbook.payloads import (
    CANCEL_EVENT,
    COPY,
    BackupTarget,
    CopyInput,
    CopyOutcome,
    CopyProgress,
    CopyRef,
    CopyTotals,
    KeyRotation,
    RemoveStatus,
    RunContext,
    RunStep,
    StartedActivities,
)
from shared.runbook.refs import RunRef
from shared.runbook.run_ids import copy_run_id

REMOVE_DEADLINE = timedelta(hours=1)
NOTHING_REMOVED = "nothing removed; clients unsuspended"


class ChangesHeld(DrError):
    """The change guard held a copy pass before it overwrote anything: the run waits for an approval."""

    def __init__(self, check: ChangeCheck, job_id: str, step: str, filer: str) -> None:
        super().__init__(
            f"the {step} pass would overwrite {check.changes} of the {check.base} blobs the generation "
            f"holds (limit {check.limit})",
            filer=filer,
            state="nothing of this pass overwritten; the newest verified backup untouched",
            action=f"approve with the approve_changes event naming {check.approval_ref}, or let it time out",
        )
        self.check, self.job_id, self.step = check, job_id, step


@dataclass
class Run:
    """What one backup run has done so far: the compensation decides from this, not from where it failed.
    `ref` is what activities are given; `ctx` (the run's snapshot, from `begin_run`) paces and names things."""

    context: df.DurableOrchestrationContext
    ref: RunRef
    ctx: RunContext
    target: BackupTarget
    status: RunStatus
    started: datetime
    cancel: Any
    key: KeyRotation | None = None
    record: FilerRecord | None = None
    precopy: CopyOutcome | None = None
    final: CopyOutcome | None = None
    deletes: DeleteReport | None = None
    entry: dict[str, Any] | None = None  # the catalog entry, once recorded
    suspended: bool = False
    offline_since: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)
    fenced: str = ""  # a failover fenced the filer: the compensation left it removed or suspended, and how
    approval: dict[str, str] = field(default_factory=dict)  # the mass-delete decision and who made it

    @property
    def captured(self) -> FilerRecord:
        """The record capture took: removal, re-add and NEEDS_ATTENTION all need it, and capture runs first."""
        if self.record is None:
            raise DrError(
                "the run has no captured record of the filer",
                filer=self.ref.key,
                state="not removed by this run (capture comes before any removal)",
                action="read the run's history (status --history), then back up again",
            )
        return self.record

    def passes(self) -> tuple[str | None, str]:
        """The job ids of (the online pre-copy pass or None, the final mirror pass) of this run."""
        return pass_ids(self.ctx, self.target)

    def result(self, outcome: str, entry: dict | None = None, error: str = "") -> dict[str, Any]:
        summary = self.final.summary if self.final else None
        return {
            "status": outcome,
            "cluster": self.ref.cluster,
            "filer": self.ref.filer,
            "backup_id": self.target.backup_id,
            "generation": self.target.generation,
            "container": self.target.container,
            "key_secret_version": self.key.secret.version if self.key else None,
            "listed": summary.listed if summary else None,
            "copied": summary.copied if summary else None,
            "bytes_copied": summary.bytes_copied if summary else None,
            "deleted": (summary.deleted if summary else 0) + (self.deletes.deleted if self.deletes else 0),
            "extras": summary.delete_candidates if summary and outcome == "verified_with_extras" else 0,
            **{k: round(v, 3) for k, v in self.timings.items()},
            "fenced": self.fenced or None,
            "deletes_approval": self.approval or None,
            "entry": entry,
            "error": error or None,
        }


def begin(
    context: df.DurableOrchestrationContext, ref: RunRef, ctx: RunContext, status: RunStatus, started: datetime
) -> Gen[Run]:
    """Reserve the generation the run writes (begin_backup) and start the run's record of what it has done."""
    target: BackupTarget = yield activity(context, backup_acts.begin_backup, ref)
    status.step("begin", backup_id=target.backup_id, generation=target.generation, container=target.container)
    cancel = context.wait_for_external_event(CANCEL_EVENT)
    return Run(context=context, ref=ref, ctx=ctx, target=target, status=status, started=started, cancel=cancel)


def flush(run: Run) -> Gen[None]:
    """Suspend clients and flush; wait (durable timers) until no dirty data, at most max_offline."""
    context, ctx, ref = run.context, run.ctx, run.ref
    run.status.step("flush")
    run.offline_since = now(context)
    # Before the call: the activity suspends first, so a failure starting the flush leaves clients suspended
    # and the compensation must unsuspend them (idempotent when the suspend itself failed).
    run.suspended = True
    started: StartedActivities = yield activity(context, backup_acts.suspend_and_flush, ref)
    limit = timedelta(minutes=ctx.filer.max_offline_minutes)
    deadline = run.offline_since + limit
    while True:
        status = yield activity(context, backup_acts.flush_status, RunStep(ref, started.activity_ids))
        run.status.update(dirty_files=status.dirty_files, flush_percent=status.percent)
        if status.failed:
            raise DrError(
                f"the flush failed: {status.detail}",
                filer=ctx.filer.key,
                state=NOTHING_REMOVED,
                action="read the cluster's activity log, then back up again",
            )
        if status.done:
            break
        if now(context) >= deadline:
            raise FlushTimeout(
                f"the filer is not known clean after max_offline ({ctx.filer.max_offline_minutes} "
                f"min): {status.detail}",
                filer=ctx.filer.key,
                state=NOTHING_REMOVED,
                action="raise max_offline_minutes, or shorten the writeback delay",
            )
        cancelled = yield from sleep_or_cancel(context, cluster_poll(ctx.cluster), run.cancel, until=deadline)
        raise_if_cancelled(cancelled, ctx.filer.key, NOTHING_REMOVED)
    run.timings["flush_s"] = seconds_since(context, run.offline_since)


def remove(run: Run) -> Gen[None]:
    """Record the removal in the catalog first, then remove the junctions, then the filer."""
    context, ref = run.context, run.ref
    mark = now(context)
    # The backup's consistent point (flushed, clients suspended, about to be removed): drills measure RPO from it.
    run.timings["removed_after_s"] = seconds_since(context, run.started)
    yield activity(context, backup_acts.mark_removed, ref)
    run.status.step("removing_junctions")
    ids = yield activity(context, backup_acts.remove_junctions, ref)
    yield from _wait_removal(run, ids, "junctions", lambda s: s.done and s.junctions == 0)
    run.status.step("removing_filer")
    ids = yield activity(context, backup_acts.remove_filer, ref)
    yield from _wait_removal(run, ids, "core filer", lambda s: s.done and s.admin_state == "removed")
    run.timings["remove_s"] = seconds_since(context, mark)


def _wait_removal(
    run: Run, started: StartedActivities, what: str, finished: Callable[[RemoveStatus], bool]
) -> Gen[None]:
    # Removal is not cancellable half-way: a cancel is honoured at the next copy poll, once it is whole.
    context, ctx = run.context, run.ctx
    deadline = now(context) + REMOVE_DEADLINE
    while True:
        status: RemoveStatus = yield activity(
            context, backup_acts.remove_status, RunStep(run.ref, started.activity_ids)
        )
        run.status.update(remove_percent=status.percent)
        if status.failed:
            raise DrError(
                f"removing the {what} failed: {status.detail}",
                filer=ctx.filer.key,
                state=f"removal incomplete (filer {status.admin_state})",
                action="the run re-adds the filer; read the cluster's activity log",
            )
        if finished(status):
            return
        if now(context) >= deadline:
            raise DrError(
                f"removing the {what} did not finish within {REMOVE_DEADLINE}",
                filer=ctx.filer.key,
                state=f"removal incomplete (filer {status.admin_state})",
                action="the run re-adds the filer; read the cluster's activity log",
            )
        yield from sleep(context, cluster_poll(ctx.cluster))


def run_copy(run: Run, job_id: str, step: str, attempt: int = 0) -> Gen[CopyOutcome]:
    """Run one copy pass as a sub-orchestration; keep this run's status live; honour `cancel`. ChangesHeld
    when the change guard holds the pass (attempt 1 runs it again once approved, as a new sub-orchestration)."""
    context, ctx = run.context, run.ctx
    given = CopyInput(run=run.ref, job_id=job_id, attempt=attempt)
    child_id = copy_run_id(context.instance_id, job_id, attempt)
    job = CopyRef(run.ref, job_id)
    task = context.call_sub_orchestrator(COPY, plain(given), child_id)
    mark = now(context)
    run.status.step(step, copy_instance=child_id)
    while True:
        tick = cancellable_timer(context, now(context) + _tick(now(context) - mark))
        winner = yield context.task_any([task, run.cancel, tick])
        if winner == tick:
            progress: CopyProgress = yield activity(context, copy_acts.copy_progress, job)
            run.status.update(**_progress_fields(progress.totals, seconds_since(context, mark)))
            continue
        tick.cancel()
        if winner == run.cancel:
            run.status.step(f"{step}_cancelling")
            yield activity(context, copy_acts.copy_cancel, job)
            yield task  # the pass stops at its next report
            raise_if_cancelled(True, ctx.filer.key, f"{step} stopped; the generation written is not verified")
        err = failed(task)
        if err is not None:
            raise CopyFailed(
                f"the {step} pass failed: {reason(err)}",
                filer=ctx.filer.key,
                state="the generation being written is incomplete; the other is untouched",
                action="read the copy orchestration's history, then back up again",
            )
        outcome = decode(CopyOutcome, task.result)
        run.status.update(**_progress_fields(outcome.totals, seconds_since(context, mark)))
        raise_if_cancelled(outcome.cancelled, ctx.filer.key, f"{step} stopped")
        if outcome.changes is not None and not outcome.changes.cleared:
            raise ChangesHeld(outcome.changes, job_id, step, ctx.filer.key)
        if outcome.summary is None or not outcome.summary.verified:
            raise CopyFailed(
                f"the {step} pass did not verify",
                filer=ctx.filer.key,
                state="the generation being written is not verified; the other is untouched",
                action="read the copy orchestration's history, then back up again",
            )
        return outcome


def _tick(elapsed: timedelta) -> timedelta:
    """Progress refresh: often at first, then rarer, so the run's own history stays small on long copies."""
    return min(timedelta(minutes=5), max(timedelta(seconds=30), elapsed / 10))


def _progress_fields(totals: CopyTotals, elapsed: float) -> dict[str, Any]:
    eta = None
    if totals.bytes_copied and totals.bytes_to_copy > totals.bytes_copied and elapsed > 0:
        eta = round((totals.bytes_to_copy - totals.bytes_copied) * elapsed / totals.bytes_copied)
    return {
        "blobs_listed": totals.listed,
        "blobs_to_copy": totals.to_copy,
        "blobs_copied": totals.copied,
        "bytes_to_copy": totals.bytes_to_copy,
        "bytes_copied": totals.bytes_copied,
        "pending": totals.pending,
        "pages": totals.pages,
        "eta_s": eta,
    }
