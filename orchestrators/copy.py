"""The copy sub-orchestration: one pass of the copy engine, page by page, with history kept bounded.

Pages are listed one after another (the listing's continuation token chains them) and copied a bounded
number at a time; pending Copy Blob operations are polled on durable timers. A job that guards changes (every
backup pass) plans all its pages first and copies only once the change guard cleared the pass; a held pass
returns its change check and overwrites nothing. Every
`pages_per_execution` pages the orchestration continues as new with its cursor and totals, so history
does not grow with the number of blobs. A cancel marker (written by the parent's `copy_cancel`) is seen
at the next report and stops the pass between polls.

A pass runs only as the sub-orchestration `{backup instance}~{job id}` (`~1` after it: the pass run again once
its overwrites were approved) of the backup run its input names: one started any other way (the start webhook)
stops before it does anything. Whether the pass guards changes is the run snapshot's say (`copy_describe`).
Its activities are given the run and the job id; each rebuilds the job from the run's snapshot and the
generation the catalog reserved for it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import copy as copy_acts
from orchestrators.durable_helpers import Gen, activity, now, run_input
from shared.blobcopy.model import ChangeCheck, PagePlan, PageProgress, PageVerify, Summary
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
    expected = copy_run_id(parent, state.job_id, state.attempt)
    if context.parent_instance_id != parent or context.instance_id != expected:
        raise InputRefused(
            f"a copy pass runs only as the sub-orchestration {expected[:200]!r} of its backup run "
            f"{parent[:200]!r}; this is {context.instance_id[:200]!r}, started by "
            f"{context.parent_instance_id or 'no orchestration'}",
            filer=state.run.key,
        )
    job = CopyRef(state.run, state.job_id)
    desc: CopyPass = yield activity(context, copy_acts.copy_describe, job)
    if desc.guards_changes:
        return (yield from _planned_first(context, state, desc))
    if state.work or state.copying:
        raise InputRefused(
            f"copy job {state.job_id[:100]}: pages to copy are given only to a pass that guards changes",
            filer=state.run.key,
        )
    cursor, totals = state.cursor, state.totals
    pages_here = 0
    listing_done = False
    while not listing_done:
        plans: list[PagePlan] = []
        while len(plans) < desc.parallel_pages:
            plan: PagePlan = yield activity(
                context, copy_acts.copy_plan_page, CopyPageRef(state.run, state.job_id, cursor=cursor)
            )
            plans.append(plan)
            cursor = plan.next_cursor
            if cursor is None:
                listing_done = True
                break
        totals = totals.add(
            pages=len(plans),
            listed=sum(p.listed for p in plans),
            skipped=sum(p.skipped for p in plans),
            to_copy=sum(p.to_copy for p in plans),
            bytes_to_copy=sum(p.bytes_to_copy for p in plans),
        )
        copied = yield from _copy_pages(
            context, state, desc, [p.page for p in plans if not p.verified], totals, verified_pages=len(plans)
        )
        if copied is None:
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        totals = copied
        pages_here += len(plans)
        if not listing_done and pages_here >= desc.pages_per_execution:
            context.continue_as_new(
                plain(replace(state, cursor=cursor, totals=totals, executions=state.executions + 1))
            )
            return None
    summary: Summary = yield activity(context, copy_acts.copy_finish, job)
    yield activity(context, copy_acts.copy_report, CopyReport(state.run, state.job_id, totals, finished=True))
    return CopyOutcome.to_json(CopyOutcome(summary=summary, totals=totals))


def _planned_first(context: df.DurableOrchestrationContext, state: CopyInput, desc: CopyPass) -> Gen[Any]:
    """A pass that guards changes: plan every page, let the change guard clear the pass (or hold it: nothing
    overwritten, no summary), then copy the pages that have copies to make. The engine itself refuses an
    overwrite the guard has not cleared, whatever pages an input names."""
    job = CopyRef(state.run, state.job_id)
    totals, work = state.totals, list(state.work)
    if not state.copying:
        planned = yield from _plan_all(context, state, desc)
        if not isinstance(planned, tuple):
            return planned  # continued as new (None), or the outcome of a cancelled or held pass
        totals, work = planned
    pages_here = 0
    while work:
        batch, work = work[: desc.parallel_pages], work[desc.parallel_pages :]
        copied = yield from _copy_pages(context, state, desc, batch, totals, verified_pages=len(batch))
        if copied is None:
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        totals, pages_here = copied, pages_here + len(batch)
        if work and pages_here >= desc.pages_per_execution:
            context.continue_as_new(
                plain(
                    replace(
                        state,
                        cursor=None,
                        totals=totals,
                        work=tuple(work),
                        copying=True,
                        executions=state.executions + 1,
                    )
                )
            )
            return None
    summary: Summary = yield activity(context, copy_acts.copy_finish, job)
    yield activity(context, copy_acts.copy_report, CopyReport(state.run, state.job_id, totals, finished=True))
    return CopyOutcome.to_json(CopyOutcome(summary=summary, totals=totals))


def _plan_all(
    context: df.DurableOrchestrationContext, state: CopyInput, desc: CopyPass
) -> Gen[tuple[CopyTotals, list[int]] | dict[str, Any] | None]:
    """Plan the pages from the cursor on, then ask the change guard: (totals, pages to copy) when it cleared
    the pass; the outcome of a held or cancelled pass; None when it continued as new."""
    cursor, totals, work = state.cursor, state.totals, list(state.work)
    pages_here = 0
    while True:
        plan: PagePlan = yield activity(
            context, copy_acts.copy_plan_page, CopyPageRef(state.run, state.job_id, cursor=cursor)
        )
        totals = totals.add(
            pages=1,
            listed=plan.listed,
            skipped=plan.skipped,
            to_copy=plan.to_copy,
            bytes_to_copy=plan.bytes_to_copy,
            verified_pages=int(plan.verified),
        )
        work += [] if plan.verified else [plan.page]
        cursor, pages_here = plan.next_cursor, pages_here + 1
        if cursor is None:
            break
        if pages_here % desc.parallel_pages == 0 and (yield from _cancelled(context, state, totals)):
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        if pages_here >= desc.pages_per_execution:
            context.continue_as_new(
                plain(replace(state, cursor=cursor, totals=totals, work=tuple(work), executions=state.executions + 1))
            )
            return None
    check: ChangeCheck = yield activity(context, copy_acts.copy_check_changes, CopyRef(state.run, state.job_id))
    if (yield from _cancelled(context, state, totals)):
        return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
    if not check.cleared:
        return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, changes=check))
    return totals, work


def _cancelled(context: df.DurableOrchestrationContext, state: CopyInput, totals: CopyTotals) -> Gen[bool]:
    """Report the totals; whether the parent asked the pass to stop."""
    report: CopyProgress = yield activity(context, copy_acts.copy_report, CopyReport(state.run, state.job_id, totals))
    return report.cancelled


def _copy_pages(
    context: df.DurableOrchestrationContext,
    state: CopyInput,
    desc: CopyPass,
    work: list[int],
    totals: CopyTotals,
    *,
    verified_pages: int,
) -> Gen[CopyTotals | None]:
    """Start, poll and verify a batch of planned pages (those of `work` have copies to make; verified_pages
    of the batch count as verified once it is done): the new totals, or None when cancelled."""
    run, job_id, filer = state.run, state.job_id, state.run.key

    def page_ref(page: int) -> CopyPageRef:
        return CopyPageRef(run, job_id, page=page)

    progress: dict[int, PageProgress] = {}
    if work:
        started: list[PageProgress] = yield context.task_all(
            [activity(context, copy_acts.copy_start_page, page_ref(page)) for page in work]
        )
        progress = {p.page: p for p in started}
        poll = timedelta(seconds=desc.poll_interval_seconds)
        backstop = now(context) + poll + timedelta(seconds=desc.backstop_seconds)
        while not all(p.done for p in progress.values()):
            report: CopyProgress = yield activity(
                context, copy_acts.copy_report, CopyReport(run, job_id, _live(totals, progress))
            )
            if report.cancelled:
                return None
            if now(context) >= backstop:
                waiting = sorted(k for k, p in progress.items() if not p.done)
                raise CopyFailed(
                    f"copy job {job_id}: pages {waiting} still pending after {backstop}",
                    filer=filer,
                    state=INCOMPLETE,
                    action="check the destination account's copy status, then back up again",
                )
            yield context.create_timer(now(context) + poll)
            polled: list[PageProgress] = yield context.task_all(
                [
                    activity(context, copy_acts.copy_poll_page, page_ref(page))
                    for page, p in progress.items()
                    if not p.done
                ]
            )
            progress.update({p.page: p for p in polled})
        checks: list[PageVerify] = yield context.task_all(
            [activity(context, copy_acts.copy_verify_page, page_ref(page)) for page in work]
        )
        bad = [c for c in checks if not c.verified]
        if bad:
            examples = "; ".join(x for c in bad for x in c.problems[:3])[:600]
            raise CopyFailed(
                f"copy job {job_id}: {len(bad)} page(s) failed verification "
                f"({sum(c.mismatches for c in bad)} mismatches, {sum(c.failed for c in bad)} "
                f"failed copies): {examples}",
                filer=filer,
                state=INCOMPLETE,
                action="read the page problems, then back up again",
            )
    totals = _live(totals, progress, verified_pages=verified_pages)
    report = yield activity(context, copy_acts.copy_report, CopyReport(run, job_id, totals))
    return None if report.cancelled else totals


def _live(totals: CopyTotals, progress: dict[int, PageProgress], verified_pages: int = 0) -> CopyTotals:
    """Totals with the batch's pages folded in (pending: what is still in flight right now)."""
    pages = progress.values()
    done = totals.add(
        copied=sum(p.copied for p in pages),
        bytes_copied=sum(p.bytes for p in pages),
        failed=sum(p.failed for p in pages),
        verified_pages=verified_pages,
        source_changed=sum(p.source_changed for p in pages),
    )
    return replace(done, pending=sum(p.pending + p.todo for p in pages if not p.done))
