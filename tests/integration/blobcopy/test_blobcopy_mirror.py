"""Mirror deletes: only after verification, under the guard, exact if_match deletes, needs_approval lists,
and blobs the same run pre-copied not counted by the guard."""

from __future__ import annotations

import asyncio
import gzip
import json

from shared.blobcopy import Guard, apply_deletes, copy_container, finish, plan_page, start_page, verify_page


def _fill(container, names, data=b"v1"):
    for name in names:
        container.upload_blob(name, data, overwrite=True, metadata={"AvereObjId": name})


def _names(container):
    return sorted(b.name for b in container.list_blobs())


def _approval_list(copy_stack, job, ref):
    catalog = copy_stack.client("dr").get_container_client("catalog")
    items = []
    for blob in catalog.list_blobs(name_starts_with=f"{job.catalog.prefix}/{ref}/deletes-"):
        items += json.loads(gzip.decompress(catalog.download_blob(blob.name).readall()))
    return sorted(map(tuple, items))


def test_deletes_under_the_guard_use_if_match(copy_stack):
    src = copy_stack.new_container("source", "mir")
    _fill(src, [f"keep{i}" for i in range(8)])
    dst = copy_stack.new_container("dr", "mir")
    _fill(dst, ["extra-1", "extra 2#", "keep0"], data=b"old")
    env = copy_stack.env()
    job = copy_stack.job(src.container_name, dst.container_name, mode="mirror", guard=Guard(0.1, 3))

    async def run():
        await plan_page(job, None, env)
        assert (await start_page(job, 0, env)).done
        assert (await verify_page(job, 0, env)).verified
        dst.upload_blob("extra-1", b"written after planning", overwrite=True)  # ETag no longer matches
        return await finish(job, env)

    summary = asyncio.run(run())
    assert summary.verified and not summary.needs_approval
    assert (summary.delete_candidates, summary.deleted, summary.guard_counted) == (2, 1, 2)
    assert _names(dst) == sorted(["extra-1", *[f"keep{i}" for i in range(8)]])
    assert asyncio.run(finish(job, env)) == summary  # idempotent


def test_over_the_guard_needs_approval_with_the_exact_list(copy_stack):
    src = copy_stack.new_container("source", "apr")
    _fill(src, [f"keep{i}" for i in range(10)])
    dst = copy_stack.new_container("dr", "apr")
    extras = [f"gone/{i}" for i in range(6)]
    _fill(dst, extras, data=b"old")
    etags = {b.name: b.etag.strip('"') for b in dst.list_blobs()}
    env = copy_stack.env()
    job = copy_stack.job(src.container_name, dst.container_name, mode="mirror", guard=Guard(0.10, 2))
    summary = copy_container(job, env, poll_interval=0.01)
    assert summary.verified and summary.needs_approval and summary.deleted == 0
    assert (summary.guard_counted, summary.guard_dest_total, summary.guard_limit) == (6, 6, 2)
    assert _names(dst) == sorted(extras + [f"keep{i}" for i in range(10)])  # nothing deleted
    assert _approval_list(copy_stack, job, summary.approval_ref) == sorted((n, etags[n]) for n in extras)

    dst.upload_blob("gone/3", b"changed since", overwrite=True)
    report = asyncio.run(apply_deletes(job, summary.approval_ref, env))
    assert (report.deleted, report.changed, report.missing) == (5, 1, 0)
    assert _names(dst) == sorted(["gone/3", *[f"keep{i}" for i in range(10)]])
    assert asyncio.run(apply_deletes(job, summary.approval_ref, env)) == report  # idempotent


def test_no_deletes_unless_every_page_verified(copy_stack, faults):
    src = copy_stack.new_container("source", "nov")
    _fill(src, ["a", "b", "c"])
    dst = copy_stack.new_container("dr", "nov")
    _fill(dst, ["stale"], data=b"old")
    faults.add_rule("pending", polls=0, outcome="failed", blob="b")
    job = copy_stack.job(src.container_name, dst.container_name, via_proxy=True, mode="mirror", max_attempts=1)
    summary = copy_container(job, copy_stack.env(), poll_interval=0.01)
    assert not summary.verified and summary.failed == 1
    assert summary.deleted == 0 and "stale" in _names(dst)


def _precopy_then_mirror(copy_stack, src, previous, guard, between=None):
    env = copy_stack.env()
    prefix, dst = previous.catalog.prefix, previous.dest.container
    pre = copy_stack.job(src.container_name, dst, mode="precopy", prefix=prefix, previous_manifest=previous.job_id)
    pre_summary = copy_container(pre, env, poll_interval=0.01)
    if between:
        between()
    mirror = copy_stack.job(
        src.container_name,
        dst,
        mode="mirror",
        prefix=prefix,
        guard=guard,
        previous_manifest=pre.job_id,
        precopy_manifest=pre.job_id,
    )
    return pre_summary, mirror, copy_container(mirror, env, poll_interval=0.01)


def test_blobs_precopied_by_this_run_do_not_count_for_the_guard(copy_stack):
    # The older generation holds 20 blobs; temporary files appear, get pre-copied, and are gone by the flush.
    src = copy_stack.new_container("source", "tmp")
    _fill(src, [f"data/{i:02d}" for i in range(20)])
    dst = copy_stack.container_name("gen")
    old = copy_stack.job(src.container_name, dst, mode="mirror")
    copy_container(old, copy_stack.env(), poll_interval=0.01)
    _fill(src, [f"tmp/{i}" for i in range(5)])

    pre, _, mirror = _precopy_then_mirror(
        copy_stack, src, old, Guard(0.0, 0), between=lambda: [src.delete_blob(f"tmp/{i}") for i in range(5)]
    )
    assert pre.copied == 5 and pre.skipped == 20
    assert mirror.verified and not mirror.needs_approval
    assert (mirror.deleted, mirror.guard_counted, mirror.guard_dest_total) == (5, 0, 20)
    assert _names(copy_stack.client("dr").get_container_client(dst)) == _names(src)


def test_precopied_blobs_do_not_dilute_a_mass_deletion(copy_stack):
    # Everything the last backup held is deleted and 100 new blobs appear: 10 of 110 would pass a 10% guard,
    # but measured against what the destination held before this run it is 10 of 10.
    src = copy_stack.new_container("source", "mass")
    _fill(src, [f"old/{i}" for i in range(10)])
    dst = copy_stack.container_name("gen")
    old = copy_stack.job(src.container_name, dst, mode="mirror")
    copy_container(old, copy_stack.env(), poll_interval=0.01)
    for i in range(10):
        src.delete_blob(f"old/{i}")
    _fill(src, [f"new/{i:03d}" for i in range(100)])
    guard = Guard(0.10, 2)
    _, mirror_job, mirror = _precopy_then_mirror(copy_stack, src, old, guard)
    assert guard.limit(110) >= 10  # what a guard counting pre-copied blobs would have allowed
    assert mirror.verified and mirror.needs_approval and mirror.deleted == 0
    assert (mirror.guard_counted, mirror.guard_dest_total, mirror.guard_limit) == (10, 10, 2)
    assert len(_approval_list(copy_stack, mirror_job, mirror.approval_ref)) == 10
