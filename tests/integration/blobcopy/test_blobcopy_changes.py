"""The change guard in the engine: a pass that would overwrite more than its limit of the destination's blobs
overwrites nothing until approved, whoever drives the steps; within the limit it copies as before; a run's
precopy and final pass count together."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.blobcopy import (
    ChangesNotCleared,
    CopyInputError,
    Guard,
    approve_changes,
    check_changes,
    copy_container,
    plan_page,
    start_page,
)
from tests.fixtures.copy import blob_view

NAMES = [f"i/{n:02d}" for n in range(10)]
GUARD = Guard(1.0, 0, max_change_fraction=0.5)  # deletes unguarded here; overwrites: at most half


def _fill(container, names, data):
    for name in names:
        container.upload_blob(name, data, overwrite=True, metadata={"AvereObjId": name})


def _seeded(copy_stack, stem):
    """A source, and a destination holding its verified copy (the generation's previous backup)."""
    src = copy_stack.new_container("source", stem)
    dst = copy_stack.new_container("dr", stem)
    _fill(src, NAMES, b"good")
    prefix = f"t/{uuid.uuid4().hex[:8]}"
    first = copy_stack.job(
        src.container_name, dst.container_name, mode="mirror", guard=GUARD, prefix=prefix, page_size=4
    )
    summary = copy_container(first, copy_stack.env())
    assert summary.verified and summary.changes == 0 and summary.change_base == 0  # empty before: nothing held
    return src, dst, prefix, first


def test_a_mass_overwrite_is_held_until_approved_and_nothing_is_overwritten_meanwhile(copy_stack):
    src, dst, prefix, first = _seeded(copy_stack, "chg")
    _fill(src, NAMES[:8], b"encrypted by ransomware")  # 8 of 10 changed: the limit is 5
    before = blob_view(dst)
    env = copy_stack.env()
    job = copy_stack.job(
        src.container_name,
        dst.container_name,
        mode="mirror",
        guard=GUARD,
        prefix=prefix,
        page_size=4,
        previous_manifest=first.job_id,
    )
    with pytest.raises(ChangesNotCleared, match="would overwrite 8 of the 10 blobs"):
        copy_container(job, env)
    assert blob_view(dst) == before  # nothing overwritten, nothing added

    async def steps():
        check = await check_changes(job, env)
        assert (check.cleared, check.how, check.changes, check.base, check.limit) == (False, "held", 8, 10, 5)
        with pytest.raises(ChangesNotCleared, match="held for approval"):  # the engine refuses, whoever asks
            await start_page(job, 0, env)
        with pytest.raises(CopyInputError, match="does not belong"):
            await approve_changes(job, f"{first.job_id}/changes", env)
        return await approve_changes(job, str(check.approval_ref), env)

    approved = asyncio.run(steps())
    assert approved.cleared and approved.how == "approved"
    assert blob_view(dst) == before
    summary = copy_container(job, env)  # the same pass, now cleared: its stored plans are copied
    assert summary.verified and summary.changes == 8 and summary.change_base == 10
    assert blob_view(dst) == blob_view(src)


def test_within_the_limit_a_pass_copies_as_before(copy_stack):
    src, dst, prefix, first = _seeded(copy_stack, "few")
    _fill(src, NAMES[:5], b"edited")  # 5 of 10: at the limit, not over it
    _fill(src, ["i/new"], b"added")  # a new blob is no overwrite
    job = copy_stack.job(
        src.container_name,
        dst.container_name,
        mode="mirror",
        guard=GUARD,
        prefix=prefix,
        page_size=4,
        previous_manifest=first.job_id,
    )
    summary = copy_container(job, copy_stack.env())
    assert summary.verified and (summary.changes, summary.change_base) == (5, 10)
    assert blob_view(dst) == blob_view(src)
    check = asyncio.run(check_changes(job, copy_stack.env()))
    assert (check.cleared, check.how) == (True, "within_limit")


def test_a_precopy_and_its_final_pass_count_together(copy_stack):
    """Four overwrites while online and two more while removed are six of ten: the final pass is held."""
    src, dst, prefix, first = _seeded(copy_stack, "two")
    env = copy_stack.env()
    _fill(src, NAMES[:4], b"changed while online")
    pre = copy_stack.job(
        src.container_name,
        dst.container_name,
        mode="precopy",
        guard=GUARD,
        prefix=prefix,
        page_size=4,
        previous_manifest=first.job_id,
    )
    assert copy_container(pre, env).changes == 4
    _fill(src, NAMES[6:8], b"changed before the removal")
    final = copy_stack.job(
        src.container_name,
        dst.container_name,
        mode="mirror",
        guard=GUARD,
        prefix=prefix,
        page_size=4,
        previous_manifest=pre.job_id,
        precopy_manifest=pre.job_id,
    )
    before = blob_view(dst)
    with pytest.raises(ChangesNotCleared, match="would overwrite 6 of the 10 blobs"):
        copy_container(final, env)
    assert blob_view(dst) == before


def test_planning_alone_never_writes_the_destination_and_a_check_waits_for_every_page(copy_stack):
    src, dst, prefix, first = _seeded(copy_stack, "pln")
    _fill(src, NAMES, b"all changed")
    env = copy_stack.env()
    job = copy_stack.job(
        src.container_name,
        dst.container_name,
        mode="mirror",
        guard=GUARD,
        prefix=prefix,
        page_size=4,
        previous_manifest=first.job_id,
    )
    before = blob_view(dst)

    async def plan_first_page():
        plan = await plan_page(job, None, env)
        assert plan.changes == 4 and not plan.verified
        with pytest.raises(Exception, match="not every page is planned"):
            await check_changes(job, env)

    asyncio.run(plan_first_page())
    assert blob_view(dst) == before
