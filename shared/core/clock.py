"""UTC time and its one text form, ISO 8601 to the second (`2027-01-15T08:00:00Z`), for catalog, payloads, status.

The text sorts as time does, so catalog fields compare as strings. `parse_iso` reads every form this app has
written: that one, with fractional seconds (catalog marks before this module: `...:00.123456Z`), with `+00:00`,
.NET's seven fractional digits (Durable timestamps), and naive text, taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ISO_BASIC_FORMAT = "%Y%m%dT%H%M%SZ"  # the same instant in ISO 8601's basic form, for identifiers


def utc_now() -> datetime:
    """The current time, an aware UTC datetime (orchestrators use their context's time instead)."""
    return datetime.now(UTC)


def from_epoch(seconds: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def _utc(moment: datetime) -> datetime:
    # A naive datetime is UTC here: the Durable context's current_utc_datetime may come without a zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_iso(moment: datetime) -> str:
    """`2027-01-15T08:00:00Z`: the instant in UTC, to the second."""
    return _utc(moment).strftime(ISO_FORMAT)


def to_iso_basic(moment: datetime) -> str:
    """`20270115T080000Z`: the same, without separators (backup ids begin with it)."""
    return _utc(moment).strftime(ISO_BASIC_FORMAT)


def parse_iso(text: str) -> datetime:
    """An aware UTC datetime from any ISO 8601 form written so far; ValueError naming the text otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 time, got {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 time (e.g. 2027-01-15T08:00:00Z)") from None
    return _utc(moment)
