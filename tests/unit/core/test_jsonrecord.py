"""The shared record codec: nested records of other codecs, fixed-shape and open tuples, type checks."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from shared.azure.keyvault import SecretRef
from shared.core.codec import JsonRecord, RecordError


@dataclass(frozen=True)
class Timed(JsonRecord):
    timings: tuple[tuple[str, float], ...] = ()
    ref: SecretRef | None = None


def test_fixed_shape_tuples_and_foreign_records_round_trip() -> None:
    value = Timed(timings=(("flush_s", 1.5), ("copy_s", 3)), ref=SecretRef("name", "a" * 32))
    back = Timed.from_json(json.loads(json.dumps(Timed.to_json(value))))
    assert back == Timed(timings=(("flush_s", 1.5), ("copy_s", 3.0)), ref=value.ref)


def test_wrong_shape_and_type_are_named() -> None:
    with pytest.raises(RecordError, match=r"Timed.timings must have 2 items"):
        Timed.from_json({"timings": [["flush_s", 1.0, 2.0]]})
    with pytest.raises(RecordError, match=r"Timed.timings must be float, got str"):
        Timed.from_json({"timings": [["flush_s", "slow"]]})
