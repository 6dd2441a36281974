"""The plain driver: the same steps the workflow runs, in a loop, for the CLI and the bench."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from shared.blobcopy.changes import ChangesNotCleared, check_changes
from shared.blobcopy.model import CopyJob, PageCursor, PagePlan, Summary
from shared.blobcopy.session import ClientPool, CopyEnv
from shared.blobcopy.steps import finish, plan_page, poll_page, start_page, verify_page

Progress = Callable[[dict[str, Any]], None]


async def copy_container_async(
    job: CopyJob | dict[str, Any],
    env: CopyEnv,
    *,
    poll_interval: float = 2.0,
    parallel_pages: int = 4,
    progress: Progress | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Summary:
    """Plan pages in order (each needs the previous cursor) while up to parallel_pages pages copy,
    poll and verify; then finish. All requests share one limit of job.concurrency in flight. A job that
    guards changes plans every page first and copies only once the change guard cleared the pass
    (ChangesNotCleared when it holds it: nothing was overwritten)."""
    job = CopyJob.from_json(job).validate()
    pool = ClientPool(env.connect, job.concurrency * parallel_pages + 8) if env.pool is None else None
    env = dataclasses.replace(env, limiter=env.limiter or asyncio.Semaphore(job.concurrency), pool=env.pool or pool)
    try:
        return await _drive(
            job, env, poll_interval=poll_interval, parallel_pages=parallel_pages, progress=progress, sleep=sleep
        )
    finally:
        if pool is not None:
            await pool.aclose()


async def _drive(
    job: CopyJob,
    env: CopyEnv,
    *,
    poll_interval: float,
    parallel_pages: int,
    progress: Progress | None,
    sleep: Callable[[float], Awaitable[Any]],
) -> Summary:
    slots = asyncio.Semaphore(parallel_pages)
    report = progress or (lambda event: None)

    async def run(plan: PagePlan) -> None:
        try:
            if plan.verified:
                report({"event": "verified", "page": plan.page, "verified": True})
                return
            state = await start_page(job, plan.page, env)
            report({"event": "started", **plan.to_json(), **state.to_json()})
            while not state.done:
                await sleep(poll_interval)
                state = await poll_page(job, plan.page, env)
                report({"event": "polled", **state.to_json()})
            result = await verify_page(job, plan.page, env)
            report({"event": "verified", **result.to_json()})
        finally:
            slots.release()

    running: list[asyncio.Task[None]] = []
    held: list[PagePlan] = []  # with the change guard: every page is planned before any copy starts
    cursor: PageCursor | None = None
    try:
        while True:
            await slots.acquire()
            try:
                plan = await plan_page(job, cursor, env)
            except BaseException:
                slots.release()
                raise
            report({"event": "planned", **plan.to_json()})
            if job.guard.guards_changes:
                held.append(plan)
                slots.release()
            else:
                running.append(asyncio.create_task(run(plan)))
            if plan.next_cursor is None:
                break
            cursor = plan.next_cursor
        if held:
            await _cleared(job, env, report)
            for plan in held:
                await slots.acquire()
                running.append(asyncio.create_task(run(plan)))
        await asyncio.gather(*running)
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    summary = await finish(job, env)
    report({"event": "finished", **summary.to_json()})
    return summary


async def _cleared(job: CopyJob, env: CopyEnv, report: Progress) -> None:
    """The change guard's check of a planned pass; ChangesNotCleared when it holds the pass."""
    check = await check_changes(job, env)
    report({"event": "changes", **check.to_json()})
    if not check.cleared:
        raise ChangesNotCleared(
            f"job {job.job_id} would overwrite {check.changes} of the {check.base} blobs its "
            f"destination holds (limit {check.limit}): held for approval "
            f"({check.approval_ref}); nothing was overwritten"
        )


def copy_container(job: CopyJob | dict[str, Any], env: CopyEnv, **kwargs: Any) -> Summary:
    """Synchronous wrapper of copy_container_async (its own event loop)."""
    return asyncio.run(copy_container_async(job, env, **kwargs))
