"""The engine through the fault proxy: throttling, resets, slow answers, pending/failed/stuck copies."""

from __future__ import annotations

import asyncio
import time

from devstack.clock import VirtualClock
from shared.azure.storage import RetrySettings
from shared.blobcopy import copy_container, plan_page, poll_page, start_page, verify_page
from tests.fixtures.copy import blob_view


def _source(copy_stack, count, stem="flt"):
    src = copy_stack.new_container("source", stem)
    for i in range(count):
        src.upload_blob(f"dir/{i:03d} #?.bin", bytes([i]) * (i + 1), metadata={"AvereObjId": str(i)})
    return src


def _dest_view(copy_stack, name):
    return blob_view(copy_stack.client("dr").get_container_client(name))


def test_throttling_and_resets_are_retried_and_the_copy_verifies(copy_stack, faults):
    src = _source(copy_stack, 25)
    dest = copy_stack.container_name("bak")
    rules = [
        faults.add_rule("error", operation="CopyBlob", status=503, code="ServerBusy", times=6),
        faults.add_rule("error", operation="ListBlobs", status=500, code="OperationTimedOut", times=2),
        faults.add_rule("reset", operation="CopyBlob", times=3),
        faults.add_rule("reset", operation="GetBlob", times=1),  # a catalog read
        faults.add_rule("error", operation="PutBlob", status=503, times=2),  # catalog writes
        faults.add_rule(
            "error",
            account=src.account_name,
            operation="ListBlobs",
            status=429,
            code="TooManyRequests",
            retry_after=1,
            times=1,
        ),
    ]
    started = time.monotonic()
    summary = copy_container(
        copy_stack.job(src.container_name, dest, via_proxy=True, page_size=10), copy_stack.env(), poll_interval=0.01
    )
    assert summary.verified and summary.copied == 25 and summary.failed == 0
    assert [r.fired for r in rules] == [6, 2, 3, 1, 2, 1]
    assert time.monotonic() - started >= 1.0  # the 429's Retry-After was honoured
    assert _dest_view(copy_stack, dest) == blob_view(src)


def test_slow_answers_and_a_read_timeout(copy_stack, faults):
    src = _source(copy_stack, 5)
    dest = copy_stack.container_name("bak")
    slow = faults.add_rule("delay", delay=0.6, operation="ListBlobs", account=src.account_name, times=1)
    env = copy_stack.env(retry=RetrySettings(total=3, initial_backoff=0.01, read_timeout=0.3))
    job = copy_stack.job(src.container_name, dest, via_proxy=True)
    summary = copy_container(job, env, poll_interval=0.01)
    assert summary.verified and summary.copied == 5 and slow.fired == 1


def test_pending_copies_are_polled_with_one_listing_per_page(copy_stack, faults):
    src = _source(copy_stack, 40)
    dest = copy_stack.container_name("bak")
    pending = faults.add_rule("pending", polls=3)
    summary = copy_container(
        copy_stack.job(src.container_name, dest, via_proxy=True, page_size=40), copy_stack.env(), poll_interval=0.01
    )
    assert summary.verified and summary.copied == 40 and pending.fired == 40
    stats = faults.stats()
    # A one-blob probe of the destination, one listing of its range to plan, 3 polls seeing "pending" + 1
    # seeing "success", one to verify, two of the catalog in finish: no request per blob.
    assert stats.get("vfxtdr:GetBlobProperties", 0) == 0
    assert stats["vfxtdr:ListBlobs"] == 1 + 1 + 4 + 1 + 2
    assert stats["vfxtdr:CopyBlob"] == 40


def test_few_pending_copies_are_polled_one_by_one(copy_stack, faults):
    src = _source(copy_stack, 3)
    dest = copy_stack.container_name("bak")
    faults.add_rule("pending", polls=2)
    summary = copy_container(
        copy_stack.job(src.container_name, dest, via_proxy=True), copy_stack.env(), poll_interval=0.01
    )
    assert summary.verified
    assert faults.stats()["vfxtdr:GetBlobProperties"] == 3 * 3 + 3  # polls + verification


def test_failed_copies_are_retried_a_bounded_number_of_times(copy_stack, faults):
    src = _source(copy_stack, 6)
    dest = copy_stack.container_name("bak")
    # Every copy of blob 001 fails; the others fail once and then succeed.
    faults.add_rule("pending", polls=0, outcome="failed", blob="dir/001*")
    flaky = faults.add_rule("pending", polls=1, outcome="failed", times=5)
    job = copy_stack.job(src.container_name, dest, via_proxy=True, max_attempts=3)
    summary = copy_container(job, copy_stack.env(), poll_interval=0.01)
    assert not summary.verified
    assert (summary.copied, summary.failed) == (5, 1)
    assert flaky.fired == 5
    assert faults.stats()["vfxtdr:CopyBlob"] == 3 + 5 + 5  # three attempts for the bad one
    assert summary.manifest_state == "partial"


def test_a_copy_pending_past_the_limit_is_aborted_and_restarted(copy_stack, faults):
    src = _source(copy_stack, 2)
    dest = copy_stack.container_name("bak")
    stuck = faults.add_rule("pending", polls=None, times=2)  # never finishes on its own
    clock = VirtualClock()
    env = copy_stack.env(clock=clock.now)
    job = copy_stack.job(src.container_name, dest, via_proxy=True, pending_limit_seconds=600)

    async def run() -> None:
        await plan_page(job, None, env)
        progress = await start_page(job, 0, env)
        assert progress.pending == 2
        progress = await poll_page(job, 0, env)
        assert progress.pending == 2 and not progress.done  # still within the limit
        clock.advance(601)
        progress = await poll_page(job, 0, env)  # aborts both, restarts both (now unhindered)
        assert progress.done and progress.copied == 2
        assert (await verify_page(job, 0, env)).verified

    asyncio.run(run())
    assert stuck.fired == 2
    assert faults.stats()["vfxtdr:AbortCopyBlob"] == 2
    assert faults.stats()["vfxtdr:CopyBlob"] == 4
    assert _dest_view(copy_stack, dest) == blob_view(src)


def test_throttling_that_never_ends_fails_the_blob_not_the_process(copy_stack, faults):
    src = _source(copy_stack, 2)
    dest = copy_stack.container_name("bak")
    faults.add_rule("error", operation="CopyBlob", status=503, blob="dir/000*")
    job = copy_stack.job(src.container_name, dest, via_proxy=True, max_attempts=2)
    env = copy_stack.env(retry=RetrySettings(total=2, initial_backoff=0.01, max_backoff=0.02))
    summary = copy_container(job, env, poll_interval=0.01)
    assert (summary.verified, summary.copied, summary.failed) == (False, 1, 1)
