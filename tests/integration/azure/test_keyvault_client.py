"""shared.azure.keyvault on the stand-in: the real SDK over HTTPS, DefaultAzureCredential via local identity."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.functions._durable_functions import df_dumps, df_loads
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared.challenge_auth_policy import ChallengeAuthPolicy

from devstack.stack.identity import mint_token
from shared.azure.keyvault import (
    ORDER_TAG,
    KeyVault,
    KeyVaultAccessError,
    SecretConflict,
    SecretDisabled,
    SecretNotFound,
    SecretRef,
    check_secret_name,
    is_loopback_host,
)
from tests.fixtures.keyvault import KeyVaultEndpoint


class _StaticCredential:
    """A TokenCredential minting tokens for a fixed audience (a wrong one, to provoke refusals)."""

    def __init__(self, audience: str, tenant: str) -> None:
        self.audience, self.tenant = audience, tenant

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        token, expires = mint_token(self.audience, self.tenant)
        return AccessToken(token, expires)


def _name() -> str:
    return f"kv-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def vault(keyvault_env: KeyVaultEndpoint) -> KeyVault:
    with KeyVault(keyvault_env.url) as client:  # DefaultAzureCredential, trust from REQUESTS_CA_BUNDLE
        yield client


def test_store_and_read_by_version_and_latest(vault: KeyVault) -> None:
    name = _name()
    tags = {"cluster": "avere-1", "filer": "core1", "keyId": "k-17"}
    first = vault.store(name, "pass-1", content_type="text/plain", tags=tags)
    second = vault.store(name, "pass-2", content_type="text/plain")
    assert first.name == name and first.version != second.version
    got = vault.read_ref(first)
    assert (got.ref, got.value, got.content_type, got.tags) == (first, "pass-1", "text/plain", tags)
    assert vault.read(name).ref == second
    assert "pass-2" not in repr(vault.read(name))


def test_versions_newest_first_although_listed_unordered(vault: KeyVault, keyvault_env: KeyVaultEndpoint) -> None:
    name = _name()
    stored = [vault.store(name, f"v{i}", content_type="text/plain") for i in range(5)]
    raw = SecretClient(keyvault_env.url, DefaultAzureCredential(), verify_challenge_resource=False)

    # Keep adding versions until the service's own order is not newest-first (it is hash order).
    def listed() -> list[str]:
        return [p.version for p in raw.list_properties_of_secret_versions(name)]

    while listed() == [r.version for r in stored[::-1]]:
        stored.append(vault.store(name, "more", content_type="text/plain"))
    versions = vault.versions(name)
    assert [v.ref for v in versions] == stored[::-1]
    assert all(ORDER_TAG not in v.tags for v in versions)
    assert [v.created for v in versions] == sorted((v.created for v in versions), reverse=True)


def test_unknown_names_and_versions(vault: KeyVault) -> None:
    name = _name()
    assert vault.versions(name) == []
    with pytest.raises(SecretNotFound) as missing:
        vault.read(name)
    assert name in str(missing.value) and missing.value.status == 404
    vault.store(name, "x", content_type="text/plain")
    other = uuid.uuid4().hex
    with pytest.raises(SecretNotFound) as wrong_version:
        vault.read(name, other)
    assert f"{name}/{other}" in str(wrong_version.value)


def test_errors_name_the_secret_but_never_the_value(vault: KeyVault, keyvault_env: KeyVaultEndpoint) -> None:
    name = _name()
    value = f"top-secret-{uuid.uuid4().hex}"
    ref = vault.store(name, value, content_type="text/plain")
    raw = SecretClient(keyvault_env.url, DefaultAzureCredential(), verify_challenge_resource=False)
    raw.update_secret_properties(name, ref.version, enabled=False)
    with pytest.raises(SecretDisabled) as disabled:
        vault.read_ref(ref)
    raw.begin_delete_secret(name, _polling_interval=0).wait()
    with pytest.raises(SecretConflict) as conflict:
        vault.store(name, value, content_type="text/plain")
    with pytest.raises(ValueError, match=r"25601 characters") as too_big:
        vault.store(_name(), value + "x" * (25_601 - len(value)), content_type="text/plain")
    for err in (disabled.value, conflict.value, too_big.value):
        assert name in str(err) or "secret kv-" in str(err)
        assert value not in str(err) and value not in repr(err)
        # No chained SDK exception either: tracebacks in logs show only this error.
        assert err.__cause__ is None and (err.__suppress_context__ or err.__context__ is None)
    assert conflict.value.code == "ObjectIsDeletedButRecoverable"


@pytest.mark.parametrize("bad", ["", "has_underscore", "x" * 128, "ünïcode", "a/b"])
def test_bad_names_are_refused_before_any_request(vault: KeyVault, keyvault_env: KeyVaultEndpoint, bad: str) -> None:
    before = keyvault_env.log.read_text()
    with pytest.raises(ValueError, match="invalid Key Vault secret name"):
        vault.store(bad, "x", content_type="text/plain")
    with pytest.raises(ValueError, match="invalid Key Vault secret name"):
        vault.read(bad)
    assert keyvault_env.log.read_text() == before  # nothing reached the vault


def test_bad_tags_and_values_are_refused() -> None:
    vault = KeyVault("https://127.0.0.1:9", credential=_StaticCredential("x", "t"))
    with pytest.raises(ValueError, match="reserved"):
        vault.store("n", "v", content_type="text/plain", tags={ORDER_TAG: "1"})
    with pytest.raises(ValueError, match="at most 14 tags"):
        vault.store("n", "v", content_type="text/plain", tags={f"t{i}": "v" for i in range(15)})
    with pytest.raises(ValueError, match="must be a string"):
        vault.store("n", b"bytes", content_type="text/plain")  # type: ignore[arg-type]


def test_tokens_for_another_resource_are_an_access_error(keyvault_env: KeyVaultEndpoint) -> None:
    wrong = _StaticCredential("https://storage.azure.com", keyvault_env.tenant_id)
    with KeyVault(keyvault_env.url, credential=wrong) as vault, pytest.raises(KeyVaultAccessError) as err:
        vault.read(_name())
    assert err.value.status == 401


def test_explicit_ca_bundle_without_environment(
    keyvault: KeyVaultEndpoint, identity: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    credential = _StaticCredential("https://vault.azure.net", keyvault.tenant_id)
    with KeyVault(keyvault.url, credential=credential, ca_bundle=keyvault.ca_cert) as vault:
        ref = vault.store(_name(), "with-explicit-ca", content_type="text/plain")
        assert vault.read_ref(ref).value == "with-explicit-ca"
    with pytest.raises(ValueError, match="not a file"):
        KeyVault(keyvault.url, credential=credential, ca_bundle=Path("/nonexistent/ca.pem"))


def _verifies_challenge_resource(vault: KeyVault) -> bool:
    policies = vault._client._client._client._pipeline._impl_policies  # the SDK keeps no public handle
    return next(p for p in policies if isinstance(p, ChallengeAuthPolicy))._verify_challenge_resource


@pytest.mark.parametrize(
    ("url", "relaxed"),
    [
        ("https://127.0.0.1:8443", True),
        ("https://127.8.9.10", True),
        ("https://localhost:1", True),
        ("https://[::1]:8443", True),
        ("https://myvault.vault.azure.net", False),
        ("https://localhost.attacker.example", False),
        ("https://10.0.0.1", False),
    ],
)
def test_challenge_verification_is_relaxed_only_for_loopback(url: str, relaxed: bool) -> None:
    vault = KeyVault(url, credential=_StaticCredential("x", "t"))
    assert _verifies_challenge_resource(vault) is not relaxed
    assert is_loopback_host(urlsplit(url).hostname or "") is relaxed


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8443", "https://vault.azure.net/prefix", "https://vault.azure.net/?x=1", "ftp://vault"]
)
def test_vault_url_must_be_an_https_root(url: str) -> None:
    with pytest.raises(ValueError, match="vault_url"):
        KeyVault(url, credential=_StaticCredential("x", "t"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # loose mode announces its own deprecation
@pytest.mark.parametrize("strict", ["1", "0"])
def test_secret_ref_round_trips_through_the_durable_codec(monkeypatch: pytest.MonkeyPatch, strict: str) -> None:
    monkeypatch.setenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", strict)
    ref = SecretRef("pass-core1", uuid.uuid4().hex)
    assert df_loads(df_dumps(ref), expected_type=SecretRef) == ref
    assert SecretRef.from_json(SecretRef.to_json(ref)) == ref
    with pytest.raises(ValueError, match="32 hexadecimal"):
        SecretRef("pass-core1", "not-a-version")
    with pytest.raises(ValueError, match="exactly 'name' and 'version'"):
        SecretRef.from_json({"name": "x"})
    assert check_secret_name("a-B-9") == "a-B-9"


def test_latest_after_many_quick_stores_is_the_last_one(vault: KeyVault) -> None:
    name = _name()
    refs = [vault.store(name, str(i), content_type="text/plain") for i in range(4)]
    assert vault.versions(name)[0].ref == refs[-1]
    assert vault.read(name).value == "3"


def _probes(url: str) -> tuple[set[str], set[str]]:
    """Live and soft-deleted probe secrets of a vault."""
    from shared.azure.keyvault import PROBE_PREFIX

    with SecretClient(url, DefaultAzureCredential(), verify_challenge_resource=False) as client:
        live = {p.name for p in client.list_properties_of_secrets() if p.name.startswith(PROBE_PREFIX)}
        deleted = {d.name for d in client.list_deleted_secrets() if d.name.startswith(PROBE_PREFIX)}
    return live, deleted


def test_write_probe_is_deleted_and_purged_where_the_vault_allows_it(
    vault: KeyVault, keyvault_env: KeyVaultEndpoint
) -> None:
    live, deleted = _probes(keyvault_env.url)
    result = vault.probe_write(tags={"cluster": "c", "filer": "f"})
    assert result.recovery_level == "Recoverable+Purgeable" and result.purged and not result.left
    assert _probes(keyvault_env.url) == (live, deleted)  # nothing left, not even soft-deleted


def test_write_probe_under_purge_protection_is_deleted_and_left_to_expire(
    keyvault_env: KeyVaultEndpoint, protected_keyvault: KeyVaultEndpoint
) -> None:
    live, deleted = _probes(protected_keyvault.url)
    with KeyVault(protected_keyvault.url) as protected:
        first = protected.probe_write(tags={"cluster": "c", "filer": "f"})
        second = protected.probe_write(tags={"cluster": "c", "filer": "f"})
    for result in (first, second):
        # Not purged, and not even asked to (the recovery level says the vault would refuse): no error either.
        assert result.recovery_level == "Recoverable" and not result.purged and not result.left
    assert first.name != second.name  # a deleted name stays reserved: each probe is a new one
    after_live, after_deleted = _probes(protected_keyvault.url)
    assert after_live == live  # no live probe
    assert after_deleted == deleted | {first.name, second.name}  # one soft-deleted secret per probe


def test_a_refused_write_probe_raises_naming_the_problem(keyvault_env: KeyVaultEndpoint, vault: KeyVault) -> None:
    keyvault_env.add_fault("error", method="PUT", path="/secrets/vfxtdr-preflight-probe-*", status=403, times=1)
    try:
        with pytest.raises(KeyVaultAccessError, match="403"):
            vault.probe_write(tags={})
    finally:
        keyvault_env.clear_faults()
