"""The copy sub-orchestration: one pass of the copy engine, page by page, with history kept bounded.

Pages are listed one after another (the listing's continuation token chains them) and copied a bounded
number at a time; pending Copy Blob operations are polled on durable timers. A job that guards changes (every
backup pass) plans all its pages first and copies only once the change guard cleared the pass; a held pass
returns its change check and overwrites nothing. Every
`pages_per_execution` pages the orchestration continues as new with its cursor and totals, so history
does not grow with the number of blobs. A cancel marker (written by the parent's `copy_cancel`) is seen
at the next report and stops the pass between polls.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import copy as copy_acts
from orchestrators.durable_helpers import Gen, activity, now
from shared.blobcopy.model import ChangeCheck, CopyJob, PagePlan, PageProgress, PageVerify, Summary
from shared.core.codec import decode, plain
from shared.core.errors import CopyFailed
from shared.runbook.payloads import (
    CopyFinish,
    CopyInput,
    CopyOutcome,
    CopyPageRequest,
    CopyProgress,
    CopyReport,
    CopyTotals,
)

bp = df.Blueprint()

# The engine bounds pending copies itself (abort and restart past the pending limit, bounded attempts);
# this is only the orchestrator's backstop against a page that never reports done.
POLL_BACKSTOP_FACTOR = 4
INCOMPLETE = "the backup generation being written is incomplete (not verified); the other is untouched"


# Outputs are plain JSON (the SDK json.dumps them, without the Durable codec): records go out as dicts.
@bp.orchestration_trigger(context_name="context")
def copy_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    state = decode(CopyInput, context.get_input())
    if state.job.guard.guards_changes:
        return (yield from _planned_first(context, state))
    job = state.job
    cursor, totals = state.cursor, state.totals
    pages_here = 0
    listing_done = False
    while not listing_done:
        plans: list[PagePlan] = []
        while len(plans) < state.parallel_pages:
            plan: PagePlan = yield activity(context, copy_acts.copy_plan_page, CopyPageRequest(job, cursor=cursor))
            plans.append(plan)
            cursor = plan.next_cursor
            if cursor is None:
                listing_done = True
                break
        totals = totals.add(pages=len(plans), listed=sum(p.listed for p in plans),
                            skipped=sum(p.skipped for p in plans), to_copy=sum(p.to_copy for p in plans),
                            bytes_to_copy=sum(p.bytes_to_copy for p in plans))
        copied = yield from _copy_pages(context, state, [p.page for p in plans if not p.verified], totals,
                                        verified_pages=len(plans))
        if copied is None:
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        totals = copied
        pages_here += len(plans)
        if not listing_done and pages_here >= state.pages_per_execution:
            context.continue_as_new(plain(replace(state, cursor=cursor, totals=totals,
                                                  executions=state.executions + 1)))
            return None
    summary: Summary = yield activity(context, copy_acts.copy_finish, CopyFinish(job))
    yield activity(context, copy_acts.copy_report, CopyReport(job, totals, finished=True))
    return CopyOutcome.to_json(CopyOutcome(summary=summary, totals=totals))


def _planned_first(context: df.DurableOrchestrationContext, state: CopyInput) -> Gen[Any]:
    """A pass whose job guards changes: plan every page, let the change guard clear the pass (or hold it:
    nothing overwritten, no summary), then copy the pages that have copies to make."""
    job = state.job
    totals, work = state.totals, list(state.work)
    if not state.copying:
        planned = yield from _plan_all(context, state)
        if not isinstance(planned, tuple):
            return planned  # continued as new (None), or the outcome of a cancelled or held pass
        totals, work = planned
    pages_here = 0
    while work:
        batch, work = work[:state.parallel_pages], work[state.parallel_pages:]
        copied = yield from _copy_pages(context, state, batch, totals, verified_pages=len(batch))
        if copied is None:
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        totals, pages_here = copied, pages_here + len(batch)
        if work and pages_here >= state.pages_per_execution:
            context.continue_as_new(plain(replace(state, cursor=None, totals=totals, work=tuple(work), copying=True,
                                                  executions=state.executions + 1)))
            return None
    summary: Summary = yield activity(context, copy_acts.copy_finish, CopyFinish(job))
    yield activity(context, copy_acts.copy_report, CopyReport(job, totals, finished=True))
    return CopyOutcome.to_json(CopyOutcome(summary=summary, totals=totals))


def _plan_all(context: df.DurableOrchestrationContext,
              state: CopyInput) -> Gen[tuple[CopyTotals, list[int]] | dict[str, Any] | None]:
    """Plan the pages from the cursor on, then ask the change guard: (totals, pages to copy) when it cleared
    the pass; the outcome of a held or cancelled pass; None when it continued as new."""
    job = state.job
    cursor, totals, work = state.cursor, state.totals, list(state.work)
    pages_here = 0
    while True:
        plan: PagePlan = yield activity(context, copy_acts.copy_plan_page, CopyPageRequest(job, cursor=cursor))
        totals = totals.add(pages=1, listed=plan.listed, skipped=plan.skipped, to_copy=plan.to_copy,
                            bytes_to_copy=plan.bytes_to_copy, verified_pages=int(plan.verified))
        work += [] if plan.verified else [plan.page]
        cursor, pages_here = plan.next_cursor, pages_here + 1
        if cursor is None:
            break
        if pages_here % state.parallel_pages == 0 and (yield from _cancelled(context, job, totals)):
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        if pages_here >= state.pages_per_execution:
            context.continue_as_new(plain(replace(state, cursor=cursor, totals=totals, work=tuple(work),
                                                  executions=state.executions + 1)))
            return None
    check: ChangeCheck = yield activity(context, copy_acts.copy_check_changes, CopyFinish(job))
    if (yield from _cancelled(context, job, totals)):
        return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
    if not check.cleared:
        return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, changes=check))
    return totals, work


def _cancelled(context: df.DurableOrchestrationContext, job: CopyJob, totals: CopyTotals) -> Gen[bool]:
    """Report the totals; whether the parent asked the pass to stop."""
    report: CopyProgress = yield activity(context, copy_acts.copy_report, CopyReport(job, totals))
    return report.cancelled


def _copy_pages(context: df.DurableOrchestrationContext, state: CopyInput, work: list[int],
                totals: CopyTotals, verified_pages: int) -> Gen[CopyTotals | None]:
    """Start, poll and verify a batch of planned pages (those of `work` have copies to make; verified_pages
    of the batch count as verified once it is done): the new totals, or None when cancelled."""
    job = state.job
    progress: dict[int, PageProgress] = {}
    if work:
        started: list[PageProgress] = yield context.task_all([
            activity(context, copy_acts.copy_start_page, CopyPageRequest(job, page=page))
            for page in work])
        progress = {p.page: p for p in started}
        poll = timedelta(seconds=state.poll_interval_seconds)
        backstop = now(context) + poll + timedelta(
            seconds=job.pending_limit_seconds * job.max_attempts * POLL_BACKSTOP_FACTOR)
        while not all(p.done for p in progress.values()):
            report: CopyProgress = yield activity(
                context, copy_acts.copy_report, CopyReport(job, _live(totals, progress)))
            if report.cancelled:
                return None
            if now(context) >= backstop:
                waiting = sorted(k for k, p in progress.items() if not p.done)
                raise CopyFailed(f"copy job {job.job_id}: pages {waiting} still pending after {backstop}",
                                 filer=state.filer, state=INCOMPLETE,
                                 action="check the destination account's copy status, then back up again")
            yield context.create_timer(now(context) + poll)
            polled: list[PageProgress] = yield context.task_all([
                activity(context, copy_acts.copy_poll_page, CopyPageRequest(job, page=page))
                for page, p in progress.items() if not p.done])
            progress.update({p.page: p for p in polled})
        checks: list[PageVerify] = yield context.task_all([
            activity(context, copy_acts.copy_verify_page, CopyPageRequest(job, page=page))
            for page in work])
        bad = [c for c in checks if not c.verified]
        if bad:
            examples = "; ".join(x for c in bad for x in c.problems[:3])[:600]
            raise CopyFailed(f"copy job {job.job_id}: {len(bad)} page(s) failed verification "
                             f"({sum(c.mismatches for c in bad)} mismatches, {sum(c.failed for c in bad)} "
                             f"failed copies): {examples}", filer=state.filer, state=INCOMPLETE,
                             action="read the page problems, then back up again")
    totals = _live(totals, progress, verified_pages=verified_pages)
    report = yield activity(context, copy_acts.copy_report, CopyReport(job, totals))
    return None if report.cancelled else totals


def _live(totals: CopyTotals, progress: dict[int, PageProgress], verified_pages: int = 0) -> CopyTotals:
    """Totals with the batch's pages folded in (pending: what is still in flight right now)."""
    pages = progress.values()
    done = totals.add(copied=sum(p.copied for p in pages), bytes_copied=sum(p.bytes for p in pages),
                      failed=sum(p.failed for p in pages), verified_pages=verified_pages,
                      source_changed=sum(p.source_changed for p in pages))
    return replace(done, pending=sum(p.pending + p.todo for p in pages if not p.done))
