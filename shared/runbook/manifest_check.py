"""A backup's manifest digest (recorded with the backup) and the bounded sample check a failover makes with it.

The digest is the SHA-256 of the manifest's index (canonical JSON). The index lists every page with the page's
own SHA-256, so the digest pins every page: a failover compares the index against the digest the catalog
recorded, then checks a fixed number of blobs, picked at random but the same on every replay (seeded by the
run's instance id and the backup id), against their pages and the backup container. Its cost does not grow
with the container: one index, at most SAMPLE_PAGES pages (each read whole: its hash is checked) and
SAMPLE_SIZE blobs. The pages are picked at random too, so every page is as likely to be checked on some failover;
a check of every blob is `verify=full`.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import random
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.blobcopy.entries import BlobEntry
from shared.blobcopy.manifest import COMPLETE, ManifestEntry, ManifestIndex, page_sha256, read_index
from shared.blobcopy.state import StateStore, manifest_page_path, unpack
from shared.blobcopy.verify import manifest_differences
from shared.runbook import services
from shared.runbook.copy import _run, _with_store, backup_ref, catalog_ref
from shared.runbook.payloads import RunContext

SAMPLE_SIZE = 64
SAMPLE_PAGES = 2  # a page holds up to 5,000 entries: reading a page per sampled blob made the check grow with size
PARALLEL = 16
ALGORITHM = "sha256-index-v1"


def index_digest(index: ManifestIndex) -> dict[str, Any]:
    """What the catalog records of a manifest: the digest of its index, its totals, and whether every page of
    it carries its own hash (manifests written before pages were hashed do not: a sample cannot rely on them)."""
    canonical = json.dumps(index.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return {
        "algorithm": ALGORITHM,
        "sha256": hashlib.sha256(canonical.encode("ascii")).hexdigest(),
        "count": index.count,
        "bytes": index.bytes,
        "pages": len(index.pages),
        "pages_hashed": all(isinstance(p.get("sha256"), str) for p in index.pages),
    }


def manifest_digest(context: RunContext, job_id: str) -> dict[str, Any] | None:
    """The digest of a finished pass's manifest (None: no manifest)."""

    async def work(store: StateStore) -> dict[str, Any] | None:
        index = await read_index(store, job_id)
        return index_digest(index) if index is not None else None

    return _run(lambda: _with_store(catalog_ref(context), work))


def sample_positions(count: int, seed: str, size: int = SAMPLE_SIZE) -> list[int]:
    """Up to `size` distinct positions in [0, count), the same for the same seed (a replayed or redelivered
    check picks the same blobs)."""
    # Replay determinism, not secrecy: the seed holds the run id, so each run samples other blobs.
    rng = random.Random(hashlib.sha256(seed.encode("utf-8")).hexdigest())  # noqa: S311
    return sorted(rng.sample(range(count), min(size, count)))


def sample_picks(
    page_counts: list[int], seed: str, size: int = SAMPLE_SIZE, pages: int = SAMPLE_PAGES
) -> dict[int, list[int]]:
    """{page slot: entry offsets in it}: up to `pages` non-empty pages picked at random, then up to `size` distinct
    entries among them; the same for the same seed."""
    filled = [slot for slot, count in enumerate(page_counts) if count > 0]
    # Replay determinism, not secrecy: the seed holds the run id, so each run samples other pages and blobs.
    rng = random.Random(hashlib.sha256(f"pages:{seed}".encode()).hexdigest())  # noqa: S311
    chosen = sorted(rng.sample(filled, min(pages, len(filled))))
    starts, total = [], 0
    for slot in chosen:
        starts.append(total)
        total += page_counts[slot]
    picks: dict[int, list[int]] = {}
    for position in sample_positions(total, seed, size):
        at = bisect.bisect_right(starts, position) - 1
        picks.setdefault(chosen[at], []).append(position - starts[at])
    return picks


def sample_problems(
    context: RunContext, container: str, job_id: str, recorded: dict[str, Any], seed: str
) -> tuple[int, list[str]]:
    """(blobs checked, problems) for a sample of the backup: the index against the recorded digest and totals,
    each sampled page against its hash in the index, each sampled blob against the container."""
    dest_account = backup_ref(context)

    async def work(store: StateStore) -> tuple[int, list[str]]:
        index = await read_index(store, job_id)
        if index is None:
            return 0, [f"the manifest {job_id} is missing"]
        problems = _index_problems(index, recorded)
        if problems:
            return 0, problems
        by_page = sample_picks([int(p["count"]) for p in index.pages], seed)
        entries: list[ManifestEntry] = []
        for slot, offsets in by_page.items():
            found, problem = await _page_entries(store, index, slot)
            if problem:
                return 0, [problem]
            if len(found) != int(index.pages[slot]["count"]):
                return 0, [
                    f"manifest page {index.pages[slot]['page']} holds {len(found)} entries, not the "
                    f"{index.pages[slot]['count']} its index says"
                ]
            entries.extend(ManifestEntry.from_json(found[o]) for o in offsets)  # only the sampled ones decoded
        account = await asyncio.to_thread(services.copy_env().connect, dest_account)  # may read Key Vault
        async with account.async_service_client(PARALLEL) as client:
            dest = client.get_container_client(container)
            gate = asyncio.Semaphore(PARALLEL)

            async def check(entry: ManifestEntry) -> str:
                # One point read per blob (Get Blob Properties): its cost does not depend on the container.
                async with gate:
                    try:
                        props = await dest.get_blob_client(entry.name).get_blob_properties()
                    except ResourceNotFoundError:
                        return f"{entry.name}: missing"
                got = BlobEntry.from_properties(props)
                diffs = manifest_differences(entry, got)
                return f"{entry.name}: {', '.join(diffs)}" if diffs else ""

            found_problems = await asyncio.gather(*(check(e) for e in entries))
        return len(entries), [p for p in found_problems if p]

    return _run(lambda: _with_store(catalog_ref(context), work))


def _index_problems(index: ManifestIndex, recorded: dict[str, Any]) -> list[str]:
    now = index_digest(index)
    if index.state != COMPLETE:
        return [f"the manifest {index.job_id} is {index.state}, not complete"]
    if now["sha256"] != recorded.get("sha256"):
        return [
            f"the manifest {index.job_id} no longer matches the digest recorded with the backup "
            f"(recorded {str(recorded.get('sha256'))[:16]}…, now {now['sha256'][:16]}…)"
        ]
    for key in ("count", "bytes", "pages"):
        if now[key] != recorded.get(key):
            return [f"the manifest {index.job_id} has {key} {now[key]}, the backup recorded {recorded.get(key)}"]
    if sum(int(p.get("count", 0)) for p in index.pages) != index.count:
        return [f"the manifest {index.job_id}'s pages do not add up to its count {index.count}"]
    return []


async def _page_entries(store: StateStore, index: ManifestIndex, slot: int) -> tuple[list[Any], str]:
    info = index.pages[slot]
    data = await store.read(manifest_page_path(index.job_id, int(info["page"])))
    if data is None:
        return [], f"manifest page {info['page']} is missing"
    if page_sha256(data) != info.get("sha256"):
        return [], f"manifest page {info['page']} does not match its hash in the index"
    return list(unpack(data)), ""
