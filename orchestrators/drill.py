"""Rehearse a failover without touching production: the drill of one core filer (`drill-{cluster}-{filer}`).

record the run's plan snapshot (begin_run) → choose the backup and pin its generation → clear what an earlier
drill of the filer left → copy the backup into a scratch container (a full pass of the copy orchestration,
`{drill instance}-{drill id}-scratch`, inside the backup account) → check the copy against the backup's manifest
→ attach it to the DR cluster as `drill-<filer>` with junctions under `/.drill/<filer>` → health → read files back
through the probe → record RTO, phases and the backup's age → remove the drill filer, its junctions and
policies, delete the scratch container, unpin. Compensation is `except` → record → clean up → re-raise (never
`finally`); a `cancel` event (a failover of the filer sends one) stops it at its next wait, and it cleans up all
the same. Activities are given the run's reference and the drill id only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities import copy as copy_acts
from activities import drill as drill_acts
from activities import runs as runs_acts
from orchestrators.durable_helpers import (
    ATTACH_DEADLINE,
    ATTACH_MAX_FAILURES,
    Gen,
    RunStatus,
    activity,
    cancellable_timer,
    failed,
    new_run_id,
    now,
    raise_if_cancelled,
    reason,
    run_input,
    seconds_since,
    sleep,
    sleep_or_cancel,
)
from shared.avere.records import MountPoint
from shared.core.codec import decode, plain
from shared.core.errors import DrError, DrillFailed, RunCancelled
from shared.runbook.drill import CANCELLED, FAILED, PASSED, UNVERIFIED
from shared.runbook.drill_payloads import (
    CleanupStep,
    DrillBegin,
    DrillChoice,
    DrillCleaned,
    DrillFinish,
    DrillPage,
    DrillRef,
    DrillRequest,
    DrillStep,
    Readback,
    StaleDrill,
    drill_instance_id,
    scratch_job_id,
)
from shared.runbook.failover_payloads import BackupPageCheck
from shared.runbook.payloads import (
    CANCEL_EVENT,
    COPY,
    AttachStep,
    CopyInput,
    CopyOutcome,
    CopyProgress,
    CopyRef,
    CopyTotals,
    RunStarted,
)
from shared.runbook.refs import RunRef, RunStart
from shared.runbook.run_ids import copy_run_id

bp = df.Blueprint()

VERIFY_BATCH = 4  # manifest pages checked at a time against the scratch copy
CLEANUP_DEADLINE = timedelta(hours=1)
CLEANUP_MAX_FAILURES = 4
UNTOUCHED = "production untouched; the drill's own filer and scratch copy are being removed"
CLEANED = "production untouched; the drill's own filer and scratch copy were removed"
LEFT = "production untouched; the drill's filer or scratch copy is LEFT (see the drill record's cleanup)"


@dataclass
class DrillRun:
    """What one drill has done so far (the record and the clean-up decide from this)."""

    context: df.DurableOrchestrationContext
    ref: DrillRef
    choice: DrillChoice
    status: RunStatus
    started: datetime
    cancel: Any
    timings: dict[str, float] = field(default_factory=dict)
    rto_s: float | None = None
    mounts: tuple[MountPoint, ...] = ()
    readback: Readback | None = None
    cleanup_ok: bool | None = None

    @property
    def poll(self) -> timedelta:
        return timedelta(seconds=self.choice.cluster_poll_seconds)

    def result(self, outcome: str, error: str = "") -> dict[str, Any]:
        c = self.choice
        rto_copy = self.timings.get("copy_s")
        return {
            "status": outcome,
            "cluster": self.ref.cluster,
            "filer": self.ref.filer,
            "drill_id": c.drill_id,
            "backup_id": c.backup_id,
            "generation": c.generation,
            "target_cluster": c.target_cluster,
            "scratch": c.scratch,
            "drill_filer": c.drill_filer,
            "rpo_s": c.rpo_s,
            "rto_s": self.rto_s,
            "rto_without_copy_s": (
                round(self.rto_s - rto_copy, 3) if self.rto_s is not None and rto_copy is not None else None
            ),
            "phases": dict(self.timings),
            "readback": self.readback.to_json() if self.readback else None,
            "files_checked": self.readback.files_checked if self.readback else 0,
            "cleaned_up": self.cleanup_ok,
            "error": error or None,
        }


@bp.orchestration_trigger(context_name="context")
def drill_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, DrillRequest)
    started = now(context)
    status = RunStatus(context, "drill", f"{req.cluster}/{req.filer}", started)
    own = drill_instance_id(req.cluster, req.filer)
    if context.instance_id != own:  # one drill per filer holds only under its own id (the clean-up relies on it)
        raise DrillFailed(
            f"a drill of {req.cluster}/{req.filer} runs only as {own}, not {context.instance_id}",
            filer=f"{req.cluster}/{req.filer}",
            state="nothing changed",
            action="start drills with POST /api/drills/{cluster}/{filer}",
        )
    run_ref = RunRef(req.cluster, req.filer, context.instance_id, new_run_id(context, started))
    status.step("starting", drill_id=run_ref.run_id)
    # The run's plan snapshot (and its DR cluster): every drill activity resolves from it and the drill record.
    begun: RunStarted = yield activity(
        context, runs_acts.begin_run, RunStart(run_ref, "drill", reason=req.reason, target_cluster=req.target)
    )
    status.update(target_cluster=begun.target_cluster.name if begun.target_cluster else None)
    if req.reason == "reconcile":
        return (yield from _reconcile(context, run_ref, status))
    ref = DrillRef(run_ref, run_ref.run_id)
    status.step("choosing_backup", drill_id=ref.drill_id)
    try:
        choice: DrillChoice = yield activity(context, drill_acts.drill_begin, DrillBegin(ref, req.backup_id))
    except Exception as err:  # nothing was pinned, copied or attached
        why = f"no backup could be chosen: {reason(err)}"
        yield activity(context, drill_acts.drill_finish, DrillFinish(ref, FAILED, error=why))
        status.step(FAILED, error=why[:500])
        raise DrillFailed(
            why, filer=ref.key, state="nothing changed", action="read the error, then drill again"
        ) from None
    run = DrillRun(context, ref, choice, status, started, cancel=context.wait_for_external_event(CANCEL_EVENT))
    run.timings["choose_s"] = seconds_since(context, started)
    status.step(
        "chosen",
        backup_id=choice.backup_id,
        generation=choice.generation,
        rpo_s=choice.rpo_s,
        target_cluster=choice.target_cluster,
        scratch=choice.scratch,
        drill_filer=choice.drill_filer,
    )
    try:
        yield from _sweep(run)
        yield from _copy(run)
        yield from _verify(run)
        yield from _attach(run)
        yield from _readback(run)
    except Exception as err:
        outcome = CANCELLED if isinstance(err, RunCancelled) else FAILED
        yield from _finish(run, outcome, reason(err))
        cleaned = yield from _clean_up(run)
        if outcome == CANCELLED and cleaned:
            return run.result(CANCELLED, error=reason(err))
        raise _typed(err, run, cleaned) from None
    outcome = PASSED if run.readback is not None and run.readback.status == "passed" else UNVERIFIED
    yield from _finish(run, outcome, "")
    if not (yield from _clean_up(run)):
        raise _typed(None, run, False)
    return run.result(outcome)


def _typed(err: Exception | None, run: DrillRun, cleaned: bool) -> DrError:
    state = CLEANED if cleaned else LEFT
    action = (
        "read the drill record and the run's history, then drill again"
        if cleaned
        else ("remove what the drill record's cleanup names, or drill the filer again (it clears leftovers first)")
    )
    if err is None:
        return DrillFailed("the drill could not clean up after itself", filer=run.ref.key, state=state, action=action)
    what = err.what if isinstance(err, DrError) else reason(err)
    return DrillFailed(what, filer=run.ref.key, state=state, action=action)


def _finish(run: DrillRun, outcome: str, error: str) -> Gen[None]:
    """The drill record: outcome, RTO, phases, read-back (before the clean-up, which adds its own result)."""
    context = run.context
    yield activity(
        context,
        drill_acts.drill_finish,
        DrillFinish(run.ref, outcome, phases=tuple(sorted(run.timings.items())), rto_s=run.rto_s, error=error[:2000]),
    )
    run.status.step(outcome, rto_s=run.rto_s, error=error[:500] or None)


# --- copy and check ---------------------------------------------------------------------------------------------
def _copy(run: DrillRun) -> Gen[None]:
    """The scratch copy as a sub-orchestration; progress in this run's status; a cancel stops it between polls."""
    context, ref = run.context, run.ref
    job = CopyRef(ref.run, scratch_job_id(ref.drill_id))
    child = copy_run_id(context.instance_id, job.job_id)
    task = context.call_sub_orchestrator(COPY, plain(CopyInput(ref.run, job.job_id)), child)
    mark = now(context)
    run.status.step("scratch_copy", copy_instance=child)
    while True:
        tick = cancellable_timer(context, now(context) + _tick(now(context) - mark))
        winner = yield context.task_any([task, run.cancel, tick])
        if winner == tick:
            progress: CopyProgress = yield activity(context, copy_acts.copy_progress, job)
            run.status.update(**_totals(progress.totals))
            continue
        tick.cancel()
        if winner == run.cancel:
            run.status.step("scratch_copy_cancelling")
            yield activity(context, copy_acts.copy_cancel, job)
            yield task  # the copy stops at its next report
            raise_if_cancelled(True, ref.key, UNTOUCHED)
        err = failed(task)
        if err is not None:
            raise DrillFailed(
                f"the scratch copy failed: {reason(err)}",
                filer=ref.key,
                state=UNTOUCHED,
                action="read the copy orchestration's history, then drill again",
            )
        outcome = decode(CopyOutcome, task.result)
        raise_if_cancelled(outcome.cancelled, ref.key, UNTOUCHED)
        if outcome.summary is None or not outcome.summary.verified:
            raise DrillFailed(
                "the scratch copy did not verify",
                filer=ref.key,
                state=UNTOUCHED,
                action="read the copy orchestration's history, then drill again",
            )
        run.timings["copy_s"] = seconds_since(context, mark)
        run.status.update(**_totals(outcome.totals))
        return


def _totals(totals: CopyTotals) -> dict[str, int]:
    return {
        "blobs_listed": totals.listed,
        "blobs_to_copy": totals.to_copy,
        "blobs_copied": totals.copied,
        "bytes_to_copy": totals.bytes_to_copy,
        "bytes_copied": totals.bytes_copied,
        "pending": totals.pending,
    }


def _tick(elapsed: timedelta) -> timedelta:
    return min(timedelta(minutes=5), max(timedelta(seconds=30), elapsed / 10))


def _verify(run: DrillRun) -> Gen[None]:
    """Every page of the backup's manifest against the scratch copy, as a failover checks the backup itself."""
    context, ref = run.context, run.ref
    mark = now(context)
    run.status.step("verifying")
    checked, page, last = 0, 0, False
    while not last:
        batch: list[BackupPageCheck] = yield context.task_all(
            [activity(context, drill_acts.drill_check_page, DrillPage(ref, page=page + i)) for i in range(VERIFY_BATCH)]
        )
        for check in batch:
            if last:
                break
            checked += check.checked
            last = check.last
            if check.mismatches or check.missing:
                raise DrillFailed(
                    f"the copy of backup {run.choice.backup_id} does not match its manifest on page "
                    f"{check.page}: {check.mismatches} different, {check.missing} missing "
                    f"({'; '.join(check.problems[:3])})",
                    filer=ref.key,
                    state=UNTOUCHED,
                    action="investigate the backup container: a failover would refuse this backup",
                )
        page += VERIFY_BATCH
        run.status.update(blobs_checked=checked, pages_checked=page)
    run.timings["verify_s"] = seconds_since(context, mark)


# --- attach and read back -----------------------------------------------------------------------------------------
def _attach(run: DrillRun) -> Gen[None]:
    """attach_step until the drill filer serves (bounded in time and failures), cancellable between steps."""
    context, ref = run.context, run.ref
    mark = now(context)
    give_up = mark + ATTACH_DEADLINE
    failures = 0
    ids: tuple[str, ...] = ()
    run.status.step("attach")
    while True:
        try:
            result: AttachStep = yield activity(context, drill_acts.drill_attach_step, DrillStep(ref, ids), retry=None)
            failures = 0
        except Exception as err:  # the pause and the limit are decided here, as for a failover
            failures += 1
            if failures >= ATTACH_MAX_FAILURES or now(context) >= give_up:
                raise DrillFailed(
                    f"attaching the scratch copy failed {failures} time(s) in a row: {reason(err)}",
                    filer=ref.key,
                    state=UNTOUCHED,
                    action="check the DR cluster, then drill again",
                ) from None
            run.status.step("attach", phase="retrying", attach_failures=failures)
            cancelled = yield from sleep_or_cancel(context, run.poll * (2**failures), run.cancel)
            raise_if_cancelled(cancelled, ref.key, UNTOUCHED)
            continue
        run.status.step("attach", phase=result.phase)
        if result.done:
            run.mounts = result.mounts
            break
        if now(context) >= give_up:
            raise DrillFailed(
                f"attaching the scratch copy did not finish within {ATTACH_DEADLINE}; phase "
                f"{result.phase}: {result.detail}",
                filer=ref.key,
                state=UNTOUCHED,
                action="check the DR cluster's activities, then drill again",
            )
        ids = result.activity_ids
        cancelled = yield from sleep_or_cancel(context, run.poll, run.cancel)
        raise_if_cancelled(cancelled, ref.key, UNTOUCHED)
    run.timings["attach_s"] = seconds_since(context, mark)
    run.rto_s = seconds_since(context, run.started)
    run.status.step("serving", rto_s=run.rto_s, mounts=[m.to_json() for m in run.mounts])


def _readback(run: DrillRun) -> Gen[None]:
    context, ref = run.context, run.ref
    mark = now(context)
    run.status.step("readback")
    result: Readback = yield activity(context, drill_acts.drill_readback, ref)
    run.readback = result
    run.timings["readback_s"] = seconds_since(context, mark)
    run.status.step(
        "read_back",
        readback=result.status,
        files_checked=result.files_checked,
        files_ok=result.files_ok,
        bytes_read=result.bytes_read,
    )
    if result.status == "failed":
        raise DrillFailed(
            f"the read-back through the DR cluster failed: {result.detail}"
            + (f" ({'; '.join(result.problems[:3])})" if result.problems else ""),
            filer=ref.key,
            state=UNTOUCHED,
            action="read the drill record's readback problems: a failover of this backup would serve the same",
        )


# --- clean-up ---------------------------------------------------------------------------------------------------
def _reconcile(context: df.DurableOrchestrationContext, run: RunRef, status: RunStatus) -> Gen[Any]:
    """A drill that stopped without its clean-up (terminated) left its generation pinned: clean up after it now
    and unpin (the timer starts this when a pin outlives its drill, under the filer's drill id)."""
    status.step("finding_leftovers")
    stale: StaleDrill = yield activity(context, drill_acts.drill_stale, run)
    if stale.drill_id is None:
        status.step("nothing_to_clean")
        return {"status": "nothing_to_clean", "cluster": run.cluster, "filer": run.filer}
    ref = DrillRef(run, stale.drill_id)
    mark = now(context)
    status.step("cleaning_up", drill_id=ref.drill_id)
    ok, detail = yield from _cleanup_steps(context, ref, status, timedelta(seconds=stale.poll_seconds))
    cleanup_s = seconds_since(context, mark)
    yield activity(context, drill_acts.drill_cleaned, DrillCleaned(ref, ok, cleanup_s, detail))
    if not ok:
        raise DrillFailed(
            f"the clean-up after drill {ref.drill_id} failed: {detail}",
            filer=ref.key,
            state=LEFT,
            action="remove what the drill record's cleanup names, or drill the filer again",
        )
    status.step("cleaned_up", cleanup_s=cleanup_s)
    return {
        "status": "cleaned_up",
        "cluster": run.cluster,
        "filer": run.filer,
        "drill_id": ref.drill_id,
        "cleanup_s": cleanup_s,
    }


def _sweep(run: DrillRun) -> Gen[None]:
    """What an earlier drill of the filer left (terminated runs): cleared first, or this drill stops."""
    mark = now(run.context)
    run.status.step("clearing_leftovers")
    ok, detail = yield from _cleanup_steps(run.context, run.ref, run.status, run.poll)
    if not ok:
        raise DrillFailed(
            f"an earlier drill's leftovers could not be cleared: {detail}",
            filer=run.ref.key,
            state="production untouched",
            action="check the DR cluster and the backup account",
        )
    run.timings["sweep_s"] = seconds_since(run.context, mark)


def _clean_up(run: DrillRun) -> Gen[bool]:
    """Remove the drill's filer, junctions and policies, delete its scratch copy, unpin; never raises."""
    context = run.context
    mark = now(context)
    run.status.step("cleaning_up")
    ok, detail = yield from _cleanup_steps(context, run.ref, run.status, run.poll)
    cleanup_s = seconds_since(context, mark)
    yield activity(context, drill_acts.drill_cleaned, DrillCleaned(run.ref, ok, cleanup_s, detail))
    run.timings["cleanup_s"] = cleanup_s
    run.cleanup_ok = ok
    run.status.step("cleaned_up" if ok else "cleanup_failed", cleanup_s=cleanup_s, error=detail[:500] or None)
    return ok


def _cleanup_steps(
    context: df.DurableOrchestrationContext, ref: DrillRef, status: RunStatus, poll: timedelta
) -> Gen[tuple[bool, str]]:
    give_up = now(context) + CLEANUP_DEADLINE
    failures = 0
    ids: tuple[str, ...] = ()
    while True:
        try:
            step: CleanupStep = yield activity(context, drill_acts.drill_cleanup_step, DrillStep(ref, ids), retry=None)
            failures = 0
        except Exception as err:
            failures += 1
            if failures >= CLEANUP_MAX_FAILURES or now(context) >= give_up:
                return False, f"failed {failures} time(s) in a row: {reason(err)}"
            yield from sleep(context, poll * (2**failures))
            continue
        status.update(phase=step.phase)
        if step.done:
            return True, ""
        if now(context) >= give_up:
            return False, f"did not finish within {CLEANUP_DEADLINE}; phase {step.phase}: {step.detail}"
        ids = step.activity_ids
        yield from sleep(context, poll)
