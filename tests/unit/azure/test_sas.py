"""The SAS this app mints for a copy source, read back from the token: what it allows, where, how, how long."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import UserDelegationKey

from shared.azure.storage import (
    MAX_SAS_LIFETIME,
    SAS_CLOCK_SKEW,
    SasToken,
    StorageAccount,
    StorageConfigError,
    container_read_sas,
    sas_protocol,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
KEY = base64.b64encode(b"k" * 64).decode()


def terms(token: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(token).items()}


def when(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def delegation_key() -> UserDelegationKey:
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = "00000000-0000-0000-0000-000000000001", "11111111-2222-3333-4444-555555555555"
    key.signed_start, key.signed_expiry = "2029-12-31T23:55:00Z", "2030-01-01T01:10:00Z"
    key.signed_service, key.signed_version = "b", "2025-01-05"
    key.value = KEY
    return key


@pytest.mark.parametrize("endpoint", ["https://acct.blob.core.windows.net", "https://127.0.0.1:10000/acct"])
def test_account_key_sas_reads_one_container_over_https_for_the_pending_limit_plus_margin(endpoint: str) -> None:
    acct = StorageAccount("acct", endpoint, KEY)
    lifetime = StorageAccount.sas_lifetime(3600, 600)
    got = terms(acct.read_sas("box", lifetime, now=NOW))
    assert got["sp"] == "r"  # read only: no list, write, delete, add, create, tag...
    assert got["sr"] == "c"  # one container
    assert got["spr"] == "https"
    assert when(got["se"]) - NOW == lifetime == timedelta(minutes=70)
    assert when(got["se"]) - when(got["st"]) == lifetime + SAS_CLOCK_SKEW  # valid from just before it was made
    assert "skoid" not in got  # signed with the account key: storage_auth "key"


def test_listing_is_added_only_when_asked() -> None:
    acct = StorageAccount("acct", "https://acct.blob.core.windows.net", KEY)
    assert terms(acct.read_sas("box", timedelta(hours=1), now=NOW, listing=True))["sp"] == "rl"


def test_user_delegation_sas_has_the_same_terms_and_names_the_identity() -> None:
    lifetime = StorageAccount.sas_lifetime(3600, 600)
    token = container_read_sas(
        "acct",
        "box",
        "https://acct.blob.core.windows.net",
        start=NOW - SAS_CLOCK_SKEW,
        expiry=NOW + lifetime,
        delegation_key=delegation_key(),
    )
    got = terms(token)
    assert (got["sp"], got["sr"], got["spr"]) == ("r", "c", "https")
    assert when(got["se"]) - when(got["st"]) == lifetime + SAS_CLOCK_SKEW
    assert got["skoid"] == "00000000-0000-0000-0000-000000000001" and got["sig"]


def test_plain_http_only_on_loopback() -> None:
    assert sas_protocol("https://acct.blob.core.windows.net") == "https"
    assert sas_protocol("http://127.0.0.1:10000/acct") == "https,http"
    assert sas_protocol("http://localhost:10000/acct") == "https,http"
    assert sas_protocol("http://[::1]:10000/acct") == "https,http"
    for endpoint in ("http://acct.blob.core.windows.net", "http://10.0.0.4:10000/acct", "http://localhost.evil.com"):
        with pytest.raises(StorageConfigError, match="https only"):
            sas_protocol(endpoint)
        with pytest.raises(StorageConfigError, match="https only"):
            StorageAccount("acct", endpoint, KEY).read_sas("box", timedelta(hours=1), now=NOW)


def test_lifetime_and_signing_rules() -> None:
    with pytest.raises(StorageConfigError, match="7-day"):
        StorageAccount.sas_lifetime(7 * 24 * 3600, 1)
    with pytest.raises(StorageConfigError):
        StorageAccount.sas_lifetime(0, 60)
    acct = StorageAccount("acct", "https://acct.blob.core.windows.net", KEY)
    for lifetime in (timedelta(0), MAX_SAS_LIFETIME + timedelta(seconds=1)):
        with pytest.raises(StorageConfigError, match="lifetime"):
            acct.read_sas("box", lifetime, now=NOW)
    with pytest.raises(StorageConfigError, match="one container"):
        acct.read_sas("", timedelta(hours=1), now=NOW)
    with pytest.raises(StorageConfigError, match="exactly one"):
        container_read_sas("acct", "box", "https://x", start=NOW, expiry=NOW + timedelta(hours=1))
    with pytest.raises(StorageConfigError, match="exactly one"):
        container_read_sas(
            "acct",
            "box",
            "https://x",
            start=NOW,
            expiry=NOW + timedelta(hours=1),
            account_key=KEY,
            delegation_key=delegation_key(),
        )


def test_an_operator_sas_is_used_as_given_but_must_allow_what_is_asked() -> None:
    acct = StorageAccount("acct", "https://acct.blob.core.windows.net", SasToken("sp=r&sig=x"))
    assert acct.read_sas("box", timedelta(hours=1)) == "sp=r&sig=x"
    with pytest.raises(StorageConfigError, match="lacks list"):
        acct.read_sas("box", timedelta(hours=1), listing=True)
