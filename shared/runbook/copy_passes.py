"""The copy activities' steps for a run's pass: each names its run and pass (CopyRef, CopyPageRef), and the job
is rebuilt here, every time, from the run's plan snapshot and the generation the catalog reserved (`writing`) for
that very run (shared/runbook/copy.py describes the jobs). A drill run's one pass is its scratch copy
(shared/runbook/drill_steps.py): a full copy of the drilled backup into the drill's scratch container.
"""

from __future__ import annotations

import time

from shared.blobcopy import changes, steps
from shared.blobcopy.errors import CopyInputError
from shared.blobcopy.model import ChangeCheck, CopyJob, DeleteReport, PagePlan, PageProgress, PageVerify, Summary
from shared.blobcopy.state import StateStore, pack, unpack
from shared.core.errors import InputRefused
from shared.runbook import services
from shared.runbook.copy import _run, _with_store, backup_jobs, pass_ids
from shared.runbook.drill_steps import scratch_job
from shared.runbook.payloads import (
    CopyPageRef,
    CopyPass,
    CopyProgress,
    CopyRef,
    CopyReport,
    CopyTotals,
    RunContext,
)
from shared.runbook.refs import BACKUP_KINDS, RunRef
from shared.runbook.runs import load_run, reserved_target

POLL_BACKSTOP_FACTOR = 4


def resolve(run: RunRef, job_id: str) -> tuple[RunContext, CopyJob]:
    """The job `job_id` of backup run `run`, rebuilt from the run's snapshot and the generation the catalog
    reserved for it (of a drill run: its scratch copy, from its drill record); InputRefused when the run, its
    generation or the pass does not check out."""
    snapshot = load_run(run, *BACKUP_KINDS, "drill")
    if snapshot.kind == "drill":
        return scratch_job(run, job_id)
    ctx = snapshot.context()
    with services.open_catalog(ctx) as catalog:
        state = catalog.load(ctx.filer)
    target = reserved_target(state, run.run_id, ctx.filer.key)
    for job in backup_jobs(ctx, target):
        if job is not None and job.job_id == job_id:
            return ctx, job
    passes = " and ".join(i for i in pass_ids(ctx, target) if i)
    raise InputRefused(
        f"copy job {job_id[:100]!r} is not a pass of backup {run.run_id} (its passes: {passes})", filer=ctx.filer.key
    )


def describe(request: CopyRef) -> CopyPass:
    """The pass as resolved, and the plan's pacing for the copy orchestration."""
    ctx, job = resolve(request.run, request.job_id)
    return CopyPass(
        job_id=job.job_id,
        mode=job.mode,
        dest=f"{job.dest.account.name}/{job.dest.container}",
        poll_interval_seconds=ctx.copy.poll_interval_seconds,
        parallel_pages=ctx.copy.parallel_pages,
        pages_per_execution=ctx.copy.pages_per_execution,
        backstop_seconds=job.pending_limit_seconds * job.max_attempts * POLL_BACKSTOP_FACTOR,
        guards_changes=job.guard.guards_changes,
    )


def _job(request: CopyRef | CopyPageRef | CopyReport) -> CopyJob:
    return resolve(request.run, request.job_id)[1]


def plan_page(request: CopyPageRef) -> PagePlan:
    job = _job(request)
    return _run(lambda: steps.plan_page(job, request.cursor, services.copy_env()))


def start_page(request: CopyPageRef) -> PageProgress:
    job = _job(request)
    return _run(lambda: steps.start_page(job, request.page, services.copy_env()))


def poll_page(request: CopyPageRef) -> PageProgress:
    job = _job(request)
    return _run(lambda: steps.poll_page(job, request.page, services.copy_env()))


def verify_page(request: CopyPageRef) -> PageVerify:
    job = _job(request)
    return _run(lambda: steps.verify_page(job, request.page, services.copy_env()))


def finish(request: CopyRef) -> Summary:
    job = _job(request)
    return _run(lambda: steps.finish(job, services.copy_env()))


def check_changes(request: CopyRef) -> ChangeCheck:
    """The change guard, once every page of the pass is planned: cleared, or held for approval."""
    job = _job(request)
    return _run(lambda: changes.check_changes(job, services.copy_env()))


def approve_changes(request: CopyRef) -> ChangeCheck:
    """An approved hold: the pass may overwrite what it planned (the approval_ref must name its change check)."""
    if not request.approval_ref:
        raise CopyInputError(
            f"job {request.job_id[:100]}: approving its overwrites needs the approval_ref of its change check"
        )
    job, ref = _job(request), request.approval_ref
    return _run(lambda: changes.approve_changes(job, ref, services.copy_env()))


def apply_deletes(request: CopyRef) -> DeleteReport:
    if not request.approval_ref:
        raise CopyInputError(
            f"job {request.job_id[:100]}: applying deletes needs the approval_ref of its needs_approval list"
        )
    job, ref = _job(request), request.approval_ref
    return _run(lambda: steps.apply_deletes(job, ref, services.copy_env()))


# --- progress and cancellation, beside the job's state -----------------------------------------------------
def _progress_path(job_id: str) -> str:
    return f"{job_id}/progress.json.gz"


def _cancel_path(job_id: str) -> str:
    return f"{job_id}/cancel.json.gz"


def report(request: CopyReport) -> CopyProgress:
    """Record a pass's totals next to its job; say whether someone asked it to stop."""
    job = _job(request)

    async def work(store: StateStore) -> CopyProgress:
        body = {"totals": CopyTotals.to_json(request.totals), "finished": request.finished, "at": services.now()}
        await store.write(_progress_path(job.job_id), pack(body), {"finished": request.finished})
        cancelled = await store.exists(_cancel_path(job.job_id))
        return CopyProgress(totals=request.totals, finished=request.finished, cancelled=cancelled)

    return _run(lambda: _with_store(job.catalog, work))


def progress(request: CopyRef) -> CopyProgress:
    job = _job(request)

    async def work(store: StateStore) -> CopyProgress:
        data = await store.read(_progress_path(job.job_id))
        cancelled = await store.exists(_cancel_path(job.job_id))
        if data is None:
            return CopyProgress(totals=CopyTotals(), finished=False, cancelled=cancelled)
        body = unpack(data)
        return CopyProgress(
            totals=CopyTotals.from_json(body["totals"]), finished=bool(body["finished"]), cancelled=cancelled
        )

    return _run(lambda: _with_store(job.catalog, work))


def cancel(request: CopyRef) -> None:
    job = _job(request)

    async def work(store: StateStore) -> None:
        await store.write(_cancel_path(job.job_id), pack({"at": services.now(), "wall": time.time()}))

    _run(lambda: _with_store(job.catalog, work))
