"""Manifests: per backup pass, what the destination received (gzip'd pages + an index written last)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from shared.blobcopy.entries import order_key
from shared.blobcopy.errors import CopyInputError
from shared.blobcopy.pages import COPIED, SKIPPED, BlobTask
from shared.blobcopy.state import (
    StateStore,
    manifest_index_path,
    manifest_page_path,
    manifest_prefix,
    pack,
    page_number,
    unpack,
)
from shared.core.codec import JsonRecord, json_options

COMPLETE, PARTIAL = "complete", "partial"


@dataclass(slots=True)
class ManifestEntry(JsonRecord):
    """(name, source ETag, size, MD5, last-modified, digest of properties + metadata) and when/if copied."""

    name: str = field(metadata=json_options(key="n"))
    etag: str = field(metadata=json_options(key="e"))
    size: int = field(metadata=json_options(key="s"))
    md5: str | None = field(metadata=json_options(key="m"))
    modified: float = field(metadata=json_options(key="t"))
    digest: str = field(metadata=json_options(key="d"))
    copied_at: float | None = field(metadata=json_options(key="c"))
    copied: bool = field(metadata=json_options(key="x"))  # copied by this pass (False: found unchanged)

    @classmethod
    def from_task(cls, task: BlobTask) -> ManifestEntry:
        entry = task.entry
        return cls(
            name=entry.name,
            etag=entry.etag,
            size=entry.size,
            md5=entry.md5,
            modified=entry.modified,
            digest=entry.digest(),
            copied_at=task.written_at,
            copied=task.status == COPIED,
        )


def manifest_entries(tasks: list[BlobTask]) -> list[ManifestEntry]:
    """What a verified page contributes: copied and unchanged blobs (source_changed ones are left out)."""
    return [ManifestEntry.from_task(t) for t in tasks if t.status in (COPIED, SKIPPED)]


async def write_manifest_page(
    store: StateStore,
    job_id: str,
    page: int,
    entries: list[ManifestEntry],
    *,
    lower: str | None,
    upper: str | None,
    excluded: int,
) -> None:
    data = await asyncio.to_thread(lambda: pack([e.to_json() for e in entries]))
    # The page's SHA-256 rides in the index: the catalog's digest of the index then covers every page, and a
    # failover checks a page it samples against it without reading the others.
    summary = {
        "count": len(entries),
        "bytes": sum(e.size for e in entries),
        "lower": lower,
        "upper": upper,
        "excluded": excluded,
        "sha256": page_sha256(data),
    }
    await store.write(manifest_page_path(job_id, page), data, summary)


def page_sha256(data: bytes) -> str:
    """The SHA-256 of a manifest page as stored (its packed bytes)."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ManifestIndex(JsonRecord):
    """The marker written last: page ranges and totals. state is complete only if every page verified
    and nothing was left out."""

    job_id: str
    state: str
    pages: list[dict[str, Any]]
    count: int
    bytes: int
    created: float
    info: dict[str, Any]


async def write_index(
    store: StateStore, job_id: str, expected_pages: int, info: dict[str, Any], clock: Any = time.time
) -> ManifestIndex:
    """Collect the manifest pages' summaries (one listing) and write the index marker."""
    pages = []
    async for path, summary in store.summaries(manifest_prefix(job_id)):
        pages.append({"page": page_number(path), **summary})
    pages.sort(key=lambda p: p["page"])
    complete = (
        len(pages) == expected_pages
        and [p["page"] for p in pages] == list(range(expected_pages))
        and not any(p.get("excluded") for p in pages)
    )
    index = ManifestIndex(
        job_id=job_id,
        state=COMPLETE if complete else PARTIAL,
        pages=pages,
        count=sum(p["count"] for p in pages),
        bytes=sum(p["bytes"] for p in pages),
        created=float(clock()),
        info=info,
    )
    await store.write(
        manifest_index_path(job_id),
        pack(index.to_json()),
        {
            "state": index.state,
            "count": index.count,
            "bytes": index.bytes,
            "created": index.created,
            **{k: info[k] for k in ("dest", "mode") if k in info},
        },
    )
    return index


async def read_index(store: StateStore, job_id: str) -> ManifestIndex | None:
    data = await store.read(manifest_index_path(job_id))
    return ManifestIndex.from_json(unpack(data)) if data is not None else None


async def list_manifests(store: StateStore) -> list[dict[str, Any]]:
    """Every manifest index under the store's prefix (job id, state, counts, created), oldest first."""
    found = []
    async for path, summary in store.summaries(""):
        if path.endswith("/manifest/index.json.gz"):
            found.append({"job_id": path.split("/", 1)[0], **summary})
    return sorted(found, key=lambda m: m.get("created", 0))


async def latest_manifest(store: StateStore, dest: str | None = None, complete_only: bool = False) -> str | None:
    """The newest manifest (optionally for a destination `account/container`, optionally complete only)."""
    for item in reversed(await list_manifests(store)):
        if dest is not None and item.get("dest") != dest:
            continue
        if complete_only and item.get("state") != COMPLETE:
            continue
        return str(item["job_id"])
    return None


def _overlaps(p_lower: str | None, p_upper: str | None, lower: str | None, upper: str | None) -> bool:
    """(p_lower, p_upper] and (lower, upper] intersect (None = unbounded)."""
    if p_lower is not None and upper is not None and order_key(p_lower) >= order_key(upper):
        return False
    return not (lower is not None and p_upper is not None and order_key(lower) >= order_key(p_upper))


class ManifestReader:
    """Reads a manifest back page by page, or the entries of a name range (for incremental decisions)."""

    def __init__(self, store: StateStore, index: ManifestIndex) -> None:
        self.store = store
        self.index = index
        self._cache: dict[int, list[ManifestEntry]] = {}

    @classmethod
    async def open(cls, store: StateStore, job_id: str, complete_only: bool = False) -> ManifestReader:
        index = await read_index(store, job_id)
        if index is None:
            raise CopyInputError(f"manifest {job_id!r} does not exist or was never finished")
        if complete_only and index.state != COMPLETE:
            raise CopyInputError(f"manifest {job_id!r} is {index.state}, not complete")
        return cls(store, index)

    async def page(self, number: int) -> list[ManifestEntry]:
        if number not in self._cache:
            data = await self.store.read(manifest_page_path(self.index.job_id, number))
            if data is None:
                raise CopyInputError(f"manifest {self.index.job_id!r}: page {number} is missing")
            if len(self._cache) >= 2:  # consecutive source pages overlap at most two manifest pages
                self._cache.pop(next(iter(self._cache)))
            self._cache[number] = [ManifestEntry.from_json(e) for e in unpack(data)]
        return self._cache[number]

    async def prefetch(self, lower: str | None) -> None:
        """Load the page holding the first name after lower (where the next source page starts)."""
        for info in self.index.pages:
            if _overlaps(info.get("lower"), info.get("upper"), lower, None):
                await self.page(info["page"])
                return

    async def entries_in(self, lower: str | None, upper: str | None) -> dict[str, ManifestEntry]:
        out: dict[str, ManifestEntry] = {}
        for info in self.index.pages:
            if _overlaps(info.get("lower"), info.get("upper"), lower, upper):
                for entry in await self.page(info["page"]):
                    out[entry.name] = entry
        return out
