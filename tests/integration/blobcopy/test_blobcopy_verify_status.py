"""Verification checks the copy status it claims to, for a few blobs (one HEAD each) and for many (a listing)."""

from __future__ import annotations

import asyncio

import pytest

from shared.blobcopy import copy_container
from shared.blobcopy.entries import BlobEntry
from shared.blobcopy.pages import COPIED, BlobTask
from shared.blobcopy.session import Session
from shared.blobcopy.verify import verify_copied


def _tasks(container, names):
    return [
        BlobTask(entry=BlobEntry.from_properties(container.get_blob_client(n).get_blob_properties()), status=COPIED)
        for n in names
    ]


async def _verify(job, env, tasks):
    async with Session(job, env) as session:
        return await verify_copied(session, tasks)


@pytest.mark.parametrize("count", [3, 40], ids=["heads", "listing"])
def test_identical_blobs_that_copy_blob_did_not_write_are_not_verified(copy_stack, count):
    src = copy_stack.new_container("source", "vst")
    dest = copy_stack.new_container("dr", "vst")
    names = [f"d/{i:03d}.bin" for i in range(count)]
    for i, name in enumerate(names):  # same bytes, metadata and MD5 on both sides, but no copy in the dest
        src.upload_blob(name, bytes([i]) * 10, metadata={"AvereObjId": str(i)})
        dest.upload_blob(name, bytes([i]) * 10, metadata={"AvereObjId": str(i)})
    job = copy_stack.job(src.container_name, dest.container_name)
    problems = asyncio.run(_verify(job, copy_stack.env(), _tasks(src, names)))
    assert len(problems) == count
    assert all(p.endswith("copy status missing") for p in problems)


@pytest.mark.parametrize("count", [3, 40], ids=["heads", "listing"])
def test_blobs_written_by_copy_blob_verify(copy_stack, count):
    src = copy_stack.new_container("source", "vsk")
    dest = copy_stack.container_name("vsk")
    names = [f"d/{i:03d}.bin" for i in range(count)]
    for i, name in enumerate(names):
        src.upload_blob(name, bytes([i]) * 10, metadata={"AvereObjId": str(i)})
    job = copy_stack.job(src.container_name, dest)
    assert copy_container(job, copy_stack.env()).verified
    assert asyncio.run(_verify(job, copy_stack.env(), _tasks(src, names))) == []
