"""The one time text: written to the second with Z; every form written so far reads back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.core.clock import from_epoch, parse_iso, to_iso, to_iso_basic, utc_now

MOMENT = datetime(2027, 1, 15, 8, 0, 0, tzinfo=UTC)


def test_one_format_to_the_second() -> None:
    assert to_iso(MOMENT) == "2027-01-15T08:00:00Z"
    assert to_iso(MOMENT.replace(microsecond=999_999)) == "2027-01-15T08:00:00Z"
    assert to_iso(MOMENT.replace(tzinfo=None)) == "2027-01-15T08:00:00Z"  # naive: UTC (the Durable context)
    assert to_iso(MOMENT.astimezone(timezone(timedelta(hours=2)))) == "2027-01-15T08:00:00Z"
    assert to_iso_basic(MOMENT) == "20270115T080000Z"
    assert to_iso(from_epoch(1_800_000_000.25)) == "2027-01-15T08:00:00Z"
    assert utc_now().tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2027-01-15T08:00:00Z",  # to_iso, the orchestrators and the schedule
        "2027-01-15T08:00:00.000000Z",  # the catalog marks (services.now_iso) before this format
        "2027-01-15T08:00:00.0000000Z",  # .NET round-trip (Durable timestamps)
        "2027-01-15T08:00:00+00:00",
        "2027-01-15T10:00:00+02:00",
        "2027-01-15T08:00:00",  # naive: UTC
        "20270115T080000Z",
    ],
)
def test_every_written_form_reads_back(text: str) -> None:
    assert parse_iso(text) == MOMENT and parse_iso(text).tzinfo is UTC


def test_what_is_not_a_time_is_named() -> None:
    with pytest.raises(ValueError, match="'yesterday' is not an ISO 8601 time"):
        parse_iso("yesterday")
