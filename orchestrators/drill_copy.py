"""The drill's scratch copy: the copy engine's full mode, page by page, from the drilled backup container into the
drill's scratch container in the same account, with history kept bounded (continue_as_new every
`pages_per_execution` pages). Its input names the drill only; each activity resolves the containers from the plan
and the drill record. The drill stops it through the engine's cancel marker (`drill_copy_cancel`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities import drill as drill_acts
from orchestrators.durable_helpers import Gen, activity, now
from shared.blobcopy.model import PagePlan, PageProgress, PageVerify, Summary
from shared.core.codec import decode, plain
from shared.core.errors import CopyFailed
from shared.runbook.drill_payloads import DrillCopyInput, DrillCopyReport, DrillPage
from shared.runbook.payloads import CopyOutcome, CopyProgress, CopyTotals

bp = df.Blueprint()

# The engine bounds pending copies itself; this only stops a page that never reports done.
POLL_BACKSTOP = timedelta(hours=6)
STATE = "the scratch copy is incomplete; the backup container is untouched"


@bp.orchestration_trigger(context_name="context")
def drill_copy_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    state = decode(DrillCopyInput, context.get_input())
    ref = state.ref
    cursor, totals = state.cursor, state.totals
    pages_here = 0
    listing_done = False
    while not listing_done:
        plans: list[PagePlan] = []
        while len(plans) < state.parallel_pages:
            plan: PagePlan = yield activity(context, drill_acts.drill_copy_plan_page, DrillPage(ref, cursor=cursor))
            plans.append(plan)
            cursor = plan.next_cursor
            if cursor is None:
                listing_done = True
                break
        totals = totals.add(pages=len(plans), listed=sum(p.listed for p in plans),
                            skipped=sum(p.skipped for p in plans), to_copy=sum(p.to_copy for p in plans),
                            bytes_to_copy=sum(p.bytes_to_copy for p in plans))
        copied = yield from _copy_pages(context, state, plans, totals)
        if copied is None:
            return CopyOutcome.to_json(CopyOutcome(summary=None, totals=totals, cancelled=True))
        totals = copied
        pages_here += len(plans)
        if not listing_done and pages_here >= state.pages_per_execution:
            context.continue_as_new(plain(replace(state, cursor=cursor, totals=totals,
                                                  executions=state.executions + 1)))
            return None
    summary: Summary = yield activity(context, drill_acts.drill_copy_finish, ref)
    yield activity(context, drill_acts.drill_copy_report, DrillCopyReport(ref, totals, finished=True))
    return CopyOutcome.to_json(CopyOutcome(summary=summary, totals=totals))


def _copy_pages(context: df.DurableOrchestrationContext, state: DrillCopyInput, plans: list[PagePlan],
                totals: CopyTotals) -> Gen[CopyTotals | None]:
    """Start, poll and verify a batch of planned pages: the new totals, or None when the drill cancelled it."""
    ref = state.ref
    work = [p.page for p in plans if not p.verified]
    progress: dict[int, PageProgress] = {}
    if work:
        started: list[PageProgress] = yield context.task_all([
            activity(context, drill_acts.drill_copy_start_page, DrillPage(ref, page=page)) for page in work])
        progress = {p.page: p for p in started}
        backstop = now(context) + POLL_BACKSTOP
        while not all(p.done for p in progress.values()):
            report: CopyProgress = yield activity(context, drill_acts.drill_copy_report,
                                                  DrillCopyReport(ref, _live(totals, progress)))
            if report.cancelled:
                return None
            if now(context) >= backstop:
                waiting = sorted(k for k, p in progress.items() if not p.done)
                raise CopyFailed(f"scratch copy of drill {ref.drill_id}: pages {waiting} still pending after "
                                 f"{POLL_BACKSTOP}", filer=ref.key, state=STATE,
                                 action="check the backup account's copy status, then drill again")
            yield context.create_timer(now(context) + timedelta(seconds=state.poll_interval_seconds))
            polled: list[PageProgress] = yield context.task_all([
                activity(context, drill_acts.drill_copy_poll_page, DrillPage(ref, page=page))
                for page, p in progress.items() if not p.done])
            progress.update({p.page: p for p in polled})
        checks: list[PageVerify] = yield context.task_all([
            activity(context, drill_acts.drill_copy_verify_page, DrillPage(ref, page=page)) for page in work])
        bad = [c for c in checks if not c.verified]
        if bad:
            examples = "; ".join(x for c in bad for x in c.problems[:3])[:600]
            raise CopyFailed(f"scratch copy of drill {ref.drill_id}: {len(bad)} page(s) failed verification: "
                             f"{examples}", filer=ref.key, state=STATE, action="read the page problems, then drill "
                             "again")
    totals = _live(totals, progress, verified_pages=len(plans))
    report = yield activity(context, drill_acts.drill_copy_report, DrillCopyReport(ref, totals))
    return None if report.cancelled else totals


def _live(totals: CopyTotals, progress: dict[int, PageProgress], verified_pages: int = 0) -> CopyTotals:
    pages = progress.values()
    done = totals.add(copied=sum(p.copied for p in pages), bytes_copied=sum(p.bytes for p in pages),
                      failed=sum(p.failed for p in pages), verified_pages=verified_pages,
                      source_changed=sum(p.source_changed for p in pages))
    return replace(done, pending=sum(p.pending + p.todo for p in pages if not p.done))
