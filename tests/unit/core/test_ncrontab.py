"""NCRONTAB: parsing, next occurrence across month and year ends (UTC only), and the longest gap for RPO."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.core.ncrontab import longest_gap, parse


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "field", "expected"),
    [
        ("0 0 2 * * *", "hours", (2,)),
        ("*/15 * * * * *", "seconds", (0, 15, 30, 45)),
        ("0 5-10/2 * * * *", "minutes", (5, 7, 9)),
        ("0 0 1,13,22 * * *", "hours", (1, 13, 22)),
        ("0 0 0 * jan,jul *", "months", {1, 7}),
        ("0 0 0 * January-March *", "months", {1, 2, 3}),
        ("0 0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 0 * * SUN,sat", "weekdays", {0, 6}),
        ("0 0 0 * * 7", "weekdays", {0}),
        ("0 0 0 * * 5-7", "weekdays", {5, 6, 0}),
        ("0 0 0 * * 1/2", "weekdays", {1, 3, 5}),  # NCrontab: "a/n" runs to the field's end (6), never 7
        ("0 50/5 * * * *", "minutes", (50, 55)),
        ("0 0 0 10/10 * *", "days", {10, 20, 30}),
    ],
)
def test_field_forms(expr: str, field: str, expected: object) -> None:
    value = getattr(parse(expr), field)
    assert value == (frozenset(expected) if isinstance(expected, set) else expected)


def test_five_fields_mean_no_seconds() -> None:
    five = parse("30 9 * * 1-5")
    assert five.seconds == (0,)
    assert five.minutes == (30,)
    assert five.hours == (9,)
    assert five.next_after(utc(2025, 1, 3, 9, 30)) == utc(2025, 1, 6, 9, 30)  # Friday -> Monday


@pytest.mark.parametrize(
    ("expr", "field"),
    [
        ("0 0 25 * * *", "hour"),
        ("60 * * * * *", "second"),
        ("0 60 * * * *", "minute"),
        ("0 0 0 0 * *", "day"),
        ("0 0 0 32 * *", "day"),
        ("0 0 0 * 13 *", "month"),
        ("0 0 0 * foo *", "month"),
        ("0 0 0 * * 8", "day-of-week"),
        ("0 0 0 * * mo", "day-of-week"),  # names need three letters
        ("*/0 * * * * *", "second"),
        ("0 10-5 * * * *", "minute"),
        ("0 1,,2 * * * *", "minute"),
        ("0 0 x * * *", "hour"),
        ("0 0 * L * *", "day"),
        ("0 0 0 ? * *", "day"),
    ],
)
def test_bad_fields_are_named(expr: str, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} field"):
        parse(expr)


@pytest.mark.parametrize("expr", ["", "* * * *", "0 0 0 * * * *", "0 0 0 * * * 2025"])
def test_wrong_field_count(expr: str) -> None:
    with pytest.raises(ValueError, match="fields"):
        parse(expr)


def test_schedule_that_never_fires_is_refused() -> None:
    with pytest.raises(ValueError, match="never fires"):
        parse("0 0 0 30 2 *")
    with pytest.raises(ValueError, match="never fires"):
        parse("0 0 0 31 4,6,9,11 *")
    assert parse("0 0 0 29 2 *").next_after(utc(2025, 1, 1)) == utc(2028, 2, 29)


def test_host_strict_refuses_what_ncrontab_refuses() -> None:
    with pytest.raises(ValueError, match="Sunday as 0"):
        parse("0 0 0 * * 7", host_strict=True)
    with pytest.raises(ValueError, match="spaces only"):
        parse("0\t0 0 * * *", host_strict=True)
    assert parse("0 0 0 * * 0", host_strict=True).weekdays == frozenset({0})


def test_not_a_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 2 * * *", utc(2025, 3, 1, 1, 0), utc(2025, 3, 1, 2, 0)),
        ("0 0 2 * * *", utc(2025, 3, 1, 2, 0), utc(2025, 3, 2, 2, 0)),  # strictly after
        ("0 0 2 * * *", utc(2025, 1, 31, 3, 0), utc(2025, 2, 1, 2, 0)),  # month end
        ("0 0 2 * * *", utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1, 2, 0)),  # year end
        ("59 59 23 31 12 *", utc(2025, 12, 31, 23, 59, 59), utc(2026, 12, 31, 23, 59, 59)),
        ("*/10 * * * * *", utc(2025, 12, 31, 23, 59, 55), utc(2026, 1, 1, 0, 0, 0)),
        ("0 0 0 31 * *", utc(2025, 1, 31, 0, 0, 1), utc(2025, 3, 31)),  # skips February
        ("0 0 0 29 2 *", utc(2024, 2, 29, 0, 0, 1), utc(2028, 2, 29)),  # next leap year
        ("0 0 0 13 * fri", utc(2025, 1, 1), utc(2025, 6, 13)),  # day AND weekday, as NCrontab does
        ("0 0 12 * * sat", utc(2025, 6, 30), utc(2025, 7, 5, 12)),
        ("0 30 9 1 jan *", utc(2025, 1, 1, 9, 30), utc(2026, 1, 1, 9, 30)),
    ],
)
def test_next_after(expr: str, after: datetime, expected: datetime) -> None:
    got = parse(expr).next_after(after)
    assert got == expected
    assert got.tzinfo is UTC


def test_next_after_drops_sub_second_part() -> None:
    assert parse("* * * * * *").next_after(utc(2025, 1, 1, 0, 0, 0) + timedelta(microseconds=999_999)) == utc(
        2025, 1, 1, 0, 0, 1
    )


def test_utc_only_daylight_saving_is_irrelevant() -> None:
    schedule = parse("0 30 2 * * *")
    new_york = ZoneInfo("America/New_York")
    # 2025-03-09 02:30 does not exist in New York (clocks jump 02:00 -> 03:00); in UTC it is an ordinary day.
    local = datetime(2025, 3, 8, 23, 0, tzinfo=new_york)  # = 2025-03-09 04:00 UTC
    assert schedule.next_after(local) == utc(2025, 3, 10, 2, 30)
    fall = datetime(2025, 11, 2, 1, 30, fold=1, tzinfo=new_york)  # the repeated hour, = 06:30 UTC
    assert schedule.next_after(fall) == utc(2025, 11, 3, 2, 30)
    with pytest.raises(ValueError, match="aware"):
        schedule.next_after(datetime(2025, 1, 1))  # naive on purpose


def test_matches() -> None:
    schedule = parse("0 0 2 * * mon")
    assert schedule.matches(utc(2025, 1, 6, 2))
    assert not schedule.matches(utc(2025, 1, 7, 2))
    assert not schedule.matches(utc(2025, 1, 6, 2, 0, 1))
    assert not schedule.matches(utc(2025, 1, 6, 2) + timedelta(microseconds=1))
    assert schedule.matches(datetime(2025, 1, 5, 21, tzinfo=ZoneInfo("America/New_York")))  # = Mon 02:00 UTC


@pytest.mark.parametrize("expr", ["0 */7 * * * *", "0 0 */5 * * mon-fri", "30 15 3 1,15,31 * *", "0 0 0 * feb sun"])
def test_next_after_agrees_with_brute_force(expr: str) -> None:
    """Walk minute by minute and compare with next_after's chain: an independent oracle."""
    schedule = parse(expr)
    start = utc(2025, 1, 25)
    end = start + timedelta(days=40)
    expected = []
    t = start
    while t < end:
        for second in schedule.seconds:
            c = t.replace(second=second)
            fires = (
                c.minute in schedule.minutes
                and c.hour in schedule.hours
                and c.day in schedule.days
                and c.month in schedule.months
                and (c.isoweekday() % 7) in schedule.weekdays
            )
            if fires and c > start:
                expected.append(c)
        t += timedelta(minutes=1)
    got = []
    t = start
    while (t := schedule.next_after(t)) < end:
        got.append(t)
    assert got == expected
    assert got  # every expression above fires in the window


@pytest.mark.parametrize(
    ("expr", "gap"),
    [
        ("0 0 2 * * *", timedelta(hours=24)),
        ("0 0 */6 * * *", timedelta(hours=6)),
        ("*/10 * * * * *", timedelta(seconds=10)),
        ("0 30 9 * * 1-5", timedelta(days=3)),  # Friday 09:30 -> Monday 09:30
        ("0 0 2 1,15 * *", timedelta(days=17)),  # Jan 15 -> Feb 1
        ("0 0 1,23 * * *", timedelta(hours=22)),
        ("0 0 0 29 2 *", timedelta(days=1461)),  # only in leap years
    ],
)
def test_longest_gap(expr: str, gap: timedelta) -> None:
    assert longest_gap(expr, utc(2025, 1, 1)) == gap


def test_longest_gap_defaults_to_this_year_and_takes_a_schedule() -> None:
    assert longest_gap(parse("0 0 2 * * *")) == timedelta(hours=24)
    assert longest_gap("* * * * * *") == timedelta(seconds=1)


def test_including_seconds_asks_for_one_form() -> None:
    """NCrontab's IncludingSeconds option (the local runner's `serve` asks for the six-field form)."""
    assert parse("0 */5 * * * *", including_seconds=True).minutes == tuple(range(0, 60, 5))
    assert parse("*/5 * * * *", including_seconds=False).seconds == (0,)
    with pytest.raises(ValueError, match="needs 6 here"):
        parse("* * * * *", including_seconds=True)
    with pytest.raises(ValueError, match="needs 5 here"):
        parse("0 * * * * *", including_seconds=False)
