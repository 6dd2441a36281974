"""Catalog documents written before schema versions (tests/unit/catalog/data) read into the same values."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.avere.records import FilerRecord
from shared.catalog.store import SCHEMA, Catalog, FilerState
from shared.core.codec import RecordError
from shared.plan.load import BackupStorage, Filer, SourceStorage

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected-2f032a3.json").read_text())
STATES = sorted(name for name in EXPECTED if "/" not in name)
RECORDS = sorted(name for name in EXPECTED if name.startswith("records/"))
BACKUPS = sorted(name for name in EXPECTED if name.startswith("backups/"))


def _stored(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize("name", STATES)
def test_state_documents_read_into_the_same_values_and_write_back_the_same(name: str) -> None:
    data = _stored(name)
    assert "schema" not in data  # written before versions: schema 0
    state = FilerState.from_json(data)
    assert repr(state) == EXPECTED[name]
    again = state.to_json()
    assert again.pop("schema") == SCHEMA == 1
    assert again == data


@pytest.mark.parametrize("name", RECORDS)
def test_captured_records_read_into_the_same_values(name: str) -> None:
    data = _stored(name)
    record = FilerRecord.from_json(data)
    assert repr(record) == EXPECTED[name] and record.to_json() == data


def test_a_state_of_a_newer_schema_is_refused_and_a_bad_one_named() -> None:
    data = _stored("state-failed-over.json")
    assert FilerState.from_json({**data, "schema": 1}) == FilerState.from_json(data)
    with pytest.raises(RecordError, match="schema 2, written by a newer version"):
        FilerState.from_json({**data, "schema": 2})
    with pytest.raises(RecordError, match="schema must be a non-negative integer"):
        FilerState.from_json({**data, "schema": "1"})


# --- through the store, on a container in memory -------------------------------------------------------------
class _Blobs:
    """The few ContainerClient calls the catalog makes, on a dict."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def download_blob(self, path: str) -> Any:
        if path not in self.blobs:
            raise ResourceNotFoundError("missing")
        body = self.blobs[path]
        return SimpleNamespace(readall=lambda: body, properties=SimpleNamespace(etag="e1"))

    def upload_blob(self, path: str, body: bytes, **_: Any) -> None:
        self.blobs[path] = body

    def list_blobs(self, name_starts_with: str) -> list[Any]:
        return [SimpleNamespace(name=n) for n in sorted(self.blobs) if n.startswith(name_starts_with)]


def _catalog() -> tuple[Catalog, _Blobs, Filer]:
    blobs = _Blobs()
    service = SimpleNamespace(get_container_client=lambda name: blobs, close=lambda: None)
    catalog = Catalog(SimpleNamespace(service_client=lambda: service), "catalog")  # type: ignore[arg-type]
    src = SourceStorage(
        account="vfxtsource", container="demo-filer", blob_endpoint="http://h/vfxtsource", region="westus2"
    )
    bak = BackupStorage(
        account="vfxtdr",
        blob_endpoint="http://h/vfxtdr",
        region="eastus2",
        containers=("demo-filer-a", "demo-filer-b"),
        storage_key_secret="bak-key",
    )
    return catalog, blobs, Filer(cluster="primary", name="demo-filer", source=src, backup=bak)


def test_the_store_reads_todays_documents_and_writes_them_with_a_schema() -> None:
    catalog, blobs, filer = _catalog()
    prefix = "filers/primary/demo-filer/"
    for name in (*BACKUPS, *[r for r in RECORDS if "built" not in r]):
        blobs.blobs[prefix + name] = (DATA / name).read_bytes()
    blobs.blobs[prefix + "state.json"] = (DATA / "state-after-two-backups.json").read_bytes()

    assert repr(catalog.load(filer)) == EXPECTED["state-after-two-backups.json"]
    entries = catalog.list_backups(filer)
    assert [repr(e) for e in entries] == [EXPECTED[n] for n in BACKUPS]
    backup_id = entries[-1]["backup_id"]
    assert repr(catalog.record(filer, backup_id)) == EXPECTED[f"records/{backup_id}.json"]

    catalog.put_backup(filer, "b-new", {**entries[-1], "backup_id": "b-new"})
    catalog.put_record(filer, "b-new", FilerRecord.from_json(_stored(f"records/{backup_id}.json")))
    catalog.update(filer, lambda state: setattr(state, "last_scheduled", "2027-01-01T00:00:00Z"))
    for path in ("backups/b-new.json", "records/b-new.json", "state.json"):
        assert json.loads(blobs.blobs[prefix + path])["schema"] == SCHEMA
    assert catalog.record(filer, "b-new") == catalog.record(filer, backup_id)
    assert catalog.backup(filer, "b-new") == {**entries[-1], "backup_id": "b-new", "schema": SCHEMA}

    blobs.blobs[prefix + "backups/b-newer.json"] = json.dumps({"backup_id": "b-newer", "schema": 2}).encode()
    with pytest.raises(RecordError, match="newer version"):
        catalog.backup(filer, "b-newer")
