"""The stand-in's secret store as plain logic: versions, soft delete, scheduled purge, limits, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.clock import VirtualClock
from devstack.keyvault.store import RECOVERABLE_DAYS, SecretStore, VaultError


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1_800_000_000.0)


@pytest.fixture
def store(tmp_path: Path, clock: VirtualClock) -> SecretStore:
    return SecretStore(tmp_path / "kv", clock=clock.now)


def test_versions_reload_from_disk_with_case_insensitive_names(
    tmp_path: Path, store: SecretStore, clock: VirtualClock
) -> None:
    first = store.set("Pass-Phrase", {"value": "a", "contentType": "text/plain", "tags": {"k": "v"}})
    clock.advance(5)
    second = store.set("pass-phrase", {"value": "b", "attributes": {"enabled": True, "exp": 1_900_000_000}})
    reloaded = SecretStore(tmp_path / "kv", clock=clock.now)
    got = reloaded.get("PASS-PHRASE", first.version)
    assert (got.name, got.record["value"], got.record["tags"]) == ("Pass-Phrase", "a", {"k": "v"})
    latest = reloaded.get("pass-phrase", None)
    assert (latest.version, latest.record["value"]) == (second.version, "b")
    assert latest.record["exp"] == 1_900_000_000
    assert latest.record["created"] == first.record["created"] + 5


def test_soft_deleted_secret_is_purged_when_its_date_passes(store: SecretStore, clock: VirtualClock) -> None:
    store.set("gone", {"value": "x"})
    deleted = store.delete("gone")
    assert deleted.scheduled_purge_date == deleted.deleted_date + RECOVERABLE_DAYS * 86_400
    with pytest.raises(VaultError) as conflict:
        store.set("gone", {"value": "y"})
    assert (conflict.value.status, conflict.value.inner) == (409, "ObjectIsDeletedButRecoverable")
    clock.advance(RECOVERABLE_DAYS * 86_400 - 1)
    assert [d.latest.name for d in store.list_deleted()] == ["gone"]
    clock.advance(1)
    assert store.list_deleted() == []
    assert store.set("gone", {"value": "y"}).record["value"] == "y"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "'value'"),
        ({"value": 5}, "must be a string"),
        ({"value": "x", "tags": {"a": 1}}, "string values"),
        ({"value": "x", "tags": {f"t{i}": "v" for i in range(16)}}, "at most 15 tags"),
        ({"value": "x", "attributes": {"enabled": "yes"}}, "enabled"),
        ({"value": "x", "attributes": {"exp": "tomorrow"}}, "Unix seconds"),
    ],
)
def test_bad_set_bodies_are_400_and_change_nothing(store: SecretStore, body: dict, problem: str) -> None:
    with pytest.raises(VaultError) as err:
        store.set("checked", body)
    assert err.value.status == 400 and problem in err.value.message
    assert store.list_versions("checked") == []


def test_disabled_version_refuses_get_but_can_be_enabled(store: SecretStore) -> None:
    version = store.set("toggled", {"value": "x", "attributes": {"enabled": False}}).version
    with pytest.raises(VaultError) as err:
        store.get("toggled", version)
    assert (err.value.status, err.value.code, err.value.inner) == (403, "Forbidden", "SecretDisabled")
    store.update("toggled", version, {"attributes": {"enabled": True}})
    assert store.get("toggled", version).record["value"] == "x"


def test_error_bodies_have_the_service_shape() -> None:
    err = VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
    assert err.body() == {
        "error": {
            "code": "Forbidden",
            "message": "Operation get is not allowed on a disabled secret.",
            "innererror": {"code": "SecretDisabled"},
        }
    }
