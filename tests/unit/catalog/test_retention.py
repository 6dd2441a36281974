"""Retention: which generation a run writes (a table over the catalog state), and what lowering the count keeps."""

from __future__ import annotations

import pytest

from shared.catalog.generations import begin_writing, choose_generation
from shared.catalog.store import ATTACHED, EMPTY, FAILED, VERIFIED, WRITING, FilerState, Generation
from shared.core.errors import CatalogConflict

STATUS = {"E": EMPTY, "F": FAILED, "W": WRITING, "V": VERIFIED, "A": ATTACHED, "P": VERIFIED}


def state_of(spec: str) -> FilerState:
    """'a:V1 b:F c:P2 d:A3*': per generation its status (E empty, F failed, W writing for another run,
    V verified, P verified and pinned by a drill, A attached) and the hour it was verified; `*` marks the
    catalog's latest_verified (default: the verified one verified last)."""
    state = FilerState()
    for item in spec.split():
        g, _, rest = item.partition(":")
        code, latest = rest[0], rest.endswith("*")
        hour = rest[1:].rstrip("*")
        gen = Generation(
            container=f"f-{g}",
            status=STATUS[code],
            backup_id=f"run-{g}" if code != "E" else None,
            verified_at=f"2030-01-01T{int(hour):02d}:00:00Z" if hour else None,
        )
        if code == "P":
            gen.pinned_by = "drill-1"
        if code == "A":
            gen.attached_to = {"target_cluster": "dr"}
        state.generations[g] = gen
        if latest:
            state.latest_verified = g
    if state.latest_verified is None:
        verified = [(gen.verified_at, g) for g, gen in state.generations.items() if gen.status == VERIFIED]
        state.latest_verified = max(verified)[1] if verified else None
    return state


# (catalog state, generations the plan keeps, the generation the next run writes)
CHOICES = [
    ("a:E b:E", 2, "a"),  # a fresh filer: in order
    ("a:V1 b:E", 2, "b"),
    ("a:V1 b:V2", 2, "a"),  # the older one, never the newest
    ("a:V2 b:V1", 2, "b"),
    ("a:V1 b:V2 c:E d:E", 4, "c"),  # empty before any verified
    ("a:V1 b:V2 c:V3 d:V4", 4, "a"),  # all verified: the oldest
    ("a:V5 b:V2 c:V3 d:V4", 4, "b"),
    ("a:V1 b:F c:V3 d:E", 4, "b"),  # unverified (failed) and empty: the first in order
    ("a:V1 b:W c:V2", 3, "b"),  # left `writing` by a run that is gone: unverified
    ("a:A1 b:V2 c:V3", 3, "b"),  # attached (failover) never; c is the newest
    ("a:P1 b:V2 c:V3", 3, "b"),  # pinned (drill) never, even the oldest
    ("a:F1 b:P2 c:A3 d:V4", 4, "a"),
    ("a:V3 b:V2*", 2, "a"),  # the catalog's newest is b, although a was verified later: b is kept
    ("a:V5 b:V6 c:V3 d:V4", 2, "a"),  # lowered to 2: c and d are outside retention, never written
    ("a:V1 b:V2 c:V9", 2, "a"),  # the newest is outside retention: both inside may be written, the older first
    ("a:V2 b:E", 3, "b"),  # c, which the plan added, is not in this state yet: not chosen before align
]


@pytest.mark.parametrize(("spec", "count", "expected"), CHOICES, ids=[f"{s} /{n}" for s, n, _ in CHOICES])
def test_the_generation_a_run_writes(spec: str, count: int, expected: str) -> None:
    state = state_of(spec)
    newest = state.newest_verified()
    chosen = choose_generation(state, "new-run", "c/f", count)
    assert chosen == expected
    gen = state.generations[chosen]
    assert chosen != newest and gen.status != ATTACHED and not gen.pinned_by


@pytest.mark.parametrize(
    ("spec", "count", "why"),
    [
        ("a:A1 b:V2", 2, "a is attached to cluster dr; b holds the newest verified backup"),
        ("a:P1 b:V2", 2, "a is pinned by drill-1; b holds the newest verified backup"),
        ("a:V1", 2, "a holds the newest verified backup"),
        ("a:V2 b:P1 c:E", 2, "a holds the newest verified backup; b is pinned by drill-1"),  # c: outside retention
    ],
)
def test_no_generation_can_be_written_and_the_catalog_says_why(spec: str, count: int, why: str) -> None:
    state = state_of(spec)
    before = state.to_json()
    with pytest.raises(CatalogConflict) as err:
        begin_writing(state, "new-run", "i", "t", "c/f", count=count)
    assert why in str(err.value)
    assert state.to_json() == before  # nothing changed


def test_a_run_resumes_its_own_generation_whatever_the_rule_says() -> None:
    state = state_of("a:V1 b:V2 c:E")
    g, _ = begin_writing(state, "run-x", "i", "t", "c/f", count=3)
    assert g == "c"
    state.generations["a"].status = FAILED  # would now be chosen first
    assert choose_generation(state, "run-x", "c/f", 3) == "c"


def test_lowering_the_count_keeps_every_generation_and_lists_those_outside() -> None:
    state = state_of("a:V5 b:V6 c:V3 d:V4")
    before = {g: gen.to_json() for g, gen in state.generations.items()}
    state.align(("f-a", "f-b"))  # the plan now keeps 2
    assert {g: gen.to_json() for g, gen in state.generations.items()} == before  # nothing dropped
    assert state.outside_retention(2) == ["c", "d"]
    assert state.outside_retention(4) == []
    state.generations["d"] = Generation("f-d")  # an empty one beyond the count holds nothing to list
    assert state.outside_retention(2) == ["c"]


def test_raising_the_count_adds_empty_generations_with_their_containers() -> None:
    state = state_of("a:V1 b:V2")
    state.align(("f-a", "f-b", "f-c", "f-d"))
    assert [(g, gen.container, gen.status) for g, gen in state.generations.items()][2:] == [
        ("c", "f-c", EMPTY),
        ("d", "f-d", EMPTY),
    ]
    assert choose_generation(state, "run", "c/f", 4) == "c"


def test_the_newest_verified_survives_its_pointer_being_lost() -> None:
    state = state_of("a:V1 b:V2 c:V3")
    state.latest_verified = None  # e.g. its container was renamed in the plan and started empty
    assert state.newest_verified() == "c"
    assert choose_generation(state, "run", "c/f", 3) == "a"
