"""The copy as idempotent steps a Durable orchestrator (or the plain driver) calls page by page."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from shared.blobcopy import blocks, copyblob
from shared.blobcopy.changes import require_clearance
from shared.blobcopy.decisions import decide
from shared.blobcopy.errors import CopyInputError, NotReady, SourceUnreachable, describe_http_error
from shared.blobcopy.listing import list_source_page, range_map
from shared.blobcopy.manifest import manifest_entries, write_index, write_manifest_page
from shared.blobcopy.mirror import apply_approved, delete_exact, write_approval_part
from shared.blobcopy.model import (
    CopyJob,
    DeleteReport,
    PageCursor,
    PagePlan,
    PageProgress,
    PageVerify,
    Summary,
)
from shared.blobcopy.pages import (
    COPIED,
    FAILED,
    PENDING,
    PLANNED,
    SKIPPED,
    SOURCE_CHANGED,
    TODO,
    UNVERIFIED,
    VERIFIED,
    PageState,
    load_page,
    save_page,
    try_load_page,
)
from shared.blobcopy.session import DEST_INCLUDE, CopyEnv, Session
from shared.blobcopy.state import approval_ref, pack, page_number, state_prefix, summary_path, unpack
from shared.blobcopy.verify import MAX_PROBLEMS, verify_copied


def _job(job: CopyJob | dict[str, Any]) -> CopyJob:
    return CopyJob.from_json(job).validate()


def dest_label(job: CopyJob) -> str:
    return f"{job.dest.account.name}/{job.dest.container}"


# --- plan ------------------------------------------------------------------------------------------------
async def plan_page(
    job: CopyJob | dict[str, Any], cursor: PageCursor | dict[str, Any] | None, env: CopyEnv
) -> PagePlan:
    """List one page of the source and decide, per blob, copy or skip (and, for mirror, what to delete).
    The page's state goes to the catalog; the report is small. Re-running with the same cursor returns
    the stored plan."""
    job = _job(job)
    cursor = PageCursor.from_json(cursor) if cursor is not None else PageCursor()
    async with Session(job, env) as s:
        # Three independent reads at once: a stored plan (redelivery), the source page, and the previous
        # manifest's page where this one starts (the listing decides if more is needed).
        reader = await s.reader(job.previous_manifest) if job.previous_manifest and job.mode != "full" else None
        existing, (entries, token), _ = await asyncio.gather(
            try_load_page(s.store, job.job_id, cursor.page),
            list_source_page(s.source, job.page_size, cursor.token),
            reader.prefetch(cursor.after) if reader else asyncio.sleep(0),
        )
        if existing is not None:
            if existing.cursor != cursor:
                raise CopyInputError(f"job {job.job_id}: page {cursor.page} was planned from another cursor")
            return _plan_report(existing)
        lower = cursor.after
        upper = (entries[-1].name if entries else lower) if token else None
        previous = exempt = None
        if reader is not None and job.previous_manifest:
            _same_dest(job, reader.index.info, job.previous_manifest)
            previous = await reader.entries_in(lower, upper)
        if job.precopy_manifest:
            reader = await s.reader(job.precopy_manifest)
            _same_dest(job, reader.index.info, job.precopy_manifest)
            exempt = await reader.entries_in(lower, upper)
        if cursor.page == 0:  # only now that the inputs proved good: bad input changes nothing
            await _ensure_dest(s)
        dest = None
        if job.mode == "mirror" or (previous is None and (job.mode != "full" or job.guard.guards_changes)):
            dest = await range_map(s.dest, lower, upper, include=DEST_INCLUDE)
        decisions = await asyncio.to_thread(decide, entries, job.mode, previous, dest, exempt)
        state = PageState(
            job_id=job.job_id,
            page=cursor.page,
            cursor=cursor,
            next_cursor=PageCursor(cursor.page + 1, token, upper) if token else None,
            lower=lower,
            upper=upper,
            tasks=decisions.tasks,
            deletes=decisions.deletes,
            dest_counted=decisions.dest_counted,
            existing=decisions.existing,
        )
        if state.open_tasks():
            await save_page(s.store, state)
        else:  # nothing to copy (an unchanged re-backup): the page verifies now, saving three steps
            await _conclude(s, state)
        return _plan_report(state)


def _same_dest(job: CopyJob, info: dict[str, Any], manifest: str) -> None:
    if info.get("dest") != dest_label(job):
        raise CopyInputError(f"manifest {manifest!r} describes {info.get('dest')!r}, not {dest_label(job)!r}")


async def _ensure_dest(s: Session) -> None:
    """Create the destination container if missing. Probing with a one-blob listing works with a
    container-scoped SAS too (which may list but never create)."""
    try:
        pager = s.dest.list_blobs(results_per_page=1).by_page()
        await pager.__anext__()
        return
    except ResourceNotFoundError:
        pass
    except StopAsyncIteration:
        return
    except (HttpResponseError, ServiceRequestError) as exc:
        raise SourceUnreachable(
            f"destination container {s.job.dest.container!r} is not reachable: {describe_http_error(exc)}"
        ) from None
    try:
        await s.dest.create_container()
    except ResourceExistsError:
        pass
    except (HttpResponseError, ServiceRequestError) as exc:
        raise SourceUnreachable(
            f"destination container {s.job.dest.container!r} is not reachable: {describe_http_error(exc)}"
        ) from None


def _plan_report(state: PageState) -> PagePlan:
    to_copy = [t for t in state.tasks if t.status != SKIPPED]
    return PagePlan(
        job_id=state.job_id,
        page=state.page,
        listed=len(state.tasks),
        to_copy=len(to_copy),
        bytes_to_copy=sum(t.entry.size for t in to_copy),
        skipped=len(state.tasks) - len(to_copy),
        delete_candidates=len(state.deletes),
        next_cursor=state.next_cursor,
        verified=state.status == VERIFIED,
        changes=state.overwrites(),
    )


# --- copy ------------------------------------------------------------------------------------------------
def _progress(state: PageState) -> PageProgress:
    counts = state.counts()
    return PageProgress(
        page=state.page,
        done=not (counts[TODO] or counts[PENDING]),
        pending=counts[PENDING],
        todo=counts[TODO],
        copied=counts[COPIED],
        failed=counts[FAILED],
        source_changed=counts[SOURCE_CHANGED],
        bytes=state.bytes_with(COPIED),
    )


async def _advance(s: Session, state: PageState) -> None:
    if s.job.engine == "blocks":
        await blocks.copy_blocks(s, state.tasks, s.job.step_budget_seconds)
    else:
        await copyblob.poll_copies(s, state.tasks)  # pending ones first, then (re)starts of todo ones


async def _settle(s: Session, state: PageState) -> None:
    """Save the page; once no copy is open, verify it right away (verify_page then returns that result),
    which saves a round of reading and writing the page state."""
    if state.open_tasks():
        await save_page(s.store, state)
    else:
        await _conclude(s, state)


async def start_page(job: CopyJob | dict[str, Any], page: int, env: CopyEnv) -> PageProgress:
    """Start the page's copies (blocks engine: copy within the step's time budget)."""
    job = _job(job)
    async with Session(job, env) as s:
        state = await load_page(s.store, job.job_id, page)
        if state.status == PLANNED and state.open_tasks():
            await require_clearance(s, state)
            if job.engine == "blocks":
                await blocks.copy_blocks(s, state.tasks, job.step_budget_seconds)
            else:
                await copyblob.start_copies(s, state.tasks)
            await _settle(s, state)
        return _progress(state)


async def poll_page(job: CopyJob | dict[str, Any], page: int, env: CopyEnv) -> PageProgress:
    """Poll pending copies (one destination listing), restart failed/aborted ones, report progress."""
    job = _job(job)
    async with Session(job, env) as s:
        state = await load_page(s.store, job.job_id, page)
        if state.status == PLANNED and state.open_tasks():
            await require_clearance(s, state)
            await _advance(s, state)
            await _settle(s, state)
        return _progress(state)


# --- verify ----------------------------------------------------------------------------------------------
def _verify_report(state: PageState) -> PageVerify:
    counts = state.counts()
    return PageVerify(
        page=state.page,
        verified=state.status == VERIFIED,
        checked=counts[COPIED],
        mismatches=state.mismatches,
        bytes=state.bytes_with(COPIED),
        failed=counts[FAILED],
        source_changed=counts[SOURCE_CHANGED],
        problems=tuple(state.problems),
    )


async def verify_page(job: CopyJob | dict[str, Any], page: int, env: CopyEnv) -> PageVerify:
    """Check every copied blob against its source listing; a verified page adds its manifest page.
    Failed copies, mismatches, or (outside precopy) changed sources leave the page unverified."""
    job = _job(job)
    async with Session(job, env) as s:
        state = await load_page(s.store, job.job_id, page)
        if state.status in (VERIFIED, UNVERIFIED):
            return _verify_report(state)
        if state.open_tasks():
            raise NotReady(f"job {job.job_id}: page {page} still has {len(state.open_tasks())} copies open")
        await _conclude(s, state)
        return _verify_report(state)


async def _conclude(s: Session, state: PageState) -> None:
    """Verify the copied blobs; a verified page adds its manifest page. Saves the page state."""
    problems = await verify_copied(s, [t for t in state.tasks if t.status == COPIED])
    counts = state.counts()
    state.mismatches = len(problems)
    state.problems = problems[:MAX_PROBLEMS]
    state.problems += [
        f"{t.entry.name}: {t.status}" + (f" ({t.error})" if t.error else "")
        for t in state.tasks
        if t.status in (FAILED, SOURCE_CHANGED)
    ][: MAX_PROBLEMS - len(state.problems)]
    ok = not problems and not counts[FAILED] and (s.job.mode == "precopy" or not counts[SOURCE_CHANGED])
    state.status = VERIFIED if ok else UNVERIFIED
    if not ok:
        await save_page(s.store, state)
        return
    entries = await asyncio.to_thread(manifest_entries, state.tasks)  # a digest per blob: CPU
    # The manifest page and the page state are independent blobs: write both at once.
    await asyncio.gather(
        save_page(s.store, state),
        write_manifest_page(
            s.store,
            s.job.job_id,
            state.page,
            entries,
            lower=state.lower,
            upper=state.upper,
            excluded=counts[SOURCE_CHANGED],
        ),
    )


# --- finish ----------------------------------------------------------------------------------------------
async def finish(job: CopyJob | dict[str, Any], env: CopyEnv) -> Summary:
    """After the last page: totals; for a verified mirror, deletes under the guard or a needs_approval
    list; then the manifest index (written last). Re-running returns the stored summary."""
    job = _job(job)
    async with Session(job, env) as s:
        stored = await s.store.read(summary_path(job.job_id))
        if stored is not None:
            return Summary.from_json(unpack(stored))
        pages: dict[int, dict[str, Any]] = {}
        async for path, summary in s.store.summaries(state_prefix(job.job_id)):
            pages[page_number(path)] = summary
        final = [n for n, p in pages.items() if p.get("final")]
        expected = final[0] + 1 if final else None
        complete = expected is not None and sorted(pages) == list(range(expected))
        verified = complete and all(p.get("st") == VERIFIED for p in pages.values())
        totals: Counter[str] = Counter()
        for p in pages.values():
            totals.update(
                {
                    k: int(p.get(k, 0))
                    for k in (
                        "listed",
                        "copied",
                        "skipped",
                        "failed",
                        "sc",
                        "bytes",
                        "mm",
                        "del",
                        "delc",
                        "dest",
                        "open",
                        "ow",
                        "ex",
                    )
                }
            )
        deleted, needs_approval, ref = 0, False, None
        limit = job.guard.limit(totals["dest"])
        if job.mode == "mirror" and verified and totals["del"]:
            needs_approval = totals["delc"] > limit
            for number in sorted(n for n, p in pages.items() if p.get("del")):
                state = await load_page(s.store, job.job_id, number)
                if needs_approval:
                    await write_approval_part(s, number, state.deletes)
                else:
                    deleted += (await delete_exact(s, state.deletes))["deleted"]
            ref = approval_ref(job.job_id) if needs_approval else None
        index = await write_index(s.store, job.job_id, expected or 0, _manifest_info(job), env.clock)
        result = Summary(
            job_id=job.job_id,
            mode=job.mode,
            pages=len(pages),
            listed=totals["listed"],
            copied=totals["copied"],
            skipped=totals["skipped"],
            failed=totals["failed"] + totals["open"],
            source_changed=totals["sc"],
            bytes_copied=totals["bytes"],
            verified=verified,
            mismatches=totals["mm"],
            deleted=deleted,
            delete_candidates=totals["del"],
            needs_approval=needs_approval,
            approval_ref=ref,
            manifest_state=index.state,
            guard_counted=totals["delc"],
            guard_limit=limit,
            guard_dest_total=totals["dest"],
            changes=totals["ow"],
            change_base=totals["ex"],
        )
        await s.store.write(summary_path(job.job_id), pack(result.to_json()))
        return result


def _manifest_info(job: CopyJob) -> dict[str, Any]:
    return {
        "dest": dest_label(job),
        "source": f"{job.source.account.name}/{job.source.container}",
        "mode": job.mode,
        "engine": job.engine,
        "written": time.time(),
    }


async def apply_deletes(job: CopyJob | dict[str, Any], ref: str, env: CopyEnv) -> DeleteReport:
    """Apply an approved needs_approval list exactly: each delete with if_match on its recorded ETag."""
    job = _job(job)
    async with Session(job, env) as s:
        return await apply_approved(s, ref)
