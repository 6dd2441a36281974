"""Mirror deletions under the guard: exact deletes with if_match, or a needs_approval list in the catalog."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError

from shared.blobcopy.copyblob import quoted
from shared.blobcopy.errors import CopyError, CopyInputError, describe_http_error, error_code
from shared.blobcopy.model import DeleteReport
from shared.blobcopy.session import Session
from shared.blobcopy.state import (
    applied_path,
    approval_part_path,
    approval_ref,
    pack,
    unpack,
)

DELETED, MISSING, CHANGED = "deleted", "missing", "changed"


async def delete_exact(session: Session, items: list[list[Any]]) -> Counter[str]:
    """Delete each [name, etag] only if the destination blob still has that ETag."""

    async def one(name: str, etag: str) -> str:
        try:
            async with session.requests:
                blob = session.dest.get_blob_client(name)
                await blob.delete_blob(etag=quoted(etag), match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            return MISSING
        except ResourceModifiedError:
            return CHANGED
        except HttpResponseError as exc:
            if error_code(exc) == "ConditionNotMet" or exc.status_code == 412:
                return CHANGED
            raise CopyError(
                f"deleting from {session.job.dest.container!r} failed: {describe_http_error(exc)}"
            ) from None
        return DELETED

    results = await asyncio.gather(*(one(item[0], item[1]) for item in items))
    return Counter(results)


async def write_approval_part(session: Session, page: int, items: list[list[Any]]) -> None:
    """The exact list (name, destination ETag) an approval would delete, one part per page."""
    await session.store.write(
        approval_part_path(session.job.job_id, page),
        pack([[item[0], item[1]] for item in items]),
        {"count": len(items)},
    )


async def apply_approved(session: Session, ref: str) -> DeleteReport:
    """Apply exactly the listed deletes (each with if_match); idempotent: a rerun returns the first result."""
    job_id = session.job.job_id
    if ref != approval_ref(job_id):
        raise CopyInputError(f"approval {ref!r} does not belong to job {job_id!r}")
    done = await session.store.read(applied_path(job_id))
    if done is not None:
        return DeleteReport.from_json(unpack(done))
    parts = [path async for path, _ in session.store.summaries(f"{ref}/deletes-")]
    if not parts:
        raise CopyInputError(f"no approval list at {ref!r}")
    totals: Counter[str] = Counter()
    for path in sorted(parts):
        data = await session.store.read(path)
        if data is None:
            raise CopyError(f"approval list part {path!r} vanished")
        totals.update(await delete_exact(session, unpack(data)))
    report = DeleteReport(approval_ref=ref, deleted=totals[DELETED], missing=totals[MISSING], changed=totals[CHANGED])
    await session.store.write(applied_path(job_id), pack(report.to_json()))
    return report
