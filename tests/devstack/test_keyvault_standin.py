"""The Key Vault stand-in through the real SDK with DefaultAzureCredential, and over raw HTTPS."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache
from azure.storage.blob import BlobServiceClient

from devstack.stack.azurite import AZURITE_BLOB
from devstack.stack.identity import mint_token, token_claims
from devstack.stack.lifecycle import start_keyvault
from devstack.stack.ports import free_port, wait_for_port
from devstack.stack.procs import spawn, stop
from devstack.stack.tls import issue_server_cert
from tests.fixtures.keyvault import IdentityEndpoint, KeyVaultEndpoint

VAULT = "https://vault.azure.net"


def _name(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _raw(
    method: str, url: str, ca: Path, *, token: str | None = None, body: dict | None = None
) -> tuple[int, dict, dict | None]:
    """One HTTPS request; returns (status, headers, JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), json.loads(raw) if raw else None


@pytest.fixture
def client(keyvault_env: KeyVaultEndpoint) -> SecretClient:
    return SecretClient(keyvault_env.url, DefaultAzureCredential(), verify_challenge_resource=False)


@pytest.fixture
def vault_token(keyvault: KeyVaultEndpoint) -> str:
    return mint_token(VAULT, keyvault.tenant_id)[0]


def test_unauthenticated_request_gets_the_bearer_challenge(keyvault: KeyVaultEndpoint) -> None:
    status, headers, body = _raw("GET", f"{keyvault.url}/secrets?api-version=2026-04-01", keyvault.ca_cert)
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{keyvault.tenant_id}", '
        f'resource="https://vault.azure.net"'
    )
    assert body["error"]["code"] == "Unauthorized"


def test_sdk_answers_the_challenge_with_a_managed_identity_token(
    client: SecretClient, keyvault: KeyVaultEndpoint
) -> None:
    http_challenge_cache.clear()  # the SDK caches challenges per host for the whole process
    name = _name("challenge")
    client.set_secret(name, "challenge-value")
    lines = [line for line in keyvault.log.read_text().splitlines() if f"/secrets/{name} " in line]
    assert lines == [f"keyvault PUT /secrets/{name} 401", f"keyvault PUT /secrets/{name} 200"]
    assert client.get_secret(name).value == "challenge-value"


@pytest.mark.parametrize("claims_change", ["storage audience", "other tenant", "expired", "not a jwt"])
def test_tokens_not_for_this_vault_are_refused(keyvault: KeyVaultEndpoint, claims_change: str) -> None:
    token = {
        "storage audience": lambda: mint_token("https://storage.azure.com", keyvault.tenant_id)[0],
        "other tenant": lambda: mint_token(VAULT, str(uuid.uuid4()))[0],
        "expired": lambda: mint_token(VAULT, keyvault.tenant_id, now=time.time() - 7200)[0],
        "not a jwt": lambda: "not-a-token",
    }[claims_change]()
    status, headers, body = _raw("GET", f"{keyvault.url}/secrets?api-version=2026-04-01", keyvault.ca_cert, token=token)
    assert status == 401
    assert "WWW-Authenticate" in headers
    assert body["error"]["code"] == "Unauthorized"


def test_set_then_get_by_version_and_latest(client: SecretClient) -> None:
    name = _name()
    first = client.set_secret(name, "one", content_type="text/plain", tags={"cluster": "c1", "keyId": "k1"})
    second = client.set_secret(name, "two")
    assert re.fullmatch(r"[0-9a-f]{32}", first.properties.version)
    assert first.properties.version != second.properties.version
    got = client.get_secret(name, first.properties.version)
    assert (got.value, got.properties.content_type, got.properties.tags) == (
        "one",
        "text/plain",
        {"cluster": "c1", "keyId": "k1"},
    )
    assert got.properties.enabled is True
    assert got.properties.created_on is not None and got.properties.updated_on is not None
    assert got.properties.recovery_level == "Recoverable+Purgeable"
    latest = client.get_secret(name)
    assert (latest.value, latest.properties.version) == ("two", second.properties.version)


def test_unknown_secret_and_version_are_404(client: SecretClient) -> None:
    name = _name()
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret(name)
    assert missing.value.error.code == "SecretNotFound"
    client.set_secret(name, "x")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name, uuid.uuid4().hex)


def test_versions_are_listed_in_hash_order_across_pages(
    client: SecretClient, keyvault: KeyVaultEndpoint, vault_token: str
) -> None:
    name = _name()
    created = [client.set_secret(name, f"v{i}").properties.version for i in range(6)]
    listed = [p.version for p in client.list_properties_of_secret_versions(name, max_page_size=2)]
    assert sorted(listed) == sorted(created)
    assert listed == sorted(created)  # version-id (hash) order, not creation order: callers sort by created
    status, _, page = _raw(
        "GET",
        f"{keyvault.url}/secrets/{name}/versions?api-version=7.4&maxresults=2",
        keyvault.ca_cert,
        token=vault_token,
    )
    assert status == 200 and len(page["value"]) == 2
    assert page["nextLink"].startswith(f"{keyvault.url}/secrets/{name}/versions?")
    assert all("value" not in item for item in page["value"])


def test_list_secrets_gives_ids_without_versions(client: SecretClient) -> None:
    name = _name("listed")
    client.set_secret(name, "x", tags={"filer": "f1"})
    found = {p.name: p for p in client.list_properties_of_secrets(max_page_size=3)}
    assert found[name].version is None
    assert found[name].tags == {"filer": "f1"}


def test_update_properties_and_disabled_version_is_403(
    client: SecretClient, keyvault: KeyVaultEndpoint, vault_token: str
) -> None:
    name = _name()
    old = client.set_secret(name, "old").properties.version
    client.set_secret(name, "new")
    updated = client.update_secret_properties(name, content_type="application/json", tags={"k": "v"})
    assert (updated.content_type, updated.tags) == ("application/json", {"k": "v"})
    disabled = client.update_secret_properties(name, old, enabled=False)
    assert disabled.enabled is False and disabled.version == old
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret(name, old)
    assert denied.value.status_code == 403
    assert denied.value.error.code == "Forbidden"
    assert denied.value.error.innererror == {"code": "SecretDisabled"}
    assert client.get_secret(name).value == "new"  # the latest version is still enabled
    status, _, body = _raw(
        "PATCH",
        f"{keyvault.url}/secrets/{name}/{old}?api-version=2025-07-01",
        keyvault.ca_cert,
        token=vault_token,
        body={"attributes": {"enabled": True}},
    )
    assert status == 200 and "value" not in body and body["attributes"]["enabled"] is True
    assert client.get_secret(name, old).value == "old"


def test_soft_delete_recover_and_purge(client: SecretClient) -> None:
    name = _name()
    client.set_secret(name, "keep-me")
    deleted = client.begin_delete_secret(name, _polling_interval=0).result()
    assert deleted.recovery_id.endswith(f"/deletedsecrets/{name}")
    assert deleted.scheduled_purge_date > deleted.deleted_date
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    with pytest.raises(ResourceExistsError) as conflict:
        client.set_secret(name, "reuse")
    assert conflict.value.status_code == 409
    assert conflict.value.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}
    assert name in {d.name for d in client.list_deleted_secrets()}
    assert client.get_deleted_secret(name).name == name
    client.begin_recover_deleted_secret(name, _polling_interval=0).wait()
    assert client.get_secret(name).value == "keep-me"
    client.begin_delete_secret(name, _polling_interval=0).wait()
    client.purge_deleted_secret(name)
    assert name not in {d.name for d in client.list_deleted_secrets()}
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    assert client.set_secret(name, "fresh").value == "fresh"


def test_purge_protection_refuses_purges_as_key_vault_does(
    keyvault_env: KeyVaultEndpoint, protected_keyvault: KeyVaultEndpoint
) -> None:
    client = SecretClient(protected_keyvault.url, DefaultAzureCredential(), verify_challenge_resource=False)
    name = _name()
    assert client.set_secret(name, "kept").properties.recovery_level == "Recoverable"
    deleted = client.begin_delete_secret(name, _polling_interval=0).result()
    assert deleted.properties.recovery_level == "Recoverable"
    with pytest.raises(HttpResponseError) as refused:
        client.purge_deleted_secret(name)
    assert refused.value.status_code == 403 and refused.value.error.code == "Forbidden"
    assert "purge protection is enabled" in refused.value.error.message
    assert name in {d.name for d in client.list_deleted_secrets()}  # still there, recoverable
    with pytest.raises(ResourceExistsError):
        client.set_secret(name, "reuse")  # and its name still reserved
    client.begin_recover_deleted_secret(name, _polling_interval=0).wait()
    assert client.get_secret(name).value == "kept"


@pytest.mark.parametrize("bad", ["under_score", "x" * 128, "dot.name"])
def test_bad_names_are_400(client: SecretClient, bad: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        client.set_secret(bad, "x")
    assert err.value.status_code == 400
    assert err.value.error.code == "BadParameter"
    assert "invalid name" in err.value.error.message


def test_value_limit_is_25600_characters(client: SecretClient) -> None:
    name = _name()
    assert len(client.set_secret(name, "a" * 25_600).value) == 25_600
    with pytest.raises(HttpResponseError) as err:
        client.set_secret(name, "b" * 25_601)
    assert err.value.status_code == 400
    assert "25601" in err.value.error.message and "25600" in err.value.error.message
    assert "b" * 100 not in str(err.value)
    assert client.get_secret(name).value == "a" * 25_600  # the refused value changed nothing


@pytest.mark.parametrize("api_version", ["7.4", "7.6", "2025-07-01", "2026-04-01"])
def test_api_versions_the_sdk_may_send(keyvault_env: KeyVaultEndpoint, api_version: str) -> None:
    client = SecretClient(
        keyvault_env.url, DefaultAzureCredential(), verify_challenge_resource=False, api_version=api_version
    )
    name = _name()
    version = client.set_secret(name, "v").properties.version
    assert client.get_secret(name, version).value == "v"


def test_unknown_api_version_is_400(keyvault: KeyVaultEndpoint, vault_token: str) -> None:
    status, _, body = _raw("GET", f"{keyvault.url}/secrets?api-version=1999-01-01", keyvault.ca_cert, token=vault_token)
    assert status == 400 and body["error"]["code"] == "BadParameter"


def test_no_secret_value_or_token_in_the_logs(
    client: SecretClient, keyvault: KeyVaultEndpoint, identity: IdentityEndpoint
) -> None:
    name = _name("logged")
    value = f"never-log-{uuid.uuid4().hex}"
    version = client.set_secret(name, value).properties.version
    client.get_secret(name, version)
    client.update_secret_properties(name, version, tags={"t": "x"})
    list(client.list_properties_of_secret_versions(name))
    client.begin_delete_secret(name, _polling_interval=0).wait()
    vault_log = keyvault.log.read_text()
    assert f"/secrets/{name}" in vault_log  # the requests were logged...
    assert value not in vault_log  # ...but never the value
    assert "eyJ" not in vault_log  # nor a bearer token (base64url of '{"')
    identity_log = identity.log.read_text()
    assert identity.header not in identity_log and "eyJ" not in identity_log


def test_identity_endpoint_protocol(identity: IdentityEndpoint) -> None:
    def get(query: str, header: str | None) -> tuple[int, dict]:
        req = urllib.request.Request(f"{identity.endpoint}?{query}")
        if header is not None:
            req.add_header("X-IDENTITY-HEADER", header)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    good = "api-version=2019-08-01&resource=https://vault.azure.net"
    assert get(good, None)[0] == 401
    assert get(good, "wrong")[0] == 403
    assert get("api-version=2017-09-01&resource=https://vault.azure.net", identity.header)[0] == 400
    assert get("api-version=2019-08-01", identity.header)[0] == 400
    status, body = get(good, identity.header)
    assert status == 200
    assert set(body) >= {"access_token", "expires_on", "resource", "token_type"}
    assert body["resource"] == VAULT and body["token_type"] == "Bearer"
    claims = token_claims(body["access_token"])
    assert claims["aud"] == VAULT
    assert claims["iss"] == f"https://sts.windows.net/{identity.tenant_id}/"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] <= time.time() + 1
    assert int(body["expires_on"]) == claims["exp"]


def _client_for(vault: dict) -> SecretClient:
    return SecretClient(
        vault["url"], DefaultAzureCredential(), verify_challenge_resource=False, connection_verify=vault["ca_cert"]
    )


def test_restart_keeps_secrets(state_root: Path, tmp_path: Path, keyvault_env: KeyVaultEndpoint) -> None:
    # Share the session tenant so the session's identity endpoint mints tokens this vault accepts.
    (tmp_path / "identity").mkdir()
    shutil.copy(state_root / "identity" / "tenant.json", tmp_path / "identity" / "tenant.json")
    procs, part = start_keyvault(tmp_path, {})
    try:
        first = _client_for(part["keyvault"])
        version = first.set_secret("survivor", "still-here", tags={"a": "b"}).properties.version
    finally:
        stop(procs[0])
    data = tmp_path / "keyvault" / "secrets.json"
    assert data.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keyvault").stat().st_mode & 0o777 == 0o700
    procs, part = start_keyvault(tmp_path, {})
    try:
        again = _client_for(part["keyvault"])
        got = again.get_secret("survivor", version)
        assert (got.value, got.properties.tags) == ("still-here", {"a": "b"})
    finally:
        stop(procs[0])


def test_identity_tokens_satisfy_azurite_oauth(state_root: Path, keyvault_env: KeyVaultEndpoint) -> None:
    # Azurite --oauth basic checks iss/aud/nbf/exp (not signatures) and needs HTTPS: same CA as the vault.
    cert = issue_server_cert(state_root / "tls", "azurite-oauth")
    port = free_port()
    proc = spawn(
        "azurite-oauth",
        [
            str(AZURITE_BLOB),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--cert",
            str(cert.cert),
            "--key",
            str(cert.key),
            "--oauth",
            "basic",
            "--skipApiVersionCheck",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--silent",
        ],
        state_root / "logs",
    )
    try:
        wait_for_port(port, 30)
        blobs = BlobServiceClient(f"https://127.0.0.1:{port}/devstoreaccount1", credential=DefaultAzureCredential())
        blobs.create_container("oauth").upload_blob("x", b"bearer")
        assert blobs.get_blob_client("oauth", "x").download_blob().readall() == b"bearer"
    finally:
        stop(proc)
