"""The recovery points answer, built from a catalog state alone (pure): what is listed, in which order, and how."""

from __future__ import annotations

from shared.azure.keyvault import SecretRef
from shared.blobcopy.manifest import ManifestIndex
from shared.catalog.store import ATTACHED, FAILED, VERIFIED, WRITING, FilerState, Generation
from shared.runbook.recovery_points import recovery_points


def _gen(g: str, status: str, hour: int, **extra: object) -> Generation:
    return Generation(
        container=f"f-{g}",
        status=status,
        backup_id=f"run-{g}",
        manifest=f"run-{g}-final",
        verified_at=f"2030-01-01T{hour:02d}:00:00Z",
        consistent_at=f"2030-01-01T{hour - 1:02d}:30:00Z",
        key=SecretRef("avere-key-c-f", g * 32),
        **extra,
    )  # type: ignore[arg-type]


def _index(job: str, count: int) -> ManifestIndex:
    return ManifestIndex(job_id=job, state="complete", pages=[], count=count, bytes=count * 10, created=0.0, info={})


def test_only_verified_and_attached_backups_are_listed_newest_first_with_their_facts() -> None:
    state = FilerState(
        generations={
            "a": _gen("a", VERIFIED, 5),
            "b": _gen("b", FAILED, 6),
            "c": _gen("c", VERIFIED, 7, extras=True),
            "d": _gen("d", ATTACHED, 3, attached_to={"target_cluster": "dr"}),
            "e": _gen("e", WRITING, 8),
            "f": _gen("f", VERIFIED, 2, pinned_by="drill-1"),
        },
        latest_verified="c",
    )
    entries = {"run-c": {"verified": {"blobs": 9, "copied": 4}, "summary": {"mismatches": 0, "delete_candidates": 3}}}
    answer = recovery_points(
        state, 4, entries, {"run-a-final": _index("run-a-final", 2), "run-c-final": _index("run-c-final", 9)}
    )
    points = answer["recovery_points"]
    assert [p["generation"] for p in points] == ["c", "a", "d", "f"]
    assert answer["newest"] == "run-c" and answer["outside_retention"] == ["e", "f"]
    c, a, d, f = points
    assert (c["size_bytes"], c["blobs"], c["manifest"], c["key_version"]) == (90, 9, "complete", "c" * 32)
    assert c["verification"] == {
        "result": "verified_with_extras",
        "blobs": 9,
        "copied": 4,
        "mismatches": 0,
        "extras": 3,
    }
    assert c["consistent_point"] == "2030-01-01T06:30:00Z" and c["verified_at"] == "2030-01-01T07:00:00Z"
    # No entry (an older catalog) and no manifest: said, not guessed.
    assert a["verification"]["blobs"] is None and d["manifest"] == "missing" and d["size_bytes"] is None
    assert d["attached_to"] == "dr" and f["pinned_by"] == "drill-1" and f["outside_retention"] is True
    assert [p["outside_retention"] for p in (c, a, d)] == [False, False, False]


def test_a_filer_without_a_verified_backup_has_no_recovery_point() -> None:
    state = FilerState.new(("f-a", "f-b"))
    assert recovery_points(state, 2, {}, {}) == {
        "generations": 2,
        "newest": None,
        "recovery_points": [],
        "outside_retention": [],
    }
