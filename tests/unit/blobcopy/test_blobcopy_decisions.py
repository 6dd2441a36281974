"""Pure logic: listing order, change detection against a manifest or the destination, deletes, the guard."""

from __future__ import annotations

from shared.blobcopy.decisions import changed_against_dest, changed_since_manifest, decide
from shared.blobcopy.entries import BlobEntry, differences, in_range, order_key
from shared.blobcopy.manifest import ManifestEntry
from shared.blobcopy.model import Guard
from shared.blobcopy.pages import SKIPPED, TODO


def entry(name="a", *, etag="0x1", size=3, md5="bWQ1", modified=100.0, metadata=None, props=None, **kw):
    return BlobEntry(
        name=name,
        etag=etag,
        size=size,
        md5=md5,
        modified=modified,
        props=props or ("text/plain", None, None, None, None),
        metadata={"AvereObjId": "1"} if metadata is None else metadata,
        **kw,
    )


def manifest_of(e, copied_at=200.0, copied=True):
    return ManifestEntry(
        name=e.name,
        etag=e.etag,
        size=e.size,
        md5=e.md5,
        modified=e.modified,
        digest=e.digest(),
        copied_at=copied_at,
        copied=copied,
    )


def test_listing_order_is_utf16_like_the_service():
    names = ["a", "B", "é", "\uffef", "\U0001f600", "a/b"]
    assert sorted(names, key=order_key) == ["B", "a", "a/b", "é", "\U0001f600", "\uffef"]
    assert in_range("b", "a", "c") and in_range("c", "a", "c") and not in_range("a", "a", "c")
    assert in_range("zzz", "a", None) and in_range("a", None, "a")


def test_changes_against_the_manifest():
    src = entry()
    assert changed_since_manifest(src, None)
    assert not changed_since_manifest(src, manifest_of(src))
    assert changed_since_manifest(entry(etag="0x2"), manifest_of(src))
    assert changed_since_manifest(entry(md5=None), manifest_of(src))
    assert changed_since_manifest(entry(size=4), manifest_of(src))
    mixed_case = manifest_of(entry(metadata={"AvereKey": "1"}))
    assert changed_since_manifest(entry(metadata={"averekey": "1"}), mixed_case)
    assert changed_since_manifest(entry(props=("text/html", None, None, None, None)), manifest_of(src))
    assert changed_since_manifest(src, manifest_of(src, copied_at=50.0))  # modified after the copy completed
    assert changed_since_manifest(src, manifest_of(src, copied_at=None))


def test_changes_against_the_destination_listing():
    src = entry(md5=None)
    assert changed_against_dest(src, None)
    copied = entry(md5=None, etag="0xD", copy_status="success", copy_completed=150.0)
    assert not changed_against_dest(src, copied)
    assert changed_against_dest(src, entry(md5=None, copy_status="pending", copy_completed=150.0))
    assert changed_against_dest(src, entry(md5=None, copy_status="failed", copy_completed=150.0))
    assert changed_against_dest(src, entry(md5=None, copy_status="success", copy_completed=90.0))
    assert changed_against_dest(src, entry(md5=None, metadata={"AvereObjId": "2"}, copy_completed=150.0))
    assert not changed_against_dest(src, entry(md5=None, modified=150.0))  # blocks engine: no copy record
    assert differences(entry(metadata={"K": "v"}), entry(metadata={"k": "v"})) == ["metadata"]
    assert differences(entry(), entry(size=4, md5=None)) == ["size", "content_md5"]


def test_decide_full_incremental_and_mirror():
    a, b, c = entry("a"), entry("b"), entry("c")
    previous = {"a": manifest_of(a), "b": manifest_of(b)}
    assert [t.status for t in decide([a, b, c], "full", previous, None).tasks] == [TODO] * 3
    inc = decide([a, b, c], "incremental", previous, None)
    assert [t.status for t in inc.tasks] == [SKIPPED, SKIPPED, TODO] and inc.deletes == []
    assert inc.tasks[0].written_at == 200.0

    dest = {"a": entry("a", etag="0xA"), "old1": entry("old1", etag="0xO1"), "tmp": entry("tmp", etag="0xT")}
    exempt = {"tmp": manifest_of(entry("tmp")), "a": manifest_of(a, copied=False)}
    mirror = decide([a, b, c], "mirror", previous, dest, exempt)
    # b is unchanged by the manifest but gone from the destination: copied again.
    assert [t.status for t in mirror.tasks] == [SKIPPED, TODO, TODO]
    assert mirror.deletes == [["old1", "0xO1", False], ["tmp", "0xT", True]]
    assert mirror.dest_counted == 2  # a and old1; tmp was copied by this run's precopy


def test_guard_limit_and_entry_round_trip():
    assert Guard(0.10, 100).limit(50) == 100
    assert Guard(0.10, 100).limit(5000) == 500
    assert Guard(0.0, 0).limit(10) == 0
    e = entry(name="ü/x #?", tier="Cool", blob_type="BlockBlob")
    assert BlobEntry.from_json(e.to_json()) == e
    assert e.digest() == entry(name="other").digest() and len(e.digest()) == 32


def test_overwrites_are_marked_from_the_destination_listing_or_else_the_manifest():
    """The change guard counts a copy as an overwrite when the destination holds the blob already: its listing
    says so (mirror, or no manifest), or the manifest of what it last received; new blobs are not overwrites."""
    old, new, same = entry("old", etag="0x1"), entry("new"), entry("same")
    changed = entry("old", etag="0x2", size=9)
    listed = {"old": old, "same": same, "gone": entry("gone")}
    d = decide([changed, new, same], "mirror", None, listed)
    assert [(t.entry.name, t.status, t.over) for t in d.tasks] == [
        ("old", TODO, True),
        ("new", TODO, False),
        ("same", SKIPPED, False),
    ]
    assert d.existing == 3  # every blob the destination holds in range, "gone" included
    manifest = {"old": manifest_of(old), "same": manifest_of(same)}
    d = decide([changed, new, same], "precopy", manifest, None)
    assert [t.over for t in d.tasks] == [True, False, False] and d.existing == 2


def test_what_the_same_runs_precopy_wrote_is_not_counted_again():
    changed = entry("a", etag="0x3")
    listed = {"a": entry("a", etag="0x2"), "b": entry("b")}
    precopy = {"a": manifest_of(entry("a", etag="0x2"), copied=True), "b": manifest_of(entry("b"), copied=False)}
    d = decide([changed, entry("b")], "mirror", precopy, listed, exempt=precopy)
    assert [t.over for t in d.tasks] == [False, False]  # a: the precopy's own copy; b: unchanged
    assert d.existing == 1  # b only: what the generation held before this run


def test_the_change_limit():
    assert Guard(0.1, 100).guards_changes is False
    guard = Guard(0.1, 5, max_change_fraction=0.5)
    assert guard.guards_changes and guard.change_limit(40) == 20 and guard.change_limit(4) == 5
    assert Guard(0.1, 0, max_change_fraction=0.0).change_limit(1000) == 0
