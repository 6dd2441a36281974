"""The block engine: synchronous Put Block From URL + Put Block List, re-supplying properties and metadata."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import time
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob._generated.models import SourceModifiedAccessConditions

from shared.blobcopy.copyblob import quoted, settle_failure
from shared.blobcopy.errors import error_code
from shared.blobcopy.pages import COPIED, FAILED, SOURCE_CHANGED, TODO, BlobTask
from shared.blobcopy.session import Session

MAX_BLOCKS = 50_000


class _SourceChanged(Exception):
    """An empty source blob changed or vanished after it was listed."""


class _OutOfTime(Exception):
    """The step's time budget ran out mid-blob: staged blocks stay for the next step to reuse."""


def block_size_for(size: int, preferred: int) -> int:
    """Doubles the preferred block size until the blob fits in 50,000 blocks."""
    block = preferred
    while math.ceil(size / block) > MAX_BLOCKS:
        block *= 2
    return block


def block_ids(job_id: str, etag: str, count: int) -> list[str]:
    """Fixed-length IDs tied to job and source ETag, so a resumed step reuses only blocks of this version."""
    tag = hashlib.sha256(f"{job_id}\n{etag}".encode()).hexdigest()[:16]
    return [base64.b64encode(f"{tag}{i:08d}".encode()).decode("ascii") for i in range(count)]


def _epoch(value: Any) -> float | None:
    return float(value.timestamp()) if value is not None else None


async def copy_blocks(session: Session, tasks: list[BlobTask], budget_seconds: float) -> None:
    """Copy TODO blobs until done or the budget is spent (the rest stays TODO for the next step)."""
    deadline = time.monotonic() + budget_seconds
    slots = asyncio.Semaphore(session.job.concurrency)

    async def one(task: BlobTask) -> None:
        async with slots:
            if session.out_of_time(deadline):
                return
            session.sent += 1
            await copy_one(session, task, deadline)

    await asyncio.gather(*(one(t) for t in tasks if t.status == TODO))


async def copy_one(session: Session, task: BlobTask, deadline: float) -> None:
    entry = task.entry
    if entry.blob_type != "BlockBlob":
        task.status, task.error = FAILED, f"the blocks engine copies block blobs only, not {entry.blob_type}"
        return
    task.tries += 1
    task.started = session.now()
    try:
        result = await _copy(session, task, deadline)
    except _OutOfTime:
        task.tries -= 1  # not an attempt that failed: the budget ended
        return
    except _SourceChanged:
        task.status, task.error = SOURCE_CHANGED, "source changed after it was listed"
        return
    except HttpResponseError as exc:
        await settle_failure(session, task, exc)
        return
    except AzureError as exc:
        await settle_failure(session, task, exc)
        return
    task.status, task.error, task.written_at = COPIED, None, _epoch(result.get("last_modified"))


def _commit_kwargs(task: BlobTask) -> dict[str, Any]:
    entry = task.entry
    kwargs: dict[str, Any] = {
        "content_settings": ContentSettings(**entry.content_settings_kwargs()),
        "metadata": dict(entry.metadata),
    }
    if entry.tier:
        kwargs["standard_blob_tier"] = entry.tier
    return kwargs


async def _copy(session: Session, task: BlobTask, deadline: float) -> dict[str, Any]:
    entry = task.entry
    blob = session.dest.get_blob_client(entry.name)
    source_url = await session.source_url(entry.name)
    if entry.size == 0:
        # Nothing is read from the source, so no source condition guards this copy: check it first.
        current = await session.source_entry(entry.name)
        if current is None or current.etag != entry.etag:
            raise _SourceChanged
        async with session.requests:
            return await blob.commit_block_list([], **_commit_kwargs(task))
    size = block_size_for(entry.size, session.job.block_size)
    if entry.size <= size and not session.no_put_from_url:
        try:
            async with session.requests:
                return await blob.upload_blob_from_url(
                    source_url,
                    overwrite=True,
                    include_source_blob_properties=False,
                    source_etag=quoted(entry.etag),
                    source_match_condition=MatchConditions.IfNotModified,
                    **_commit_kwargs(task),
                )
        except HttpResponseError as exc:
            if exc.status_code != 501:  # Put Blob From URL is missing on Azurite: use blocks there
                raise
            session.no_put_from_url = True
    count = math.ceil(entry.size / size)
    ids = block_ids(session.job.job_id, entry.etag, count)
    staged = await _uncommitted(session, blob)
    condition = SourceModifiedAccessConditions(source_if_match=quoted(entry.etag))

    async def stage(index: int) -> None:
        if ids[index] in staged:
            return
        if session.out_of_time(deadline):
            raise _OutOfTime
        offset = index * size
        async with session.requests:
            await blob.stage_block_from_url(
                ids[index],
                source_url,
                source_offset=offset,
                source_length=min(size, entry.size - offset),
                source_modified_access_conditions=condition,
            )

    await _all(stage(i) for i in range(count))
    async with session.requests:
        return await blob.commit_block_list([BlobBlock(block_id=i) for i in ids], **_commit_kwargs(task))


async def _all(coros: Any) -> None:
    """Run coroutines together; on the first failure cancel the rest and raise it (budget end first)."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as group_error:
        errors = group_error.exceptions
        raise next((e for e in errors if isinstance(e, _OutOfTime)), errors[0]) from None


async def _uncommitted(session: Session, blob: Any) -> set[str]:
    try:
        async with session.requests:
            _, uncommitted = await blob.get_block_list("uncommitted")
    except ResourceNotFoundError:
        return set()
    except HttpResponseError as exc:
        if error_code(exc) in ("BlobNotFound", "ContainerNotFound"):
            return set()
        raise
    return {block.id for block in uncommitted}
