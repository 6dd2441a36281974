"""Verification: copied blobs against their source listing, and a backup against its manifest alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.blobcopy.entries import BlobEntry, differences
from shared.blobcopy.listing import range_map
from shared.blobcopy.manifest import ManifestEntry, ManifestReader
from shared.blobcopy.pages import BlobTask
from shared.blobcopy.session import DEST_INCLUDE, Session

MAX_PROBLEMS = 20  # examples kept in reports; counts are always complete


async def verify_copied(session: Session, tasks: list[BlobTask]) -> list[str]:
    """Each copied blob's size, MD5, content properties and metadata equal the source, and (Copy Blob engine)
    its copy status is `success`; returns problems. The destination is read with its copy details whether it
    is looked up blob by blob or listed by range, so the status check holds for any number of blobs."""
    view = await session.dest_view([t.entry.name for t in tasks], include=DEST_INCLUDE)
    by_copy_blob = session.job.engine == "copy"
    problems: list[str] = []
    for task in tasks:
        dest = view.get(task.entry.name)
        if dest is None:
            problems.append(f"{task.entry.name}: missing")
            continue
        status_problem = copy_status_problem(dest, by_copy_blob)
        if status_problem:
            problems.append(f"{task.entry.name}: {status_problem}")
            continue
        diffs = differences(task.entry, dest)
        if diffs:
            problems.append(f"{task.entry.name}: {', '.join(diffs)}")
    return problems


def copy_status_problem(dest: BlobEntry, by_copy_blob: bool) -> str:
    """A blob written by Copy Blob must show copy status `success`; block-from-URL leaves none. Anything else
    (pending, failed, aborted, or no status where Copy Blob wrote the blob) is a problem."""
    if dest.copy_status == "success" or (dest.copy_status is None and not by_copy_blob):
        return ""
    return f"copy {dest.copy_status or 'status missing'}"


def manifest_differences(expected: ManifestEntry, dest: BlobEntry) -> list[str]:
    diffs = []
    if expected.size != dest.size:
        diffs.append("size")
    if expected.md5 != dest.md5:
        diffs.append("content_md5")
    if expected.digest != dest.digest():
        diffs.append("properties/metadata")
    if dest.copy_status not in (None, "success"):
        diffs.append(f"copy {dest.copy_status}")
    return diffs


@dataclass
class ManifestCheck:
    """A destination checked against a manifest: counts, bytes, and a few example problems."""

    manifest: str
    state: str
    pages: int = 0
    checked: int = 0
    missing: int = 0
    mismatched: int = 0
    extra: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.state == "complete" and not (self.missing or self.mismatched or self.extra)

    def add(self, other: ManifestCheck) -> None:
        for name in ("pages", "checked", "missing", "mismatched", "extra", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems[: MAX_PROBLEMS - len(self.problems)])

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "state": self.state,
            "verified": self.verified,
            "pages": self.pages,
            "checked": self.checked,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "extra": self.extra,
            "bytes": self.bytes,
            "problems": list(self.problems),
        }


async def check_manifest_page(dest: Any, reader: ManifestReader, position: int) -> ManifestCheck:
    """One manifest page against the destination's blobs in the same name range (no source needed).
    Ranges of consecutive pages tile the namespace, so blobs outside every page are found as extra."""
    info = reader.index.pages[position]
    lower = reader.index.pages[position - 1].get("upper") if position > 0 else None
    upper = info.get("upper") if position < len(reader.index.pages) - 1 else None
    expected = {e.name: e for e in await reader.page(info["page"])}
    found = await range_map(dest, lower, upper, include=DEST_INCLUDE)
    check = ManifestCheck(manifest=reader.index.job_id, state=reader.index.state, pages=1)
    for name, entry in expected.items():
        got = found.get(name)
        check.checked += 1
        if got is None:
            check.missing += 1
            _note(check, f"{name}: missing")
            continue
        diffs = manifest_differences(entry, got)
        if diffs:
            check.mismatched += 1
            _note(check, f"{name}: {', '.join(diffs)}")
        else:
            check.bytes += got.size
    for name in found.keys() - expected.keys():
        check.extra += 1
        _note(check, f"{name}: not in the manifest")
    return check


def _note(check: ManifestCheck, problem: str) -> None:
    if len(check.problems) < MAX_PROBLEMS:
        check.problems.append(problem)
