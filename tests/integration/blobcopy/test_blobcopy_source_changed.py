"""A source written after it was listed: the ETag condition stops a half-new copy; precopy leaves it."""

from __future__ import annotations

import asyncio

import pytest

from shared.blobcopy import copy_container, finish, plan_page, start_page, verify_page
from tests.fixtures.copy import blob_view


def _seed(copy_stack, stem):
    src = copy_stack.new_container("source", stem)
    for name in ("a", "b", "c", "d"):
        src.upload_blob(name, name.encode() * 10, metadata={"AvereObjId": name})
    return src


def _run_page_with_change(copy_stack, job, change):
    env = copy_stack.env()

    async def run():
        await plan_page(job, None, env)
        change()
        progress = await start_page(job, 0, env)
        assert progress.done
        return progress, await verify_page(job, 0, env), await finish(job, env)

    return asyncio.run(run())


@pytest.mark.parametrize("engine", ["copy", "blocks"])
def test_changed_source_fails_the_page_outside_precopy(copy_stack, engine):
    src = _seed(copy_stack, "chg")
    dest = copy_stack.container_name("bak")
    job = copy_stack.job(src.container_name, dest, engine=engine)
    progress, verify, summary = _run_page_with_change(
        copy_stack, job, lambda: src.upload_blob("b", b"rewritten after the flush", overwrite=True)
    )
    assert (progress.copied, progress.source_changed) == (3, 1)
    assert not verify.verified and any(p.startswith("b: source_changed") for p in verify.problems)
    assert not summary.verified and summary.manifest_state == "partial"
    target = copy_stack.client("dr").get_container_client(dest)
    assert "b" not in [blob.name for blob in target.list_blobs()]  # never a half-new copy


@pytest.mark.parametrize("engine", ["copy", "blocks"])
def test_deleted_source_is_reported_as_changed(copy_stack, engine):
    src = _seed(copy_stack, "del")
    src.upload_blob("empty", b"")
    dest = copy_stack.container_name("bak")
    job = copy_stack.job(src.container_name, dest, engine=engine)

    def delete():
        src.delete_blob("c")
        src.delete_blob("empty")  # nothing is read from an empty source: the engine checks it first

    progress, _, summary = _run_page_with_change(copy_stack, job, delete)
    assert progress.source_changed == 2 and summary.source_changed == 2 and progress.copied == 3
    names = [b.name for b in copy_stack.client("dr").get_container_client(dest).list_blobs()]
    assert sorted(names) == ["a", "b", "d"]


def test_precopy_leaves_changed_blobs_for_the_next_pass(copy_stack):
    src = _seed(copy_stack, "pre")
    dest = copy_stack.container_name("bak")
    job = copy_stack.job(src.container_name, dest, mode="precopy")
    progress, verify, summary = _run_page_with_change(
        copy_stack, job, lambda: src.upload_blob("d", b"still being written", overwrite=True)
    )
    assert progress.source_changed == 1
    assert verify.verified and summary.verified and summary.source_changed == 1
    assert summary.manifest_state == "partial"  # d is not in it: not a restorable backup on its own

    # After the flush the mirror pass copies only what the precopy left or what changed since.
    src.upload_blob("e", b"new after precopy")
    mirror = copy_stack.job(
        src.container_name,
        dest,
        mode="mirror",
        prefix=job.catalog.prefix,
        previous_manifest=job.job_id,
        precopy_manifest=job.job_id,
    )
    result = copy_container(mirror, copy_stack.env(), poll_interval=0.01)
    assert (result.copied, result.skipped, result.verified) == (2, 3, True)
    assert result.manifest_state == "complete"
    assert blob_view(copy_stack.client("dr").get_container_client(dest)) == blob_view(src)
