"""The catalog: generation choice and transitions (pure), and ETag-guarded updates on Azurite."""

from __future__ import annotations

import threading
import uuid

import pytest

from shared.azure.keyvault import SecretRef
from shared.azure.storage import StorageAccount
from shared.catalog.generations import attach_generation, begin_writing, choose_generation, finish_writing
from shared.catalog.store import ATTACHED, EMPTY, FAILED, VERIFIED, WRITING, Catalog, FilerState
from shared.core.errors import CatalogConflict
from shared.plan.model import BackupStorage, Filer, SourceStorage

KEY = SecretRef("avere-key-c-f", "0" * 32)


def _state() -> FilerState:
    return FilerState.new(("f-a", "f-b"))


def _backup(state: FilerState, backup_id: str, status: str = "verified") -> str:
    g, _ = begin_writing(state, backup_id, f"i-{backup_id}", "2027-01-01T00:00:00Z", "c/f")
    finish_writing(
        state,
        g,
        backup_id,
        status,
        f"2027-01-01T01:{len(backup_id):02d}:00Z",
        manifest=f"{backup_id}-final",
        key=KEY,
        filer="c/f",
    )
    return g


def test_generations_alternate_and_a_failure_never_touches_the_newest_verified():
    state = _state()
    assert _backup(state, "b1") == "a" and state.latest_verified == "a"
    assert _backup(state, "b2") == "b" and state.latest_verified == "b"
    assert _backup(state, "b3", "failed") == "a"
    assert state.latest_verified == "b" and state.generations["b"].status == VERIFIED
    assert state.generations["a"].status == FAILED
    assert _backup(state, "b4", "cancelled") == "a"  # still the one not holding the newest backup
    assert _backup(state, "b5") == "a" and state.latest_verified == "a"
    assert state.generations["b"].backup_id == "b2"  # untouched all along


def test_previous_manifest_only_from_a_verified_generation_and_stable_for_the_same_backup():
    state = _state()
    _backup(state, "b1")
    _backup(state, "b2")
    g, gen = begin_writing(state, "b3", "i", "t", "c/f")
    assert (g, gen.status, gen.previous_manifest) == ("a", WRITING, "b1-final")
    again, gen = begin_writing(state, "b3", "i", "t", "c/f")  # a re-delivered begin_backup
    assert (again, gen.previous_manifest) == ("a", "b1-final")
    finish_writing(state, "a", "b3", "failed", "t", manifest=None, key=None, filer="c/f")
    _, gen = begin_writing(state, "b4", "i", "t", "c/f")
    assert gen.previous_manifest is None  # a failed container is compared with its own listing


def test_attached_generation_is_never_written_again():
    state = _state()
    _backup(state, "b1")
    attach_generation(state, "a", "b1", target="dr", instance_id="f1", at="t", filer="c/f")
    assert state.generations["a"].status == ATTACHED
    assert choose_generation(state, "b2", "c/f") == "b"
    _backup(state, "b2")  # b is now the newest verified, a is attached: nothing is free
    with pytest.raises(CatalogConflict, match="attached"):
        choose_generation(state, "b3", "c/f")
    with pytest.raises(CatalogConflict, match="already attached to cluster dr"):
        attach_generation(state, "a", "b1", target="dr2", instance_id="f2", at="t", filer="c/f")
    attach_generation(state, "a", "b1", target="dr", instance_id="f1", at="t", filer="c/f")  # resumed: fine


def test_transitions_refuse_what_does_not_fit():
    state = _state()
    g, _ = begin_writing(state, "b1", "i", "t", "c/f")
    with pytest.raises(CatalogConflict, match="not being written by backup other"):
        finish_writing(state, g, "other", "verified", "t", manifest="m", key=None, filer="c/f")
    with pytest.raises(ValueError, match="needs its manifest"):
        finish_writing(state, g, "b1", "verified", "t", manifest=None, key=None, filer="c/f")
    with pytest.raises(ValueError, match="not verified, verified_with_extras"):
        finish_writing(state, g, "b1", "great", "t", manifest="m", key=None, filer="c/f")
    with pytest.raises(CatalogConflict, match="is writing"):
        attach_generation(state, g, "b1", target="dr", instance_id="f", at="t", filer="c/f")
    finish_writing(state, g, "b1", "verified_with_extras", "t", manifest="m", key=None, filer="c/f")
    assert state.generations[g].extras and state.latest_verified == g


def test_state_round_trips_keeps_unknown_keys_and_follows_renamed_containers():
    state = _state()
    _backup(state, "b1")
    data = state.to_json()
    data["added_by_a_newer_version"] = {"x": 1}
    back = FilerState.from_json(data)
    assert back.to_json() == data and back.generations["a"].key == KEY
    back.align(("f-a", "f-new"))
    assert back.generations["b"].container == "f-new" and back.generations["b"].status == EMPTY
    back.align(("f-renamed", "f-new"))  # the verified generation's container was renamed: it starts over
    assert back.latest_verified is None and back.generations["a"].status == EMPTY
    with pytest.raises(ValueError, match="status 'odd'"):
        FilerState.from_json({"generations": {"a": {"container": "x", "status": "odd"}}})


# --- on Azurite ---------------------------------------------------------------------------------------------
def _filer(name: str) -> Filer:
    src = SourceStorage(
        account="vfxtsource", container=f"{name}-src", blob_endpoint="http://127.0.0.1:1/x", region="westus2"
    )
    bak = BackupStorage(
        account="vfxtdr",
        blob_endpoint="http://127.0.0.1:1/y",
        region="eastus2",
        containers=(f"{name}-a", f"{name}-b"),
        storage_key_secret="k",
    )
    return Filer(cluster="c", name=name, source=src, backup=bak)


@pytest.fixture
def catalog(azurite):
    account = azurite.accounts["dr"]
    with Catalog(
        StorageAccount(account.name, azurite.account_url("dr"), account.key), f"catalog-{uuid.uuid4().hex[:8]}"
    ) as cat:
        yield cat


def test_concurrent_writers_lose_no_update(catalog):
    filer = _filer("busy")
    rounds, calls = 15, {"a": 0, "b": 0}

    def writer(field: str) -> None:
        def change(state: FilerState) -> None:
            calls[field] += 1
            state.extra[field] = state.extra.get(field, 0) + 1

        for _ in range(rounds):
            catalog.update(filer, change)

    threads = [threading.Thread(target=writer, args=(f,)) for f in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    final = catalog.load(filer)
    assert (final.extra["a"], final.extra["b"]) == (rounds, rounds)
    assert calls["a"] >= rounds and calls["b"] >= rounds


def test_a_failing_change_leaves_the_catalog_unchanged(catalog):
    filer = _filer("steady")
    catalog.update(filer, lambda s: begin_writing(s, "b1", "i", "t", filer.key))

    def refuse(state: FilerState) -> None:
        state.generations["a"].status = FAILED
        raise CatalogConflict("no", filer=filer.key, state="unchanged", action="none")

    with pytest.raises(CatalogConflict):
        catalog.update(filer, refuse)
    assert catalog.load(filer).generations["a"].status == WRITING
    assert catalog.list_backups(filer) == []
    catalog.put_backup(filer, "b1", {"backup_id": "b1", "started_at": "2"})
    catalog.put_backup(filer, "b0", {"backup_id": "b0", "started_at": "1"})
    assert [e["backup_id"] for e in catalog.list_backups(filer)] == ["b0", "b1"]


def test_entries_of_a_folder_are_objects_of_that_filer_only(catalog):
    filer, other = _filer("listed"), _filer("listed-too")
    at = "2027-01-02T03:04:05Z"
    entry = {"at": at, "instance_id": "failover-c-listed", "target_cluster": "dr", "backup_id": "b1"}
    catalog.put_failover(filer, entry)
    catalog.put_failover(filer, entry)  # a retried activity writes the same entry again, not a second one
    catalog.put_failover(other, {**entry, "instance_id": "failover-c-listed-too"})
    catalog.write_json("filers/c/listed/drills/d1.json", {"drill_id": "d1", "rto_s": 600})
    catalog.write_json("filers/c/listed/drills/broken.json", ["not", "an", "entry"])
    catalog.write_json("filers/c/listed/drills/notes.txt", {"drill_id": "not json by name"})
    assert catalog.list_entries(filer, "failovers") == [entry]
    assert list(catalog.list_paths("filers/c/listed/failovers/")) == [
        "filers/c/listed/failovers/b1-failover-c-listed.json"
    ]  # named by backup and run: a retry rewrites it
    assert catalog.list_entries(filer, "drills") == [{"drill_id": "d1", "rto_s": 600}]
    assert catalog.list_entries(filer, "nothing-here") == []
