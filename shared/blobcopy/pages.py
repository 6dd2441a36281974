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
from shared.core.codec import JsonRecord, json_options

# Per-blob statuses. todo/pending are open; the rest are final for this pass.
TODO, PENDING, COPIED, FAILED, SOURCE_CHANGED, SKIPPED = (
    "todo",
    "pending",
    "copied",
    "failed",
    "source_changed",
    "skipped",
)
OPEN = (TODO, PENDING)
# Page statuses, in order.
PLANNED, VERIFIED, UNVERIFIED = "planned", "verified", "unverified"


@dataclass(slots=True)
class BlobTask(JsonRecord):
    entry: BlobEntry = field(metadata=json_options(key="b"))
    status: str = field(metadata=json_options(key="st"))
    copy_id: str | None = field(default=None, metadata=json_options(key="cid", omit=None))
    started: float | None = field(default=None, metadata=json_options(key="t0", omit=None))
    tries: int = field(default=0, metadata=json_options(key="k", omit=0))
    error: str | None = field(default=None, metadata=json_options(key="err", omit=None))
    # when dest received it (service time): the manifest's copied_at
    written_at: float | None = field(default=None, metadata=json_options(key="w", omit=None))
    # copying it overwrites a blob the destination holds (the change guard counts and holds these); out of
    # repr and left out when False, so page states written before the change guard read the same
    over: bool = field(default=False, repr=False, metadata=json_options(key="o", omit=False))


@dataclass
class PageState(JsonRecord):
    job_id: str
    page: int
    cursor: PageCursor
    next_cursor: PageCursor | None
    lower: str | None  # the page covers names in (lower, upper]; None = unbounded
    upper: str | None
    tasks: list[BlobTask]
    deletes: list[list[Any]] = field(default_factory=list)  # [name, dest etag, exempt]
    dest_counted: int = 0  # destination blobs in range the guard counts (not pre-copied by this run)
    # destination blobs in range the change guard counts (not pre-copied by this run); out of repr, 0 left out
    existing: int = field(default=0, repr=False, metadata=json_options(omit=0))
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
            "st": self.status,
            "listed": len(self.tasks),
            "copy": self.to_copy(),
            "copied": counts[COPIED],
            "skipped": counts[SKIPPED],
            "failed": counts[FAILED],
            "sc": counts[SOURCE_CHANGED],
            "open": counts[TODO] + counts[PENDING],
            "bytes": self.bytes_with(COPIED),
            "mm": self.mismatches,
            "del": len(self.deletes),
            "delc": sum(1 for d in self.deletes if not d[2]),
            "dest": self.dest_counted,
            "final": self.next_cursor is None,
            "ow": self.overwrites(),
            "ex": self.existing,
        }

    def overwrites(self) -> int:
        """Blobs of the destination this page overwrites (or would: the change guard's count)."""
        return sum(1 for task in self.tasks if task.over)

    def held_overwrites(self) -> int:
        """Overwrites not started yet: what the change guard must have cleared before they start."""
        return sum(1 for task in self.tasks if task.over and task.status == TODO)


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
