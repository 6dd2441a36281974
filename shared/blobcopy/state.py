"""Where a job keeps its bulky state: gzip'd JSON blobs in the catalog container (or memory, for the CLI)."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

_SUMMARY_KEY = "summary"


def pack(obj: Any) -> bytes:
    return gzip.compress(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 5)


def unpack(data: bytes) -> Any:
    return json.loads(gzip.decompress(data).decode("utf-8"))


def _encode_summary(summary: dict[str, Any]) -> str:
    raw = json.dumps(summary, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_summary(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    return json.loads(base64.urlsafe_b64decode(value.encode("ascii")).decode("utf-8"))


class StateStore(Protocol):
    """Blobs addressed by relative path, each with an optional small summary listed cheaply with it."""

    async def read(self, path: str) -> bytes | None: ...

    async def write(self, path: str, data: bytes, summary: dict[str, Any] | None = None) -> None: ...

    def summaries(self, prefix: str) -> AsyncIterator[tuple[str, dict[str, Any]]]: ...

    async def exists(self, path: str) -> bool: ...


class BlobStateStore:
    """State blobs under a prefix of the catalog container; summaries ride in blob metadata so one
    listing (5,000 per call) returns them all."""

    def __init__(self, container: Any, prefix: str) -> None:
        self._container = container
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._ensured = False

    def full(self, path: str) -> str:
        return self._prefix + path

    async def ensure_container(self) -> None:
        if self._ensured:
            return
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()
        self._ensured = True

    async def read(self, path: str) -> bytes | None:
        try:
            stream = await self._container.download_blob(self.full(path))
            return await stream.readall()
        except ResourceNotFoundError:
            return None

    async def write(self, path: str, data: bytes, summary: dict[str, Any] | None = None) -> None:
        metadata = {_SUMMARY_KEY: _encode_summary(summary)} if summary is not None else None
        try:
            await self._container.upload_blob(self.full(path), data, overwrite=True, metadata=metadata)
        except ResourceNotFoundError:
            await self.ensure_container()
            await self._container.upload_blob(self.full(path), data, overwrite=True, metadata=metadata)

    async def exists(self, path: str) -> bool:
        try:
            await self._container.get_blob_client(self.full(path)).get_blob_properties()
            return True
        except ResourceNotFoundError:
            return False

    async def summaries(self, prefix: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        full = self.full(prefix)
        try:
            async for blob in self._container.list_blobs(name_starts_with=full, include=["metadata"]):
                yield blob.name[len(self._prefix) :], _decode_summary((blob.metadata or {}).get(_SUMMARY_KEY))
        except ResourceNotFoundError:
            return


@dataclass
class MemoryStateStore:
    """In-process state for a CLI run without --catalog: the backup container never holds state."""

    blobs: dict[str, tuple[bytes, dict[str, Any] | None]] = field(default_factory=dict)

    async def read(self, path: str) -> bytes | None:
        item = self.blobs.get(path)
        return item[0] if item else None

    async def write(self, path: str, data: bytes, summary: dict[str, Any] | None = None) -> None:
        self.blobs[path] = (data, summary)

    async def exists(self, path: str) -> bool:
        return path in self.blobs

    async def summaries(self, prefix: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        for path in sorted(self.blobs):
            if path.startswith(prefix):
                yield path, self.blobs[path][1] or {}

    async def ensure_container(self) -> None:
        return None


# --- paths of one job's state and manifest ------------------------------------------------------------------
def page_state_path(job_id: str, page: int) -> str:
    return f"{job_id}/state/page-{page:06d}.json.gz"


def state_prefix(job_id: str) -> str:
    return f"{job_id}/state/"


def manifest_page_path(job_id: str, page: int) -> str:
    return f"{job_id}/manifest/page-{page:06d}.json.gz"


def manifest_prefix(job_id: str) -> str:
    return f"{job_id}/manifest/page-"


def manifest_index_path(job_id: str) -> str:
    return f"{job_id}/manifest/index.json.gz"


def summary_path(job_id: str) -> str:
    return f"{job_id}/summary.json.gz"


def approval_ref(job_id: str) -> str:
    return f"{job_id}/approval"


def approval_part_path(job_id: str, page: int) -> str:
    return f"{approval_ref(job_id)}/deletes-{page:06d}.json.gz"


def applied_path(job_id: str) -> str:
    return f"{approval_ref(job_id)}/applied.json.gz"


def page_number(path: str) -> int:
    return int(path.rsplit("page-", 1)[1].split(".", 1)[0])
