"""A drill pins the generation it reads: no backup chooses it, the pin goes with the drill, and the state document
of a filer no drill ever pinned is written exactly as before pins existed."""

from __future__ import annotations

import pytest

from shared.catalog.generations import begin_writing, choose_generation, finish_writing, pin_generation, unpin
from shared.catalog.store import VERIFIED, WRITING, FilerState
from shared.core.errors import CatalogConflict


def two_verified() -> FilerState:
    """a: the newest verified backup, b: an older verified one."""
    state = FilerState.new(("fs-a", "fs-b"))
    a, b = state.generations["a"], state.generations["b"]
    a.status, a.backup_id, a.manifest, a.verified_at = VERIFIED, "new", "new-final", "2027-01-02T00:00:00Z"
    b.status, b.backup_id, b.manifest, b.verified_at = VERIFIED, "old", "old-final", "2027-01-01T00:00:00Z"
    state.latest_verified = "a"
    return state


def test_a_backup_never_chooses_the_generation_a_drill_reads() -> None:
    state = two_verified()
    assert choose_generation(state, "next", "c/f") == "b"  # without a pin: the older verified one
    pin_generation(state, "old", drill_id="d1", instance_id="drill-c-f", at="2027-01-03T00:00:00Z", filer="c/f")
    assert state.pins == {
        "b": {"drill_id": "d1", "instance_id": "drill-c-f", "backup_id": "old", "since": "2027-01-03T00:00:00Z"}
    }
    with pytest.raises(CatalogConflict, match="generation b is read by drill d1"):
        choose_generation(state, "next", "c/f")
    with pytest.raises(CatalogConflict):
        begin_writing(state, "next", "backup-c-f", "2027-01-03T00:00:01Z", "c/f")
    assert state.generations["b"].status == VERIFIED  # the refused run wrote nothing


def test_a_drill_of_the_newest_backup_leaves_the_schedule_its_usual_generation() -> None:
    state = two_verified()
    pin_generation(state, "new", drill_id="d1", instance_id="drill-c-f", at="t", filer="c/f")
    g, gen = begin_writing(state, "next", "backup-c-f", "t", "c/f")
    assert (g, gen.status) == ("b", WRITING)
    finish_writing(state, "b", "next", "verified", "t2", manifest="next-final", key=None, filer="c/f")
    # b is the newest now, a (still pinned) the older: the next backup has nowhere to write until the drill ends.
    with pytest.raises(CatalogConflict, match="read by drill d1"):
        choose_generation(state, "after", "c/f")
    assert unpin(state, "d1") is True
    assert choose_generation(state, "after", "c/f") == "a"


def test_only_a_verified_backup_is_pinned_and_a_newer_pin_replaces_a_stale_one() -> None:
    state = two_verified()
    state.generations["b"].status = WRITING
    with pytest.raises(CatalogConflict, match="writing"):
        pin_generation(state, "old", drill_id="d1", instance_id="i", at="t", filer="c/f")
    with pytest.raises(CatalogConflict, match="held by neither"):
        pin_generation(state, "gone", drill_id="d1", instance_id="i", at="t", filer="c/f")
    assert state.pins == {}
    pin_generation(state, "new", drill_id="d1", instance_id="i", at="t", filer="c/f")
    pin_generation(state, "new", drill_id="d2", instance_id="i", at="t2", filer="c/f")
    assert [p["drill_id"] for p in state.pins.values()] == ["d2"]
    assert unpin(state, "d1") is False and unpin(state, "d2") is True and state.pins == {}


def test_pins_are_written_only_while_there_are_some() -> None:
    state = two_verified()
    plain = state.to_json()
    assert "pins" not in plain
    pin_generation(state, "new", drill_id="d1", instance_id="i", at="t", filer="c/f")
    pinned = state.to_json()
    assert pinned["pins"]["a"]["drill_id"] == "d1"
    assert FilerState.from_json(pinned).pins == state.pins
    unpin(state, "d1")
    assert state.to_json() == plain
