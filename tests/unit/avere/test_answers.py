"""Cluster answers the runbook decides on are read strictly: missing or garbled is never a default."""

from __future__ import annotations

from typing import Any

import pytest

from shared.avere.answers import count as _count
from shared.avere.answers import percent as _percent


@pytest.mark.parametrize("value,expected", [(0, 0), (3, 3), ("0", 0), ("12", 12), (7.0, 7), ("7.0", 7)])
def test_counts_in_every_int64_representation(value: Any, expected: int) -> None:
    assert _count(value) == expected


@pytest.mark.parametrize("value", [None, "", "none", "x", -1, 1.5, float("nan"), float("inf"), True, False, [], {}])
def test_a_missing_or_garbled_count_is_unknown_not_zero(value: Any) -> None:
    assert _count(value) is None


@pytest.mark.parametrize(
    "value,state,expected",
    [
        (None, "success", 100),
        ("x", "inprogress", 0),
        (250, "inprogress", 100),
        (-5, "inprogress", 0),
        ("42", "inprogress", 42),
    ],
)
def test_percent_is_for_display_and_bounded(value: Any, state: str, expected: int) -> None:
    assert _percent(value, state) == expected
