"""Per-page decisions (pure): copy new or changed blobs, skip unchanged ones, find deletes for a mirror."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.blobcopy.entries import BlobEntry, differences
from shared.blobcopy.manifest import ManifestEntry
from shared.blobcopy.pages import SKIPPED, TODO, BlobTask


@dataclass
class Decisions:
    tasks: list[BlobTask]
    deletes: list[list[Any]] = field(default_factory=list)  # [name, dest etag, exempt]
    dest_counted: int = 0
    existing: int = 0  # destination blobs in range the change guard counts (not pre-copied by this run)


def changed_since_manifest(src: BlobEntry, prev: ManifestEntry | None) -> bool:
    """New or changed against what the destination last received: ETag, size, MD5, properties/metadata,
    or modified after the copy completed (many blobs carry no MD5)."""
    if prev is None:
        return True
    if (src.etag, src.size, src.md5, src.digest()) != (prev.etag, prev.size, prev.md5, prev.digest):
        return True
    return prev.copied_at is None or src.modified > prev.copied_at


def changed_against_dest(src: BlobEntry, dest: BlobEntry | None) -> bool:
    """Without a manifest: the destination's own listing (size, MD5, properties, metadata, copy state, and
    a source modified after the destination received its copy)."""
    if dest is None or dest.copy_status not in (None, "success"):
        return True
    if differences(src, dest):
        return True
    return src.modified > dest.written_at()


def decide(
    sources: list[BlobEntry],
    mode: str,
    previous: Mapping[str, ManifestEntry] | None,
    dest: Mapping[str, BlobEntry] | None,
    exempt: Mapping[str, ManifestEntry] | None = None,
) -> Decisions:
    """Tasks for one page. previous: entries of the last manifest for this destination (if any); dest: the
    destination's blobs in the page's name range (listed for mirror, or when there is no manifest);
    exempt: the same run's precopy manifest (blobs it copied are not counted by the delete guard)."""
    tasks: list[BlobTask] = []
    for src in sources:
        if mode == "full":
            changed = True
        elif previous is not None:
            changed = changed_since_manifest(src, previous.get(src.name))
            if not changed and dest is not None and src.name not in dest:
                changed = True  # the manifest says so, but the destination lost it
        else:
            changed = changed_against_dest(src, dest.get(src.name) if dest is not None else None)
        if changed:
            tasks.append(BlobTask(entry=src, status=TODO, over=_held(src.name, previous, dest, exempt)))
        else:
            written = _written_at(src.name, previous, dest)
            tasks.append(BlobTask(entry=src, status=SKIPPED, written_at=written))
    decisions = Decisions(tasks=tasks)
    destination = dest if dest is not None else previous
    decisions.existing = sum(1 for name in destination or () if not _copied_by_precopy(name, exempt))
    if mode == "mirror" and dest is not None:
        names = {src.name for src in sources}
        for name, entry in dest.items():
            is_exempt = bool(exempt and (hit := exempt.get(name)) is not None and hit.copied)
            if not is_exempt:
                decisions.dest_counted += 1
            if name not in names:
                decisions.deletes.append([name, entry.etag, is_exempt])
    return decisions


def _copied_by_precopy(name: str, exempt: Mapping[str, ManifestEntry] | None) -> bool:
    hit = exempt.get(name) if exempt else None
    return hit is not None and hit.copied


def _held(
    name: str,
    previous: Mapping[str, ManifestEntry] | None,
    dest: Mapping[str, BlobEntry] | None,
    exempt: Mapping[str, ManifestEntry] | None,
) -> bool:
    """Whether copying `name` overwrites a blob the destination holds from before this run: the destination's
    listing says so, or (not listed) the manifest of what it last received. A blob the same run's precopy
    wrote is its own, not counted again."""
    listing = dest if dest is not None else previous
    return listing is not None and name in listing and not _copied_by_precopy(name, exempt)


def _written_at(
    name: str, previous: Mapping[str, ManifestEntry] | None, dest: Mapping[str, BlobEntry] | None
) -> float | None:
    if previous is not None and name in previous:
        return previous[name].copied_at
    if dest is not None and name in dest:
        return dest[name].written_at()
    return None
