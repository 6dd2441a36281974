"""Run ids: unambiguous for every pair of plan names (exhaustively, on a small alphabet), readable back, and the
ids earlier versions gave still recognised (a run under one still counts as running for its filer)."""

from __future__ import annotations

import itertools

import pytest

from shared.plan.validate import object_name
from shared.runbook.payloads import backup_instance_id, failover_instance_id, readd_instance_id
from shared.runbook.run_ids import (
    BACKUP,
    COPY,
    KINDS,
    SEP,
    copy_run_id,
    filer_run_ids,
    is_current,
    legacy_run_id,
    parse_run_id,
    run_id,
)

# Names the plan accepts, made of the characters that make ids collide: every name of 1-3 characters over a
# letter, a digit and the three separators the name rule allows.
ALPHABET = "a1-._"
NAMES = [
    n for size in (1, 2, 3) for n in map("".join, itertools.product(ALPHABET, repeat=size)) if object_name(n) is None
]
JOB = "20300101T000000Z-abcdef12-final"


def test_the_plan_name_rule_never_allows_the_separator() -> None:
    assert len(NAMES) == 62  # a, 1, aa, a1, a-, ... (names start with a letter or digit)
    assert object_name("a~b") is not None and object_name(f"{SEP}a") is not None
    assert all(SEP not in n for n in NAMES)


def test_ids_are_injective_over_every_kind_and_pair_of_names() -> None:
    seen: dict[str, tuple[str, str, str]] = {}
    for kind, cluster, filer in itertools.product(KINDS, NAMES, NAMES):
        made = run_id(kind, cluster, filer)
        assert made not in seen, (made, seen.get(made), (kind, cluster, filer))
        seen[made] = (kind, cluster, filer)
        parsed = parse_run_id(made)
        assert parsed is not None and (parsed.kind, parsed.cluster, parsed.filer) == (kind, cluster, filer)
        assert not parsed.legacy and is_current(made)


def test_the_legacy_form_was_ambiguous_and_the_current_one_is_not() -> None:
    assert legacy_run_id(BACKUP, "prod-east", "fs1") == legacy_run_id(BACKUP, "prod", "east-fs1")
    assert backup_instance_id("prod-east", "fs1") == "backup~prod-east~fs1"
    assert backup_instance_id("prod-east", "fs1") != backup_instance_id("prod", "east-fs1")
    assert {readd_instance_id("c", "f"), failover_instance_id("c", "f")} == {"readd~c~f", "failover~c~f"}


def test_copy_passes_name_their_backup_run_in_either_form() -> None:
    parent = backup_instance_id("prod", "east-fs1")
    child = copy_run_id(parent, JOB)
    assert child == f"backup~prod~east-fs1~{JOB}"
    found = parse_run_id(child)
    assert found is not None and (found.kind, found.parent, found.filer) == (COPY, parent, "east-fs1")
    old_parent = legacy_run_id(BACKUP, "prod", "east-fs1")
    assert copy_run_id(old_parent, JOB) == f"{old_parent}-{JOB}"  # a run in flight keeps its recorded child ids
    old = parse_run_id(f"{old_parent}-{JOB}")
    assert old is not None and (old.kind, old.parent, old.legacy) == (COPY, old_parent, True)


def test_legacy_ids_are_recognised_and_listed_beside_the_current_ones() -> None:
    old = parse_run_id("backup-prod-east-fs1")
    assert old is not None and (old.kind, old.cluster, old.filer, old.legacy) == (BACKUP, None, None, True)
    assert filer_run_ids("prod", "east-fs1", (BACKUP,)) == ("backup~prod~east-fs1", "backup-prod-east-fs1")
    assert len(filer_run_ids("c", "f")) == 2 * len(KINDS) - 1  # a failback has no legacy id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "backup",
        "backup~c",
        "backup~c~f~g",
        "backup~c~~f",
        "restore~c~f",
        "backup-c",
        "backup--f",
        f"readd~c~f~{JOB}",
        "backup~c~f/../x",
        "backup~c~f\n",
        "backup~-c~f",
        "some-other-app-instance",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
    ],
)
def test_ids_this_app_does_not_make_are_not_recognised(text: str) -> None:
    assert parse_run_id(text) is None


def test_ids_are_made_from_plan_names_only() -> None:
    for bad in ("a~b", "a/b", "", "-a", "a" * 65):
        with pytest.raises(ValueError, match="not a plan name"):
            run_id(BACKUP, bad, "f")
    with pytest.raises(ValueError, match="run kind"):
        run_id(COPY, "c", "f")
