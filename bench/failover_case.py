"""The failover benchmark's measurement (run by bench/failover_bench.py inside pytest for the stack's fixtures)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from shared.blobcopy.listing import list_page
from shared.blobcopy.manifest import ManifestEntry, write_index, write_manifest_page
from shared.blobcopy.session import DEST_INCLUDE
from shared.blobcopy.state import BlobStateStore
from shared.catalog.store import copy_prefix, state_path
from shared.runbook.manifest_check import manifest_digest
from tests.fixtures.durable import http_call
from tests.fixtures.storage import ENV_PERSISTENCE
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_failover import backup_now, write_files

PAGE = 5_000
PARALLEL = 64
BODY = b"x" * 512


async def _seed(conn: str, container: str, count: int) -> None:
    async with BlobServiceClient.from_connection_string(conn) as service:
        client = service.get_container_client(container)
        gate = asyncio.Semaphore(PARALLEL)

        async def put(i: int) -> None:
            async with gate:
                await client.upload_blob(f"zz-bench/{i:08d}", BODY, overwrite=True, metadata={"bench": "1"})

        await asyncio.gather(*(put(i) for i in range(count)))


async def _rewrite_manifest(conn: str, backup_container: str, catalog_container: str, prefix: str, job_id: str) -> None:
    """The backup's manifest again, from a listing of the whole container, with the app's own manifest code."""
    async with BlobServiceClient.from_connection_string(conn) as service:
        source = service.get_container_client(backup_container)
        store = BlobStateStore(service.get_container_client(catalog_container), prefix)
        page, marker, lower = 0, None, None
        while True:
            entries, marker = await list_page(source, include=DEST_INCLUDE, marker=marker, size=PAGE)
            rows = [
                ManifestEntry(
                    name=e.name,
                    etag=e.etag,
                    size=e.size,
                    md5=e.md5,
                    modified=e.modified,
                    digest=e.digest(),
                    copied_at=None,
                    copied=False,
                )
                for e in entries
            ]
            upper = rows[-1].name if rows else lower
            await write_manifest_page(store, job_id, page, rows, lower=lower, upper=upper, excluded=0)
            page, lower = page + 1, upper
            if marker is None:
                break
        await write_index(store, job_id, page, {"dest": backup_container, "mode": "bench"})


def _inflate(env: AppEnv, backup: dict[str, Any], extra: int) -> None:
    ctx = env.context()
    conn = env.azurite.connection_string("dr")
    container = env.filer.backup.containers[{"a": 0, "b": 1}[backup["generation"]]]
    catalog = env.catalog()
    entry = catalog.backup(env.filer, backup["backup_id"])
    job = entry["manifest"]
    started = time.perf_counter()
    asyncio.run(_seed(conn, container, extra))
    asyncio.run(
        _rewrite_manifest(conn, container, ctx.catalog_container, copy_prefix(ctx.cluster.name, ctx.filer.name), job)
    )
    digest = manifest_digest(ctx, job)
    assert digest is not None
    entry.update({"manifest_digest": digest, "verified": {**entry["verified"], "blobs": digest["count"]}})
    catalog.put_backup(env.filer, backup["backup_id"], {k: v for k, v in entry.items() if k != "schema"})
    print(
        f"\n  seeded {extra} blobs and rewrote the manifest ({digest['count']} entries, {digest['pages']} pages)"
        f" in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def _rto(env: AppEnv, runner: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    instance = reply.json()["id"]

    def served() -> bool:
        status = runner.status(instance) or {}
        custom = status.get("customStatus")
        step = custom.get("step") if isinstance(custom, dict) else None
        return step == "serving" or status.get("runtimeStatus") in ("Completed", "Failed")

    runner.run_until(served, timeout=1800)
    elapsed = time.perf_counter() - started
    status = runner.wait_for(instance, timeout=600)
    assert status["runtimeStatus"] == "Completed", str(status)[:2000]
    return elapsed, status["output"]


def _reset(env: AppEnv, saved: bytes) -> None:
    """Undo a measured failover, so the next one measures the same thing: the filer off the DR cluster (its
    junctions, then the core filer, as the app removes one), the primary's clients resumed, and the filer's
    catalog document as it was before the first failover (the run records and failover records stay: only the
    document decides what a failover may do)."""
    name = env.filer_name
    dr = env.client("dr")
    env.wait(dr.remove_junctions(name), cluster="dr")
    removed = dr.remove_core_filer(name)
    if removed != "success":
        env.wait([removed], cluster="dr")
    env.client().unsuspend_clients(name)
    env.container("dr", env.plan.catalog_container).upload_blob(
        state_path("primary", name), saved, overwrite=True, content_settings=ContentSettings("application/json")
    )


SIZES = [int(s) for s in os.environ.get("VFXTDR_BENCH_SIZES", "2000,20000").split(",")]
REPEATS = int(os.environ.get("VFXTDR_BENCH_REPEATS", "5"))
RESULTS: dict[int, float] = {}


@pytest.mark.parametrize("size", SIZES)
def test_failover_rto_at_size(make_app_env: Callable[..., AppEnv], durable_runner, size: int) -> None:
    """One app environment per test (the fixtures' rule): one size each, in order; REPEATS failovers of the same
    backup, the world reset between them; the median counts."""
    import function_app

    env = make_app_env()
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    _inflate(env, backup, size)
    saved = env.container("dr", env.plan.catalog_container).download_blob(state_path("primary", env.filer_name))
    before = saved.readall()
    trials = []
    for trial in range(REPEATS):
        rto, out = _rto(env, runner)
        trials.append(rto)
        print(
            f"  {size:>7} blobs, failover {trial + 1}/{REPEATS}: request -> serving {rto:.2f} s (verify "
            f"{out['verify']}, {out['blobs_checked']} blobs checked; phases {dict(out['phases'])})",
            flush=True,
        )
        _reset(env, before)
    RESULTS[size] = statistics.median(trials)
    print(f"  {size:>7} blobs: median {RESULTS[size]:.2f} s of {', '.join(f'{t:.2f}' for t in trials)}", flush=True)


def test_result() -> None:
    small, large = (RESULTS.get(s) for s in SIZES)
    assert small and large, RESULTS
    azurite = os.environ.get(ENV_PERSISTENCE, "disk")
    print(
        f"\nRESULT rto_ratio={large / small:.2f} small_rto_s={small:.2f} large_rto_s={large:.2f} "
        f"repeats={REPEATS} azurite={azurite}",
        flush=True,
    )
