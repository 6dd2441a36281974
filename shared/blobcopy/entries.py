"""One listed blob as the engine keeps it (compact, JSON-able), its property digest, and exact comparison."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from shared.core.codec import JsonRecord, json_options

PROPS = ("content_type", "content_encoding", "content_language", "content_disposition", "cache_control")
_EXPLICIT_TIERS = {"Hot", "Cool", "Cold"}


def order_key(name: str) -> bytes:
    """Blob names in listing order: the service (and Azurite) order by UTF-16 code units, not code points."""
    return name.encode("utf-16-be")


def in_range(name: str, lower: str | None, upper: str | None) -> bool:
    """name in (lower, upper]; None means unbounded on that side."""
    key = order_key(name)
    return (lower is None or key > order_key(lower)) and (upper is None or key <= order_key(upper))


def _epoch(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def _md5(value: Any) -> str | None:
    if not value:
        return None
    return base64.b64encode(bytes(value)).decode("ascii")


@dataclass(slots=True)
class BlobEntry(JsonRecord):
    """A blob's identity and every property the copy must reproduce; copy_* only for destination listings.

    Kept by the thousand in page states: short JSON keys, defaults left out, copy_* never written."""

    name: str = field(metadata=json_options(key="n"))
    etag: str = field(metadata=json_options(key="e"))
    size: int = field(metadata=json_options(key="s"))
    md5: str | None = field(metadata=json_options(key="m"))
    modified: float = field(metadata=json_options(key="t"))
    props: tuple[str | None, ...] = field(metadata=json_options(key="p"))
    metadata: dict[str, str] = field(metadata=json_options(key="md"))
    blob_type: str = field(default="BlockBlob", metadata=json_options(key="bt", omit="BlockBlob"))
    tier: str | None = field(default=None, metadata=json_options(omit=None))
    copy_status: str | None = field(default=None, metadata=json_options(skip=True))
    copy_id: str | None = field(default=None, metadata=json_options(skip=True))
    copy_completed: float | None = field(default=None, metadata=json_options(skip=True))
    extra: dict[str, Any] = field(default_factory=dict, metadata=json_options(key="x", omit={}))
    _digest: str | None = field(default=None, repr=False, compare=False, metadata=json_options(skip=True))

    @classmethod
    def from_properties(cls, blob: Any) -> BlobEntry:
        settings = blob.content_settings
        copy = getattr(blob, "copy", None)
        tier = blob.blob_tier if not getattr(blob, "blob_tier_inferred", True) else None
        return cls(
            name=blob.name,
            etag=str(blob.etag).strip('"'),
            size=int(blob.size or 0),
            md5=_md5(settings.content_md5),
            modified=_epoch(blob.last_modified) or 0.0,
            props=tuple(getattr(settings, p) or None for p in PROPS),
            metadata=dict(blob.metadata or {}),
            blob_type=str(getattr(blob.blob_type, "value", blob.blob_type) or "BlockBlob"),
            tier=str(getattr(tier, "value", tier))
            if tier and str(getattr(tier, "value", tier)) in _EXPLICIT_TIERS
            else None,
            copy_status=getattr(copy, "status", None) if copy else None,
            copy_id=getattr(copy, "id", None) if copy else None,
            copy_completed=_epoch(getattr(copy, "completion_time", None)) if copy else None,
        )

    def digest(self) -> str:
        """SHA-256 (hex, 32 chars) of the content properties and the metadata, keys case-sensitive."""
        if self._digest is None:  # asked for by the decision and again by the manifest
            canonical = json.dumps(
                [list(self.props), sorted(self.metadata.items())], ensure_ascii=False, separators=(",", ":")
            )
            self._digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
        return self._digest

    def written_at(self) -> float:
        """When the destination received this blob: copy completion time, else last modified."""
        return self.copy_completed if self.copy_completed is not None else self.modified

    def content_settings_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for azure.storage.blob.ContentSettings reproducing this blob's properties."""
        kwargs: dict[str, Any] = dict(zip(PROPS, self.props, strict=True))
        kwargs["content_md5"] = bytearray(base64.b64decode(self.md5)) if self.md5 else None
        return kwargs


def differences(source: BlobEntry, dest: BlobEntry) -> list[str]:
    """The fields in which dest does not reproduce source exactly (empty list: identical)."""
    diffs: list[str] = []
    if source.size != dest.size:
        diffs.append("size")
    if source.md5 != dest.md5:
        diffs.append("content_md5")
    diffs.extend(name for name, a, b in zip(PROPS, source.props, dest.props, strict=True) if a != b)
    if source.metadata != dest.metadata:
        diffs.append("metadata")
    return diffs
