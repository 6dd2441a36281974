"""The Copy Blob engine: start server-side copies (source ETag as a condition), poll, abort and restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError

from shared.blobcopy.errors import describe_http_error, error_code
from shared.blobcopy.pages import COPIED, FAILED, PENDING, SOURCE_CHANGED, TODO, BlobTask
from shared.blobcopy.session import Session

# Errors no retry will fix: the destination refuses (lease, bad request) or cannot read the source (auth).
_PERMANENT_STATUSES = {400, 401, 403, 405, 411, 413, 416}
_SOURCE_GONE_CODES = {"SourceConditionNotMet", "BlobNotFound", "CannotVerifyCopySource"}


def quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _epoch(value: Any) -> float | None:
    return float(value.timestamp()) if value is not None else None


async def settle_failure(session: Session, task: BlobTask, exc: BaseException) -> None:
    """Classify a failed attempt: source changed (ETag condition / gone), retry later, or failed."""
    code = error_code(exc)
    status = getattr(exc, "status_code", None)
    if (code in _SOURCE_GONE_CODES or status == 412) and (
        code == "SourceConditionNotMet" or await _source_changed(session, task)
    ):
        task.status, task.error = SOURCE_CHANGED, "source changed after it was listed"
        return
    task.error = describe_http_error(exc)
    permanent = status in _PERMANENT_STATUSES or (status in (404, 409, 412) and code != "PendingCopyOperation")
    task.status = FAILED if permanent or task.tries >= session.job.max_attempts else TODO


async def _source_changed(session: Session, task: BlobTask) -> bool:
    current = await session.source_entry(task.entry.name)
    return current is None or current.etag != task.entry.etag


async def start_one(session: Session, task: BlobTask, deadline: float | None = None) -> None:
    """Start (or restart) the server-side copy of one blob; the result lands in task. Past the deadline
    (the step's time budget) the blob stays "todo" for the next poll step."""
    kwargs: dict[str, Any] = {
        "source_etag": quoted(task.entry.etag),
        "source_match_condition": MatchConditions.IfNotModified,
    }
    if task.entry.tier:
        kwargs["standard_blob_tier"] = task.entry.tier
    try:
        async with session.requests:
            if session.out_of_time(deadline):
                return
            session.sent += 1
            # Everything per blob happens inside the slot: thousands of tasks start at once, and building
            # their clients up front would stall the loop before the first request goes out.
            task.tries += 1
            task.started = session.now()
            task.copy_id = None
            blob = session.dest.get_blob_client(task.entry.name)
            result = await blob.start_copy_from_url(await session.source_url(task.entry.name), **kwargs)
    except HttpResponseError as exc:
        if error_code(exc) == "PendingCopyOperation" and await _adopt_pending(session, task):
            return
        await settle_failure(session, task, exc)
        return
    except AzureError as exc:
        await settle_failure(session, task, exc)
        return
    task.copy_id = result.get("copy_id")
    task.error = None
    if result.get("copy_status") == "success":
        task.status, task.written_at = COPIED, _epoch(result.get("last_modified"))
    else:
        task.status = PENDING


async def _adopt_pending(session: Session, task: BlobTask) -> bool:
    """A copy already pends on the destination (this step ran before and crashed after starting it):
    poll that one instead of starting another (Azure allows one pending copy per blob)."""
    view = await session.dest_view([task.entry.name])
    entry = view.get(task.entry.name)
    if entry is None or entry.copy_status != "pending" or not entry.copy_id:
        return False
    task.status, task.copy_id = PENDING, entry.copy_id
    return True


async def start_copies(session: Session, tasks: list[BlobTask]) -> None:
    deadline = time.monotonic() + session.job.step_budget_seconds
    await asyncio.gather(*(start_one(session, t, deadline) for t in tasks if t.status == TODO))


async def poll_copies(session: Session, tasks: list[BlobTask]) -> None:
    """Poll pending copies with one destination lookup, then finish, abort or restart each."""
    pending = [t for t in tasks if t.status == PENDING]
    view = await session.dest_view([t.entry.name for t in pending])
    limit = session.job.pending_limit_seconds
    to_abort: list[BlobTask] = []
    for task in pending:
        entry = view.get(task.entry.name)
        if entry is None or (task.copy_id and entry.copy_id != task.copy_id):
            _retry_or_fail(session, task, "destination no longer holds this copy")
        elif entry.copy_status == "success":
            task.status, task.written_at, task.error = COPIED, entry.written_at(), None
        elif entry.copy_status == "pending":
            if session.now() - (task.started or session.now()) > limit:
                to_abort.append(task)
        else:
            _retry_or_fail(session, task, f"copy {entry.copy_status or 'lost its status'}")
    await asyncio.gather(*(_abort(session, t) for t in to_abort))
    await start_copies(session, [t for t in tasks if t.status == TODO])


def _retry_or_fail(session: Session, task: BlobTask, why: str) -> None:
    task.error = why
    task.status = FAILED if task.tries >= session.job.max_attempts else TODO


async def _abort(session: Session, task: BlobTask) -> None:
    """A copy pending past the limit is aborted and restarted (bounded by max_attempts)."""
    blob = session.dest.get_blob_client(task.entry.name)
    try:
        async with session.requests:
            await blob.abort_copy(task.copy_id)
    except HttpResponseError as exc:
        # NoPendingCopyOperation: it finished meanwhile, and restarting is still safe. Anything else is
        # reported with the restart, which replaces the copy anyway.
        if error_code(exc) != "NoPendingCopyOperation":
            _retry_or_fail(session, task, f"abort after the pending limit failed: {describe_http_error(exc)}")
            return
    _retry_or_fail(session, task, f"pending longer than {session.job.pending_limit_seconds:g}s; aborted")
