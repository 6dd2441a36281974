"""The copy sub-orchestration: one pass of the copy engine, page by page, with history kept bounded.

Pages are listed one after another (the listing's continuation token chains them) and copied a bounded
number at a time; pending Copy Blob operations are polled on durable timers. Every
`pages_per_execution` pages the orchestration continues as new with its cursor and totals, so history
does not grow with the number of blobs. A cancel marker (written by the parent's `copy_cancel`) is seen
at the next report and stops the pass between polls.

A pass runs only as the sub-orchestration `{backup instance}~{job id}` of the backup run its input names: one
started any other way (the start webhook) stops before it does anything. Its activities are given the run and
the job id; each rebuilds the job from the run's snapshot and the generation the catalog reserved for it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import copy as copy_acts
from orchestrators.durable_helpers import Gen, activity, now, run_input
from shared.blobcopy.model import PagePlan, PageProgress, PageVerify, Summary
from shared.core.codec import plain
from shared.core.errors import CopyFailed, InputRefused
from shared.runbook.payloads import (
    CopyInput,
    CopyOutcome,
    CopyPageRef,
    CopyPass,
    CopyProgress,
    CopyRef,
    CopyReport,
    CopyTotals,
)
from shared.runbook.run_ids import copy_run_id

bp = df.Blueprint()

INCOMPLETE = "the backup generation being written is incomplete (not verified); the other is untouched"


# Outputs are plain JSON (the SDK json.dumps them, without the Durable codec): records go out as dicts.
@bp.orchestration_trigger(context_name="context")
def copy_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    state = run_input(context, CopyInput)
    parent = state.run.instance_id
    expected = copy_run_id(parent, state.job_id)
    if context.parent_instance_id != parent or context.instance_id != expected:
        raise InputRefused(f"a copy pass runs only as the sub-orchestration {expected[:200]!r} of its backup run "
                           f"{parent[:200]!r}; this is {context.instance_id[:200]!r}, started by "
                           f"{context.parent_instance_id or 'no orchestration'}", filer=state.run.key)
    job = CopyRef(state.run, state.job_id)
    desc: CopyPass = yield activity(context, copy_acts.copy_describe, job)
    cursor, totals = state.cursor, state.totals
    pages_here = 0
    listing_done = False
    while not listing_done:
        plans: list[PagePlan] = []
        while len(plans) < desc.parallel_pages:
            plan: PagePlan = yield activity(context, copy_acts.copy_plan_page,
                                            CopyPageRef(state.run, state.job_id, cursor=cursor))
            plans.append(plan)
            cursor = plan.next_cursor
            if cursor is None:
                listing_done = True
                break
        totals = totals.add(pages=len(plans), listed=sum(p.listed for p in plans),
                            skipped=sum(p.skipped for p in plans), to_copy=sum(p.to_copy for p in plans),
                            bytes_to_copy=sum(p.bytes_to_copy for p in plans))
        copied = yield from _copy_pages(context, state, desc, plans, totals)
        if copied is None:
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        totals = copied
        pages_here += len(plans)
        if not listing_done and pages_here >= desc.pages_per_execution:
            context.continue_as_new(plain(replace(state, cursor=cursor, totals=totals,
                                                  executions=state.executions + 1)))
            return None
    summary: Summary = yield activity(context, copy_acts.copy_finish, job)
    yield activity(context, copy_acts.copy_report, CopyReport(state.run, state.job_id, totals, finished=True))
    return CopyOutcome.to_json(CopyOutcome(summary=summary, totals=totals))


def _copy_pages(context: df.DurableOrchestrationContext, state: CopyInput, desc: CopyPass,
                plans: list[PagePlan], totals: CopyTotals) -> Gen[CopyTotals | None]:
    """Start, poll and verify a batch of planned pages: the new totals, or None when cancelled."""
    run, job_id, filer = state.run, state.job_id, state.run.key

    def page_ref(page: int) -> CopyPageRef:
        return CopyPageRef(run, job_id, page=page)

    work = [p.page for p in plans if not p.verified]
    progress: dict[int, PageProgress] = {}
    if work:
        started: list[PageProgress] = yield context.task_all([
            activity(context, copy_acts.copy_start_page, page_ref(page)) for page in work])
        progress = {p.page: p for p in started}
        poll = timedelta(seconds=desc.poll_interval_seconds)
        backstop = now(context) + poll + timedelta(seconds=desc.backstop_seconds)
        while not all(p.done for p in progress.values()):
            report: CopyProgress = yield activity(
                context, copy_acts.copy_report, CopyReport(run, job_id, _live(totals, progress)))
            if report.cancelled:
                return None
            if now(context) >= backstop:
                waiting = sorted(k for k, p in progress.items() if not p.done)
                raise CopyFailed(f"copy job {job_id}: pages {waiting} still pending after {backstop}",
                                 filer=filer, state=INCOMPLETE,
                                 action="check the destination account's copy status, then back up again")
            yield context.create_timer(now(context) + poll)
            polled: list[PageProgress] = yield context.task_all([
                activity(context, copy_acts.copy_poll_page, page_ref(page))
                for page, p in progress.items() if not p.done])
            progress.update({p.page: p for p in polled})
        checks: list[PageVerify] = yield context.task_all([
            activity(context, copy_acts.copy_verify_page, page_ref(page)) for page in work])
        bad = [c for c in checks if not c.verified]
        if bad:
            examples = "; ".join(x for c in bad for x in c.problems[:3])[:600]
            raise CopyFailed(f"copy job {job_id}: {len(bad)} page(s) failed verification "
                             f"({sum(c.mismatches for c in bad)} mismatches, {sum(c.failed for c in bad)} "
                             f"failed copies): {examples}", filer=filer, state=INCOMPLETE,
                             action="read the page problems, then back up again")
    totals = _live(totals, progress, verified_pages=len(plans))
    report = yield activity(context, copy_acts.copy_report, CopyReport(run, job_id, totals))
    return None if report.cancelled else totals


def _live(totals: CopyTotals, progress: dict[int, PageProgress], verified_pages: int = 0) -> CopyTotals:
    """Totals with the batch's pages folded in (pending: what is still in flight right now)."""
    pages = progress.values()
    done = totals.add(copied=sum(p.copied for p in pages), bytes_copied=sum(p.bytes for p in pages),
                      failed=sum(p.failed for p in pages), verified_pages=verified_pages,
                      source_changed=sum(p.source_changed for p in pages))
    return replace(done, pending=sum(p.pending + p.todo for p in pages if not p.done))
