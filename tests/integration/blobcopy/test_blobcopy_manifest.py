"""Manifests: written per verified page, complete only when every page verified (index last); a backup is
verified against its manifest alone, with the source region gone."""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest

from shared.blobcopy import (
    NotReady,
    backups,
    check_backup_page,
    copy_container,
    finish,
    newest_backup,
    plan_page,
    poll_page,
    start_page,
    verify_backup,
    verify_page,
)
from tests.fixtures.copy import seed_awkward


def _catalog_names(copy_stack, job):
    catalog = copy_stack.client("dr").get_container_client("catalog")
    root = f"{job.catalog.prefix}/{job.job_id}/"
    return sorted(b.name[len(root) :] for b in catalog.list_blobs(name_starts_with=f"{root}manifest/"))


def test_manifest_is_complete_only_after_every_page_verified(copy_stack, faults):
    src = copy_stack.new_container("source", "mf")
    for i in range(7):
        src.upload_blob(f"n{i}", b"x" * i, metadata={"AvereObjId": str(i)})
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), via_proxy=True, page_size=3)
    env = copy_stack.env()
    faults.add_rule("pending", polls=0)  # every copy pends until it is polled once

    async def run():
        cursor, pages = None, []
        while True:
            plan = await plan_page(job, cursor, env)
            pages.append(plan.page)
            assert (await start_page(job, plan.page, env)).pending == plan.to_copy
            if plan.next_cursor is None:
                break
            cursor = plan.next_cursor
        assert _catalog_names(copy_stack, job) == []
        for page in pages[:-1]:
            assert (await poll_page(job, page, env)).done  # no copy open: the page verifies now
            assert (await verify_page(job, page, env)).verified
        assert _catalog_names(copy_stack, job) == ["manifest/page-000000.json.gz", "manifest/page-000001.json.gz"]
        assert await newest_backup(job.catalog, job.dest, env, complete_only=False) is None  # no index yet
        with pytest.raises(NotReady):
            await verify_page(job, pages[-1], env)
        await poll_page(job, pages[-1], env)
        assert (await verify_page(job, pages[-1], env)).verified
        assert await newest_backup(job.catalog, job.dest, env, complete_only=False) is None
        return await finish(job, env)

    summary = asyncio.run(run())
    assert summary.manifest_state == "complete" and summary.pages == 3
    assert _catalog_names(copy_stack, job)[-1] == "manifest/page-000002.json.gz"
    catalog = copy_stack.client("dr").get_container_client("catalog")
    index = json.loads(
        gzip.decompress(catalog.download_blob(f"{job.catalog.prefix}/{job.job_id}/manifest/index.json.gz").readall())
    )
    assert index["state"] == "complete" and index["count"] == 7 and len(index["pages"]) == 3
    first_page = json.loads(
        gzip.decompress(
            catalog.download_blob(f"{job.catalog.prefix}/{job.job_id}/manifest/page-000000.json.gz").readall()
        )
    )
    assert [e["n"] for e in first_page] == ["n0", "n1", "n2"]
    # name, source ETag, size, MD5, last-modified, digest of properties + metadata, copied at, copied now
    assert set(first_page[1]) == {"n", "e", "s", "m", "t", "d", "c", "x"}
    assert asyncio.run(newest_backup(job.catalog, job.dest, env)) == job.job_id
    listed = asyncio.run(backups(job.catalog, env))
    assert [(b["job_id"], b["state"], b["count"]) for b in listed] == [(job.job_id, "complete", 7)]


def test_verify_backup_without_the_source(copy_stack, faults):
    src = copy_stack.new_container("source", "vb")
    seed_awkward(src)
    dest = copy_stack.container_name("bak")
    job = copy_stack.job(src.container_name, dest, via_proxy=True, page_size=4)
    env = copy_stack.env()
    assert copy_container(job, env, poll_interval=0.01).verified

    blocked = faults.block_account(src.account_name)  # the primary region is gone
    faults.reset_stats()
    check = asyncio.run(verify_backup(job.dest, job.catalog, job.job_id, env))
    assert check.verified and check.checked == 10 and check.pages == 3
    assert blocked.fired == 0 and not any(k.startswith(f"{src.account_name}:") for k in faults.stats())

    target = copy_stack.client("dr").get_container_client(dest)
    target.delete_blob("hash#tag")
    target.upload_blob("intruder", b"?")
    target.get_blob_client("plain.bin").set_blob_metadata({"AvereObjId": "tampered"})
    target.upload_blob("emoji-😀", b"different bytes, same name", overwrite=True)
    check = asyncio.run(verify_backup(job.dest, job.catalog, job.job_id, env))
    assert not check.verified
    assert (check.missing, check.extra, check.mismatched) == (1, 1, 2)
    assert sorted(check.problems) == sorted(
        [
            "hash#tag: missing",
            "intruder: not in the manifest",
            "plain.bin: properties/metadata",
            "emoji-😀: size, content_md5, properties/metadata",
        ]
    )
    pages = [asyncio.run(check_backup_page(job.dest, job.catalog, job.job_id, n, env)) for n in range(3)]
    assert sum(p.checked for p in pages) == 10 and sum(p.missing + p.extra + p.mismatched for p in pages) == 4


def test_partial_manifest_never_verifies_a_backup(copy_stack, faults):
    src = copy_stack.new_container("source", "pm")
    for name in ("a", "b"):
        src.upload_blob(name, b"x")
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), via_proxy=True, max_attempts=1)
    faults.add_rule("pending", polls=0, outcome="failed", blob="a")
    env = copy_stack.env()
    summary = copy_container(job, env, poll_interval=0.01)
    assert summary.manifest_state == "partial"
    assert asyncio.run(newest_backup(job.catalog, job.dest, env)) is None
    assert not asyncio.run(verify_backup(job.dest, job.catalog, job.job_id, env)).verified
