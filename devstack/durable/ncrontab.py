"""A small NCRONTAB reader (six fields, seconds first, UTC) for timer-triggered functions under `serve`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {4: {m: i + 1 for i, m in enumerate(_MONTHS)}, 5: {d: i for i, d in enumerate(_DAYS)}}


@dataclass(frozen=True)
class Schedule:
    """A parsed `{second} {minute} {hour} {day} {month} {day-of-week}` expression."""

    expression: str
    fields: tuple[frozenset[int], ...]

    def next_after(self, epoch: float) -> float:
        """The first matching second strictly after epoch (searching up to about five years ahead)."""
        start = dt.datetime.fromtimestamp(int(epoch) + 1, dt.UTC)
        seconds, minutes, hours, days, months, weekdays = self.fields
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(366 * 5):
            # NCRONTAB ANDs day-of-month and day-of-week (unlike classic cron's OR).
            if day.month in months and day.day in days and (day.isoweekday() % 7) in weekdays:
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        for second in sorted(seconds):
                            moment = day.replace(hour=hour, minute=minute, second=second)
                            if moment >= start:
                                return moment.timestamp()
            day += dt.timedelta(days=1)
        raise ValueError(f"schedule {self.expression!r} never fires")


def parse(expression: str) -> Schedule:
    parts = expression.split()
    if len(parts) != 6:
        raise ValueError(f"NCRONTAB {expression!r} needs 6 fields (second minute hour day month day-of-week)")
    return Schedule(expression, tuple(_field(part, n) for n, part in enumerate(parts)))


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for item in text.lower().split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {text!r}")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _value(a, index), _value(b, index)
        else:
            first = _value(body, index)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high and first <= last):
            raise ValueError(f"{text!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    if text[:3] in names:
        return names[text[:3]]
    value = int(text)
    return 0 if index == 5 and value == 7 else value
