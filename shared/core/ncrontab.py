"""NCRONTAB schedules as the Azure Functions timer trigger reads them: parse, next occurrence, longest gap."""

from __future__ import annotations

import calendar
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shared.core.clock import utc_now


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


# The 6-field order, seconds first.
_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field(
        "month",
        1,
        12,
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
    ),
    _Field("day-of-week", 0, 6, ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")),
)
_FIELD_COUNTS = {None: (5, 6), True: (6,), False: (5,)}
_FIELD_COUNT_NEEDS = {
    None: "6 (second minute hour day month day-of-week) or 5 (without seconds)",
    True: "6 here (second minute hour day month day-of-week)",
    False: "5 here (minute hour day month day-of-week)",
}
# NCrontab matches a name by prefix; three letters is where every name becomes unambiguous.
_MIN_NAME_PREFIX = 3
# Feb 29 on a given weekday can be 28+ years away (and 2100 is not a leap year).
_SEARCH_YEARS = 60


@dataclass(frozen=True)
class Schedule:
    """A parsed NCRONTAB expression; every instant is UTC and day and day-of-week must both match."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in cron

    def matches(self, dt: datetime) -> bool:
        """Whether the schedule fires at this instant (to the second)."""
        t = _as_utc(dt)
        return (
            t.second in self.seconds
            and t.minute in self.minutes
            and t.hour in self.hours
            and self._day_matches(t.date())
            and t.microsecond == 0
        )

    def next_after(self, dt: datetime) -> datetime:
        """The first firing strictly after dt, as an aware UTC datetime."""
        start = _as_utc(dt).replace(microsecond=0) + timedelta(seconds=1)
        day = start.date()
        first_time = (start.hour, start.minute, start.second)
        limit = date(min(day.year + _SEARCH_YEARS, 9999), 1, 1)
        while day < limit:
            if day.month not in self.months:
                day = _first_of_next_month(day)
                first_time = (0, 0, 0)
                continue
            if self._day_matches(day):
                hit = self._first_time_at_or_after(first_time)
                if hit is not None:
                    return datetime(day.year, day.month, day.day, *hit, tzinfo=UTC)
            day += timedelta(days=1)
            first_time = (0, 0, 0)
        raise ValueError(f"schedule {self.expression!r} does not fire within {_SEARCH_YEARS} years of {dt}")

    def firing_days(self, start: date, end: date) -> list[date]:
        """Days in [start, end) on which the schedule fires."""
        out: list[date] = []
        day = start
        while day < end:
            if day.month in self.months and self._day_matches(day):
                out.append(day)
            day += timedelta(days=1)
        return out

    def _day_matches(self, day: date) -> bool:
        # NCrontab requires both fields to match (unlike Vixie cron, which ORs them).
        return day.month in self.months and day.day in self.days and (day.isoweekday() % 7) in self.weekdays

    def _first_time_at_or_after(self, at: tuple[int, int, int]) -> tuple[int, int, int] | None:
        for hour in self.hours:
            if hour < at[0]:
                continue
            for minute in self.minutes:
                if (hour, minute) < at[:2]:
                    continue
                for second in self.seconds:
                    if (hour, minute, second) >= at:
                        return hour, minute, second
        return None

    def times_of_day(self) -> list[int]:
        """Seconds after midnight at which the schedule fires on a firing day, ascending."""
        return [h * 3600 + m * 60 + s for h in self.hours for m in self.minutes for s in self.seconds]


def parse(expr: str, *, host_strict: bool = False, including_seconds: bool | None = None) -> Schedule:
    """Parse a 6-field (seconds first) or 5-field NCRONTAB expression.

    host_strict rejects what the Functions host's NCrontab rejects although cron users expect it
    (day-of-week 7 for Sunday): use it for schedules the host itself evaluates.
    including_seconds is NCrontab's ParseOptions.IncludingSeconds: True takes only the 6-field form, False only
    the 5-field one; None takes either, by its field count, as the Functions host's timer trigger does.
    """
    if not isinstance(expr, str):
        raise ValueError(f"a schedule must be a string, got {type(expr).__name__}")
    tokens = expr.split()
    if host_strict and any(c.isspace() and c != " " for c in expr):
        raise ValueError(f"schedule {expr!r}: the Functions host separates fields with spaces only")
    if len(tokens) not in _FIELD_COUNTS[including_seconds]:
        raise ValueError(
            f"schedule {expr!r} has {len(tokens)} fields; NCRONTAB needs " + _FIELD_COUNT_NEEDS[including_seconds]
        )
    if len(tokens) == 5:
        tokens = ["0", *tokens]
    values = [_parse_field(tok, field, host_strict=host_strict) for tok, field in zip(tokens, _FIELDS, strict=True)]
    schedule = Schedule(
        expression=expr,
        seconds=tuple(sorted(values[0])),
        minutes=tuple(sorted(values[1])),
        hours=tuple(sorted(values[2])),
        days=frozenset(values[3]),
        months=frozenset(values[4]),
        weekdays=frozenset(values[5]),
    )
    if not any(d <= _max_days(m) for m in schedule.months for d in schedule.days):
        raise ValueError(
            f"schedule {expr!r} never fires: no month among {sorted(schedule.months)} has a day {sorted(schedule.days)}"
        )
    return schedule


def longest_gap(expr: str | Schedule, start: datetime | None = None) -> timedelta:
    """The longest time between consecutive firings that start within a year from start.

    start defaults to the beginning of the current UTC year; the gap after the year's last firing
    (to the next one) counts, so schedules that fire rarely (Feb 29) report their real gap.
    """
    schedule = expr if isinstance(expr, Schedule) else parse(expr)
    origin = (_as_utc(start) if start is not None else datetime(utc_now().year, 1, 1, tzinfo=UTC)).date()
    end = (
        origin.replace(year=origin.year + 1)
        if not (origin.month == 2 and origin.day == 29)
        else date(origin.year + 1, 3, 1)
    )
    days = schedule.firing_days(origin, end)
    if not days:
        first = schedule.next_after(datetime(origin.year, origin.month, origin.day, tzinfo=UTC) - timedelta(seconds=1))
        days = [first.date()]
    after = schedule.next_after(datetime(days[-1].year, days[-1].month, days[-1].day, 23, 59, 59, tzinfo=UTC))
    days.append(after.date())
    times = schedule.times_of_day()
    within = max((b - a for a, b in itertools.pairwise(times)), default=0)
    across = max((b - a).days * 86400 + times[0] - times[-1] for a, b in itertools.pairwise(days))
    return timedelta(seconds=max(within, across))


def _parse_field(token: str, field: _Field, *, host_strict: bool) -> set[int]:
    name, low, high = field.name, field.low, field.high
    # Day-of-week 7 is Sunday for cron users; NCrontab (the host) rejects it.
    top = 7 if name == "day-of-week" and not host_strict else high
    out: set[int] = set()
    for part in token.split(","):
        if not part:
            raise ValueError(f"{name} field {token!r}: empty list item")
        body, step = part, 1
        if "/" in part:
            body, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name} field {token!r}: step {step_text!r} must be a positive integer")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, field, top, token), _value(b, field, top, token)
            if first > last:
                raise ValueError(f"{name} field {token!r}: range {body!r} runs backwards")
        else:
            first = _value(body, field, top, token)
            # NCrontab reads "a/n" as "from a to the field's end, every n".
            last = high if "/" in part else first
        out.update(0 if (name == "day-of-week" and v == 7) else v for v in range(first, last + 1, step))
    return out


def _value(text: str, field: _Field, top: int, token: str) -> int:
    if text.isdigit():
        value = int(text)
        if not field.low <= value <= top:
            hint = " (the Functions host reads Sunday as 0 or sun only)" if value == 7 and top == 6 else ""
            raise ValueError(f"{field.name} field {token!r}: {value} is outside {field.low}-{top}{hint}")
        return value
    lowered = text.lower()
    if field.names and len(lowered) >= _MIN_NAME_PREFIX:
        for index, full in enumerate(field.names):
            if full.startswith(lowered):
                return field.low + index
    if field.names:
        raise ValueError(
            f"{field.name} field {token!r}: {text!r} is not a number {field.low}-{top} or a "
            f"name ({', '.join(n[:3] for n in field.names)})"
        )
    raise ValueError(f"{field.name} field {token!r}: {text!r} is not a number {field.low}-{top}")


def _max_days(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("schedules work in UTC: pass an aware datetime (e.g. shared.core.clock.utc_now())")
    return dt.astimezone(UTC)
