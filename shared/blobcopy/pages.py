"""A page's bulky state: its listed blobs, the decision and copy state of each, and delete candidates."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.blobcopy.entries import BlobEntry
from shared.blobcopy.errors import NotReady
from shared.blobcopy.model import PageCursor
from shared.blobcopy.state import StateStore, pack, page_state_path, unpack

# Per-blob statuses. todo/pending are open; the rest are final for this pass.
TODO, PENDING, COPIED, FAILED, SOURCE_CHANGED, SKIPPED = (
    "todo", "pending", "copied", "failed", "source_changed", "skipped")
OPEN = (TODO, PENDING)
# Page statuses, in order.
PLANNED, VERIFIED, UNVERIFIED = "planned", "verified", "unverified"


@dataclass(slots=True)
class BlobTask:
    entry: BlobEntry
    status: str
    copy_id: str | None = None
    started: float | None = None
    tries: int = 0
    error: str | None = None
    written_at: float | None = None  # when dest received it (service time): the manifest's copied_at

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"b": self.entry.to_json(), "st": self.status}
        for key, value in (("cid", self.copy_id), ("t0", self.started), ("k", self.tries or None),
                           ("err", self.error), ("w", self.written_at)):
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlobTask:
        return cls(entry=BlobEntry.from_json(data["b"]), status=data["st"], copy_id=data.get("cid"),
                   started=data.get("t0"), tries=data.get("k", 0), error=data.get("err"),
                   written_at=data.get("w"))


@dataclass
class PageState:
    job_id: str
    page: int
    cursor: PageCursor
    next_cursor: PageCursor | None
    lower: str | None  # the page covers names in (lower, upper]; None = unbounded
    upper: str | None
    tasks: list[BlobTask]
    deletes: list[list[Any]] = field(default_factory=list)  # [name, dest etag, exempt]
    dest_counted: int = 0  # destination blobs in range the guard counts (not pre-copied by this run)
    status: str = PLANNED
    mismatches: int = 0
    problems: list[str] = field(default_factory=list)

    # --- counts -------------------------------------------------------------------------------------------
    def counts(self) -> Counter[str]:
        return Counter(task.status for task in self.tasks)

    def open_tasks(self) -> list[BlobTask]:
        return [task for task in self.tasks if task.status in OPEN]

    def bytes_with(self, *statuses: str) -> int:
        return sum(task.entry.size for task in self.tasks if task.status in statuses)

    def to_copy(self) -> int:
        return sum(1 for task in self.tasks if task.status != SKIPPED)

    def summary(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "st": self.status, "listed": len(self.tasks), "copy": self.to_copy(), "copied": counts[COPIED],
            "skipped": counts[SKIPPED], "failed": counts[FAILED], "sc": counts[SOURCE_CHANGED],
            "open": counts[TODO] + counts[PENDING], "bytes": self.bytes_with(COPIED), "mm": self.mismatches,
            "del": len(self.deletes), "delc": sum(1 for d in self.deletes if not d[2]),
            "dest": self.dest_counted, "final": self.next_cursor is None,
        }

    # --- persistence ----------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "page": self.page, "cursor": self.cursor.to_json(),
            "next_cursor": self.next_cursor.to_json() if self.next_cursor else None,
            "lower": self.lower, "upper": self.upper, "status": self.status,
            "tasks": [task.to_json() for task in self.tasks], "deletes": self.deletes,
            "dest_counted": self.dest_counted, "mismatches": self.mismatches, "problems": self.problems,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageState:
        return cls(
            job_id=data["job_id"], page=data["page"], cursor=PageCursor.from_json(data["cursor"]),
            next_cursor=PageCursor.from_json(data["next_cursor"]) if data["next_cursor"] else None,
            lower=data["lower"], upper=data["upper"], tasks=[BlobTask.from_json(t) for t in data["tasks"]],
            deletes=data["deletes"], dest_counted=data["dest_counted"], status=data["status"],
            mismatches=data["mismatches"], problems=data["problems"],
        )


# A page's state is ~1 MB of JSON: (de)serializing it runs in a thread so the event loop stays responsive
# for the copies of other pages in flight.
def _decode(data: bytes) -> PageState:
    return PageState.from_json(unpack(data))


def _encode(state: PageState) -> tuple[bytes, dict[str, Any]]:
    return pack(state.to_json()), state.summary()


async def load_page(store: StateStore, job_id: str, page: int) -> PageState:
    data = await store.read(page_state_path(job_id, page))
    if data is None:
        raise NotReady(f"job {job_id}: page {page} has not been planned")
    return await asyncio.to_thread(_decode, data)


async def try_load_page(store: StateStore, job_id: str, page: int) -> PageState | None:
    data = await store.read(page_state_path(job_id, page))
    return await asyncio.to_thread(_decode, data) if data is not None else None


async def save_page(store: StateStore, state: PageState) -> None:
    data, summary = await asyncio.to_thread(_encode, state)
    await store.write(page_state_path(state.job_id, state.page), data, summary)
