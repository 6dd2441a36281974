"""The change guard (the delete guard's twin, against mass overwrites such as ransomware): a pass whose jobs guard
changes overwrites a destination blob only once the whole pass is planned and cleared.

Planning marks every task that would overwrite a blob the destination holds (`BlobTask.over`) and counts the
blobs the destination held (`PageState.existing`). `check_changes`, after the last page is planned, adds them up
(with the same run's precopy, whose overwrites count too unless an operator approved them) and clears the pass
when the overwrites are within max(min_count, max_change_fraction * held); above that it holds the pass until
`approve_changes` names its reference. `require_clearance` is what start and poll steps call: without a
clearance on record they refuse to start an overwrite, whoever calls them.
"""

from __future__ import annotations

from typing import Any

from shared.blobcopy.errors import CopyInputError, NotReady
from shared.blobcopy.model import ChangeCheck, CopyJob, Summary
from shared.blobcopy.pages import PageState
from shared.blobcopy.session import CopyEnv, Session
from shared.blobcopy.state import pack, page_number, state_prefix, summary_path, unpack

OFF, WITHIN_LIMIT, APPROVED, HELD = "off", "within_limit", "approved", "held"


class ChangesNotCleared(CopyInputError):
    """An overwrite was asked for before the change guard cleared the pass: nothing was started."""


def changes_path(job_id: str) -> str:
    return f"{job_id}/changes.json.gz"


def change_ref(job_id: str) -> str:
    """What an approval of the pass's overwrites must name."""
    return f"{job_id}/changes"


async def _record(s: Session) -> ChangeCheck | None:
    data = await s.store.read(changes_path(s.job.job_id))
    return ChangeCheck.from_json(unpack(data)) if data is not None else None


async def require_clearance(s: Session, state: PageState) -> None:
    """Refuse to start the page's overwrites unless the pass is cleared (within the limit, or approved)."""
    if not s.job.guard.guards_changes or not state.held_overwrites():
        return
    record = await _record(s)
    if record is None or not record.cleared:
        raise ChangesNotCleared(
            f"job {s.job.job_id}: page {state.page} would overwrite {state.held_overwrites()} blob(s) of "
            f"{s.job.dest.container!r}, and the change guard has not cleared the pass "
            f"({'not checked yet' if record is None else 'held for approval'}): nothing was started"
        )


async def _planned(s: Session) -> dict[int, dict[str, Any]]:
    """Every page's summary, once the listing is planned to its last page (NotReady before)."""
    pages: dict[int, dict[str, Any]] = {}
    async for path, summary in s.store.summaries(state_prefix(s.job.job_id)):
        pages[page_number(path)] = summary
    final = [n for n, p in pages.items() if p.get("final")]
    if not final or sorted(pages) != list(range(final[0] + 1)):
        raise NotReady(f"job {s.job.job_id}: not every page is planned yet; the change guard counts them all")
    return pages


async def _prior(s: Session) -> tuple[int, int]:
    """What the same run's precopy overwrote (0 when an operator approved that) and how many blobs the
    destination held before it: (changes, base); (0, 0) without a precopy."""
    precopy = s.job.precopy_manifest
    if not precopy:
        return 0, 0
    data = await s.store.read(summary_path(precopy))
    summary = Summary.from_json(unpack(data)) if data is not None else None
    if summary is None:
        return 0, 0
    decided = await s.store.read(changes_path(precopy))
    approved = decided is not None and ChangeCheck.from_json(unpack(decided)).how == APPROVED
    return (0 if approved else summary.changes), summary.change_base


async def check_changes(job: CopyJob | dict[str, Any], env: CopyEnv) -> ChangeCheck:
    """After the last page is planned: clear the pass, or hold it for approval (idempotent: a decision on
    record is answered again)."""
    job = CopyJob.from_json(job).validate()
    if not job.guard.guards_changes:
        return ChangeCheck(cleared=True, how=OFF)
    async with Session(job, env) as s:
        record = await _record(s)
        if record is not None:
            return record
        pages = await _planned(s)
        changes = sum(int(p.get("ow", 0)) for p in pages.values())
        base = sum(int(p.get("ex", 0)) for p in pages.values())
        prior_changes, prior_base = await _prior(s)
        changes += prior_changes  # overwritten already by the precopy (unless approved), of what it held then
        base = prior_base or base
        limit = job.guard.change_limit(base)
        if changes <= limit:
            record = ChangeCheck(cleared=True, how=WITHIN_LIMIT, changes=changes, base=base, limit=limit)
        else:
            record = ChangeCheck(
                cleared=False, how=HELD, changes=changes, base=base, limit=limit, approval_ref=change_ref(job.job_id)
            )
        await s.store.write(changes_path(job.job_id), pack(record.to_json()))
        return record


async def approve_changes(job: CopyJob | dict[str, Any], ref: str, env: CopyEnv) -> ChangeCheck:
    """An operator approved the held overwrites of this pass (`ref` names it): clear it (idempotent)."""
    job = CopyJob.from_json(job).validate()
    if ref != change_ref(job.job_id):
        raise CopyInputError(f"approval {ref!r} does not belong to job {job.job_id!r}")
    async with Session(job, env) as s:
        record = await _record(s)
        if record is None:
            raise CopyInputError(f"job {job.job_id}: no change check on record to approve")
        if record.cleared:
            return record
        approved = ChangeCheck(
            cleared=True,
            how=APPROVED,
            changes=record.changes,
            base=record.base,
            limit=record.limit,
            approval_ref=record.approval_ref,
        )
        await s.store.write(changes_path(job.job_id), pack(approved.to_json()))
        return approved
