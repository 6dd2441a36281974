"""Pure parts of the services and the activity payload decoding."""

from __future__ import annotations

import json

import pytest
from azure.functions._durable_functions import df_dumps

from shared.azure.storage import StorageConfigError
from shared.core.codec import decode as payload
from shared.core.errors import InputRefused
from shared.plan.load import PlanError
from shared.runbook import services
from shared.runbook.payloads import BackupRequest, FilerRef


def test_secret_references():
    assert services.parse_secret_id("bak-key") == (None, "bak-key", None)
    url = services.secret_id("https://kv1.vault.azure.net/", "bak-key")
    assert url == "https://kv1.vault.azure.net/secrets/bak-key"
    assert services.parse_secret_id(url) == ("https://kv1.vault.azure.net", "bak-key", None)
    assert services.parse_secret_id(url + "/" + "a" * 32) == ("https://kv1.vault.azure.net", "bak-key", "a" * 32)
    for bad in (
        "http://kv1.vault.azure.net/secrets/x",
        "https://kv1.vault.azure.net/keys/x",
        "https://kv1.vault.azure.net/secrets/x/y/z",
    ):
        with pytest.raises(StorageConfigError, match="Key Vault secret name"):
            services.parse_secret_id(bad)
    ref = services.account_ref(
        "bak", "https://bak.blob.core.windows.net", "key", "https://kv1.vault.azure.net", "bak-key"
    )
    assert ref.credential == url
    assert services.account_ref("bak", "https://x", "identity", "https://kv", "bak-key").credential is None
    with pytest.raises(StorageConfigError, match="no Key Vault secret names its key"):
        services.account_ref("bak", "https://x", "key", "https://kv", None)


def test_storage_account_refuses_unusable_auth():
    with pytest.raises(StorageConfigError, match="no Key Vault secret names its key"):
        services.storage_account(
            "bak",
            "https://bak.blob.core.windows.net",
            storage_auth="key",
            keyvault_url="https://kv1.vault.azure.net",
            key_secret=None,
        )
    with pytest.raises(StorageConfigError, match="must be 'identity' or 'key'"):
        services.storage_account(
            "bak",
            "https://bak.blob.core.windows.net",
            storage_auth="sas",
            keyvault_url="https://kv1.vault.azure.net",
            key_secret="k",
        )


def test_load_plan_is_parsed_once_per_setting_value(monkeypatch):
    from tests.unit.runbook.test_scheduling import PLAN

    text = json.dumps(PLAN.to_json())
    monkeypatch.delenv("VFXTDR_PLAN_FILE", raising=False)
    monkeypatch.setenv("VFXTDR_PLAN", text)
    first = services.load_plan()
    assert services.load_plan() is first and first == PLAN
    monkeypatch.setenv("VFXTDR_PLAN", text.replace('"rpo_hours": 24', '"rpo_hours": 12'))
    assert services.load_plan().rpo_hours == 12
    monkeypatch.setenv("VFXTDR_PLAN", "{")
    with pytest.raises(PlanError, match="not valid JSON"):
        services.load_plan()


def test_settings_can_be_changed_and_restored(monkeypatch):
    from devstack.clock import VirtualClock
    from tests.fixtures.workflow import run_services_on

    run_services_on(monkeypatch, VirtualClock(start=1_800_000_000.0))
    previous = services.configure(avere_retries=1)
    try:
        assert services.settings().avere_retries == 1 and services.now_iso() == "2027-01-15T08:00:00Z"
    finally:
        services.restore(previous)
    assert services.settings() == previous


def test_payloads_arrive_as_objects_dicts_envelopes_or_text():
    ref = FilerRef(cluster="c1", filer="f1")
    as_json = FilerRef.to_json(ref)
    assert payload(FilerRef, ref) is ref
    assert payload(FilerRef, as_json) == ref
    assert payload(FilerRef, json.loads(df_dumps(ref))) == ref  # the codec's envelope, strict mode
    assert payload(FilerRef, json.dumps(as_json)) == ref
    with pytest.raises(TypeError, match="expected a FilerRef payload, got int"):
        payload(FilerRef, 3)
    with pytest.raises(TypeError, match="not JSON"):
        payload(FilerRef, "c1/f1")
    with pytest.raises(InputRefused, match="missing field 'filer'"):
        payload(BackupRequest, {"cluster": "c1", "format": 2})
