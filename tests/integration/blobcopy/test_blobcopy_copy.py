"""Both engines reproduce a container exactly (names, bytes, MD5, properties, metadata); reruns skip."""

from __future__ import annotations

import asyncio

import pytest
from azure.storage.blob import BlobBlock

from shared.blobcopy import copy_container, plan_page, start_page
from shared.blobcopy.blocks import block_ids, block_size_for
from shared.blobcopy.state import MemoryStateStore
from tests.fixtures.copy import AWKWARD_NAMES, blob_view, seed_awkward


@pytest.mark.parametrize("engine", ["copy", "blocks"])
def test_engine_reproduces_awkward_container_and_rerun_copies_nothing(copy_stack, engine):
    src = copy_stack.new_container("source", "awk")
    seed_awkward(src)
    dest = copy_stack.container_name("bak")
    env = copy_stack.env()
    first = copy_stack.job(src.container_name, dest, engine=engine, page_size=4)
    summary = copy_container(first, env, poll_interval=0.01)

    assert summary.verified and summary.manifest_state == "complete"
    count = len(AWKWARD_NAMES)
    assert (summary.listed, summary.copied, summary.skipped, summary.failed) == (count, count, 0, 0)
    assert summary.pages == 3
    dst = copy_stack.client("dr").get_container_client(dest)
    source_view = blob_view(src)
    assert blob_view(dst) == source_view
    assert source_view["empty-blob"][1] == 0
    assert any(v[2] is None for v in source_view.values()), "some blobs must carry no Content-MD5"
    assert any(v[2] is not None for v in source_view.values())

    again = copy_stack.job(
        src.container_name,
        dest,
        engine=engine,
        page_size=4,
        catalog=True,
        prefix=first.catalog.prefix,
        previous_manifest=first.job_id,
    )
    second = copy_container(again, env, poll_interval=0.01)
    assert second.verified and (second.copied, second.skipped) == (0, len(AWKWARD_NAMES))
    assert blob_view(dst) == source_view


def test_incremental_without_catalog_compares_the_destination_listing(copy_stack):
    src = copy_stack.new_container("source", "inc")
    seed_awkward(src)
    dest = copy_stack.container_name("bak")
    env = copy_stack.env(store=MemoryStateStore())
    job = copy_stack.job(src.container_name, dest, catalog=False)
    assert copy_container(job, env, poll_interval=0.01).copied == len(AWKWARD_NAMES)

    env = copy_stack.env(store=MemoryStateStore())
    assert copy_container(copy_stack.job(src.container_name, dest, catalog=False), env).copied == 0

    # Same size, no MD5 (block list) but new bytes; and a metadata-only change.
    blob = src.get_blob_client("UPPER/lower/MiXeD")
    size = blob.get_blob_properties().size
    blob.stage_block("Y2hhbmdlZA==", b"\xee" * size)
    blob.commit_block_list([BlobBlock("Y2hhbmdlZA==")], metadata={"AvereObjId": "changed"})
    src.get_blob_client("hash#tag").set_blob_metadata({"AvereObjId": "obj-3", "NewKey": "x"})
    env = copy_stack.env(store=MemoryStateStore())
    third = copy_container(copy_stack.job(src.container_name, dest, catalog=False), env, poll_interval=0.01)
    assert (third.copied, third.skipped, third.verified) == (2, len(AWKWARD_NAMES) - 2, True)
    assert blob_view(copy_stack.client("dr").get_container_client(dest)) == blob_view(src)


def test_incremental_with_manifest_copies_only_changed_blobs(copy_stack):
    src = copy_stack.new_container("source", "man")
    for i in range(12):
        src.upload_blob(f"f{i:02d}", b"x" * i, metadata={"N": str(i)})
    dest = copy_stack.container_name("bak")
    env = copy_stack.env()
    first = copy_stack.job(src.container_name, dest, page_size=5)
    assert copy_container(first, env, poll_interval=0.01).copied == 12
    src.upload_blob("f03", b"new content", overwrite=True, metadata={"N": "3"})
    src.upload_blob("f20", b"brand new")
    second = copy_stack.job(
        src.container_name, dest, page_size=5, prefix=first.catalog.prefix, previous_manifest=first.job_id
    )
    result = copy_container(second, env, poll_interval=0.01)
    assert (result.listed, result.copied, result.skipped, result.verified) == (13, 2, 11, True)
    assert copy_stack.client("dr").get_container_client(dest).download_blob("f03").readall() == b"new content"


def test_full_mode_copies_everything_again(copy_stack):
    src = copy_stack.new_container("source", "full")
    for i in range(5):
        src.upload_blob(f"f{i}", b"x")
    dest = copy_stack.container_name("bak")
    env = copy_stack.env()
    first = copy_stack.job(src.container_name, dest, mode="full")
    copy_container(first, env, poll_interval=0.01)
    second = copy_stack.job(
        src.container_name, dest, mode="full", prefix=first.catalog.prefix, previous_manifest=first.job_id
    )
    assert copy_container(second, env, poll_interval=0.01).copied == 5


def test_blocks_engine_stages_several_blocks_and_reuses_staged_ones(copy_stack, faults):
    src = copy_stack.new_container("source", "blk")
    data = bytes(range(256)) * (14 * 1024)  # 3.5 MiB: four 1 MiB blocks
    src.upload_blob("big/object", data, metadata={"AvereObjId": "big"})
    dest = copy_stack.container_name("bak")
    job = copy_stack.job(src.container_name, dest, via_proxy=True, engine="blocks", block_size=1024 * 1024)
    env = copy_stack.env()
    asyncio.run(plan_page(job, None, env))
    # A previous step staged two blocks before its budget ran out: only the other two are fetched now.
    etag = src.get_blob_client("big/object").get_blob_properties().etag.strip('"')
    ids = block_ids(job.job_id, etag, 4)
    target = copy_stack.client("dr").get_container_client(dest).get_blob_client("big/object")
    mib = 1024 * 1024
    for index in (0, 2):
        target.stage_block(ids[index], data[index * mib : (index + 1) * mib])
    faults.reset_stats()
    progress = asyncio.run(start_page(job, 0, env))
    assert progress.done and progress.copied == 1
    assert faults.stats().get("vfxtdr:PutBlockFromURL") == 2
    assert target.download_blob().readall() == data
    assert target.get_blob_properties().metadata == {"AvereObjId": "big"}
    assert block_size_for(1024**4, 8 * mib) == 32 * mib  # doubles until 1 TiB fits in 50,000 blocks


def test_raw_listing_parses_exactly_what_the_sdk_does(copy_stack):
    from shared.azure.storage import StorageAccount
    from shared.blobcopy.entries import BlobEntry
    from shared.blobcopy.listing import _sdk_page, list_page

    src = copy_stack.new_container("source", "raw")
    seed_awkward(src)
    src.get_blob_client("plain.bin").set_standard_blob_tier("Cool")
    ref = copy_stack.ref("source")
    account = StorageAccount(ref.name, ref.blob_endpoint, copy_stack.keys[ref.name])

    async def both():
        async with account.async_service_client() as client:
            box = client.get_container_client(src.container_name)
            raw = await list_page(box, include=["metadata", "copy"], size=4)
            sdk = await _sdk_page(box, include=["metadata", "copy"], marker=None, start_from=None, size=4)
            rest = await list_page(box, include=["metadata"], marker=raw[1])
            tail = await list_page(box, include=["metadata"], start_from="percent%20literal%")
            return raw, sdk, rest, tail

    raw, sdk, rest, tail = asyncio.run(both())
    assert raw == sdk and len(raw[0]) == 4 and raw[1]
    assert [e.name for e in raw[0] + rest[0]] == [b.name for b in src.list_blobs()]
    assert tail[0][0].name == "percent%20literal%"
    by_name = {e.name: e for e in raw[0] + rest[0]}
    assert by_name["plain.bin"].tier == "Cool" and isinstance(by_name["plain.bin"], BlobEntry)
    assert by_name["UPPER/lower/MiXeD"].metadata == {"AvereObjId": "obj-8", "lowercase": "v", "MiXeD_Case": "Value 8"}
