"""The steps as the workflow calls them: small JSON payloads, idempotent reruns, state only in the catalog,
bad input rejected before anything is written."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared.blobcopy import (
    CopyInputError,
    CopyJob,
    NotReady,
    PageCursor,
    PagePlan,
    PageProgress,
    PageVerify,
    Summary,
    finish,
    plan_page,
    poll_page,
    start_page,
    verify_page,
)


def _through_json(obj):
    return type(obj).from_json(json.loads(json.dumps(obj.to_json())))


def test_payloads_are_small_json_and_round_trip(copy_stack):
    src = copy_stack.new_container("source", "pay")
    for i in range(200):
        src.upload_blob(f"blob-{i:04d}-" + "x" * 60, b"", metadata={"AvereObjId": "y" * 100})
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), page_size=80)
    env = copy_stack.env()
    assert _through_json(job) == job and CopyJob.from_json(job.to_json()).validate() == job

    async def run():
        reports = []
        cursor = None
        while True:
            plan = await plan_page(_through_json(job).to_json(), cursor and cursor.to_json(), env)
            reports += [
                plan,
                await start_page(job, plan.page, env),
                await poll_page(job, plan.page, env),
                await verify_page(job, plan.page, env),
            ]
            if plan.next_cursor is None:
                return [*reports, await finish(job, env)]
            cursor = plan.next_cursor

    reports = asyncio.run(run())
    assert {type(r) for r in reports} == {PagePlan, PageProgress, PageVerify, Summary}
    for report in reports:
        text = json.dumps(report.to_json())
        assert len(text) < 1024, text  # 80 blobs (~20 KB of listing) per page, yet every report stays tiny
        assert _through_json(report) == report
    # The bulky state sits in the catalog, never in the backup container.
    dest = copy_stack.client("dr").get_container_client(job.dest.container)
    assert sorted(b.name for b in dest.list_blobs()) == sorted(b.name for b in src.list_blobs())
    catalog = copy_stack.client("dr").get_container_client("catalog")
    state = [b.name for b in catalog.list_blobs(name_starts_with=f"{job.catalog.prefix}/{job.job_id}/state/")]
    assert len(state) == 3


def test_steps_are_idempotent(copy_stack, faults):
    src = copy_stack.new_container("source", "idem")
    for i in range(5):
        src.upload_blob(f"f{i}", b"data")
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), via_proxy=True)
    env = copy_stack.env()

    async def run():
        plan = await plan_page(job, None, env)
        writes = faults.stats()["vfxtdr:PutBlob"]
        assert await plan_page(job, PageCursor(), env) == plan  # the stored plan, nothing rewritten
        assert faults.stats()["vfxtdr:PutBlob"] == writes
        with pytest.raises(CopyInputError, match="another cursor"):
            await plan_page(job, PageCursor(page=0, token="elsewhere"), env)
        first = await start_page(job, 0, env)
        copies = faults.stats()["vfxtdr:CopyBlob"]
        assert await start_page(job, 0, env) == first  # a redelivered start copies nothing again
        assert faults.stats()["vfxtdr:CopyBlob"] == copies == 5
        verified = await verify_page(job, 0, env)
        assert await verify_page(job, 0, env) == verified
        summary = await finish(job, env)
        assert await finish(job, env) == summary

    asyncio.run(run())


def test_restarted_start_adopts_a_copy_already_pending(copy_stack, faults):
    src = copy_stack.new_container("source", "adopt")
    src.upload_blob("only", b"data")
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), via_proxy=True)
    env = copy_stack.env()
    faults.add_rule("pending", polls=None, times=1)

    async def run():
        await plan_page(job, None, env)
        await start_page(job, 0, env)
        # The activity crashed after starting the copy but before saving: its state still says "todo".
        catalog = copy_stack.client("dr").get_container_client("catalog")
        path = f"{job.catalog.prefix}/{job.job_id}/state/page-000000.json.gz"
        import gzip

        state = json.loads(gzip.decompress(catalog.download_blob(path).readall()))
        state["tasks"][0].update(st="todo", k=0)
        state["tasks"][0].pop("cid", None)
        catalog.upload_blob(path, gzip.compress(json.dumps(state).encode()), overwrite=True)
        progress = await start_page(job, 0, env)
        assert progress.pending == 1 and progress.failed == 0  # 409 PendingCopyOperation -> adopted

    asyncio.run(run())


def test_verify_before_copies_finish_is_refused(copy_stack, faults):
    src = copy_stack.new_container("source", "early")
    src.upload_blob("x", b"1")
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), via_proxy=True)
    env = copy_stack.env()
    faults.add_rule("pending", polls=None)

    async def run():
        await plan_page(job, None, env)
        assert not (await start_page(job, 0, env)).done
        with pytest.raises(NotReady, match="open"):
            await verify_page(job, 0, env)
        with pytest.raises(NotReady, match="not been planned"):
            await start_page(job, 7, env)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"job_id": "bad id!"}, "job_id"),
        ({"mode": "sync"}, "mode"),
        ({"engine": "azcopy"}, "engine"),
        ({"page_size": 6000}, "page_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"pending_limit_seconds": 7 * 86400}, "7 days"),
        ({"precopy_manifest": "earlier"}, "only a mirror"),
        (
            {"dest": {"account": {"name": "vfxtdr", "blob_endpoint": "http://x/vfxtdr"}, "container": "Bad_Name"}},
            r"dest\.container",
        ),
    ],
)
def test_bad_jobs_are_rejected_before_anything_is_written(copy_stack, change, message):
    src = copy_stack.new_container("source", "bad")
    good = copy_stack.job(src.container_name, copy_stack.container_name("bak"), prefix="never-written")
    with pytest.raises(CopyInputError, match=message):
        asyncio.run(plan_page({**good.to_json(), **change}, None, copy_stack.env()))
    catalog = copy_stack.client("dr").get_container_client("catalog")
    if catalog.exists():
        assert not list(catalog.list_blobs(name_starts_with="never-written/"))
    assert not copy_stack.client("dr").get_container_client(good.dest.container).exists()


def test_catalog_may_not_be_the_backup_container(copy_stack):
    job = copy_stack.job("src-x", "bak-x")
    bad = {**job.to_json(), "catalog": {**job.catalog.to_json(), "container": "bak-x"}}
    with pytest.raises(CopyInputError, match=r"catalog\.container"):
        CopyJob.from_json(bad).validate()
    with pytest.raises(CopyInputError, match="unknown field"):
        CopyJob.from_json({**job.to_json(), "sas": "sig=x"})


def test_missing_source_container_is_a_clear_error(copy_stack):
    job = copy_stack.job("no-such-container", copy_stack.container_name("bak"))
    from shared.blobcopy import SourceUnreachable

    with pytest.raises(SourceUnreachable, match="no-such-container"):
        asyncio.run(plan_page(job, None, copy_stack.env()))
    assert not copy_stack.client("dr").get_container_client(job.dest.container).exists()


@pytest.mark.parametrize("engine", ["copy", "blocks"])
def test_a_spent_step_budget_leaves_the_rest_for_the_next_step(copy_stack, faults, engine):
    src = copy_stack.new_container("source", "budget")
    for i in range(6):
        src.upload_blob(f"b{i}", b"x" * 10)
    job = copy_stack.job(
        src.container_name,
        copy_stack.container_name("bak"),
        via_proxy=True,
        engine=engine,
        concurrency=1,
        step_budget_seconds=0.05,
    )
    env = copy_stack.env()
    faults.add_rule("delay", delay=0.06, operation="CopyBlob" if engine == "copy" else "PutBlockList")

    async def run():
        await plan_page(job, None, env)
        steps = [await start_page(job, 0, env)]
        while not steps[-1].done:
            steps.append(await poll_page(job, 0, env))
        return steps

    steps = asyncio.run(run())
    assert steps[0].todo >= 4 and steps[0].copied >= 1  # the budget stopped it, after making progress
    assert len(steps) >= 3 and steps[-1].copied == 6


def test_a_manifest_of_another_destination_is_refused_before_anything_is_written(copy_stack):
    src = copy_stack.new_container("source", "othr")
    src.upload_blob("a", b"1")
    first = copy_stack.job(src.container_name, copy_stack.container_name("bak"))
    from shared.blobcopy import copy_container

    copy_container(first, copy_stack.env(), poll_interval=0.01)
    other = copy_stack.job(
        src.container_name,
        copy_stack.container_name("other"),
        prefix=first.catalog.prefix,
        previous_manifest=first.job_id,
    )
    with pytest.raises(CopyInputError, match="describes"):
        asyncio.run(plan_page(other, None, copy_stack.env()))
    missing = copy_stack.job(
        src.container_name, other.dest.container, prefix=first.catalog.prefix, previous_manifest="never-written"
    )
    with pytest.raises(CopyInputError, match="does not exist"):
        asyncio.run(plan_page(missing, None, copy_stack.env()))
    assert not copy_stack.client("dr").get_container_client(other.dest.container).exists()
