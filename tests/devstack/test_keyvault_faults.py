"""The Key Vault stand-in's test-only faults, seen through the real SDK: a 5xx, a dropped connection, a read that
returns another value than was stored. Each rule fires as often as it says, then the vault answers normally."""

from __future__ import annotations

import pytest

from shared.azure.keyvault import KeyVault, KeyVaultError


@pytest.fixture
def vault(keyvault_env):
    keyvault_env.clear_faults()
    yield KeyVault(keyvault_env.url), keyvault_env
    keyvault_env.clear_faults()


def test_a_persistent_500_reaches_the_caller_and_a_spent_rule_is_gone(vault) -> None:
    kv, endpoint = vault
    ref = kv.store("kvf-a", "v1", content_type="text/plain")
    endpoint.add_fault("error", method="GET", path="/secrets/kvf-a/*", status=500, times=None)
    with pytest.raises(KeyVaultError) as caught:
        kv.read_ref(ref)
    assert "500" in str(caught.value) or "Injected" in str(caught.value)
    endpoint.clear_faults()
    assert kv.read_ref(ref).value == "v1"


def test_one_500_is_absorbed_by_the_sdks_own_retry(vault) -> None:
    kv, endpoint = vault
    ref = kv.store("kvf-b", "v1", content_type="text/plain")
    endpoint.add_fault("error", method="GET", path="/secrets/kvf-b/*", status=500, times=1)
    assert kv.read_ref(ref).value == "v1"
    assert endpoint.faults() == []  # it fired once and is spent


def test_a_reset_connection_is_an_unreachable_vault(vault) -> None:
    kv, endpoint = vault
    endpoint.add_fault("reset", method="PUT", path="/secrets/kvf-c", times=None)
    with pytest.raises(KeyVaultError):
        kv.store("kvf-c", "never", content_type="text/plain")
    endpoint.clear_faults()
    assert kv.store("kvf-c", "now", content_type="text/plain").version


def test_a_corrupt_read_returns_another_value(vault) -> None:
    kv, endpoint = vault
    ref = kv.store("kvf-d", "the stored value", content_type="text/plain")
    endpoint.add_fault("corrupt", method="GET", path="/secrets/kvf-d/*", times=1)
    assert kv.read_ref(ref).value != "the stored value"
    assert kv.read_ref(ref).value == "the stored value"


def test_a_malformed_rule_is_refused(vault) -> None:
    _, endpoint = vault
    with pytest.raises(Exception, match="400"):
        endpoint.add_fault("explode")
