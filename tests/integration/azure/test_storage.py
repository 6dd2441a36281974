"""shared/azure/storage.py: accounts, read-only source SAS (key and user-delegation), retries on throttling."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import BlobServiceClient

from shared.azure.retry import RetrySettings, is_retryable, retry_after_seconds
from shared.azure.storage import (
    SasToken,
    StorageAccount,
    StorageConfigError,
    account_name_from_endpoint,
    split_container_url,
)
from shared.blobcopy import CatalogRef, ContainerRef, CopyJob, copy_container, credential_connector
from shared.blobcopy.session import CopyEnv
from tests.fixtures.copy import LocalToken


class _Response:
    def __init__(self, status, headers=None):
        self.status_code = status
        self.headers = headers or {}


def test_retryable_statuses_include_429_and_copy_source_throttling():
    assert all(is_retryable(_Response(s)) for s in (408, 429, 500, 502, 503, 504))
    assert not any(is_retryable(_Response(s)) for s in (400, 403, 404, 409, 412, 501, 505))
    assert is_retryable(_Response(409, {"x-ms-copy-source-error-code": "ServerBusy"}))


def test_retry_after_parsing_and_backoff():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds({"retry-after": date}) <= 31
    assert retry_after_seconds({}) is None
    settings = RetrySettings(initial_backoff=1, max_backoff=8, jitter=0, max_retry_after=60)
    assert [settings.backoff(n, None) for n in range(5)] == [1, 2, 4, 8, 8]
    assert settings.backoff(0, 20) == 20  # the server's Retry-After wins over a shorter backoff
    assert settings.backoff(0, 600) == 60  # ...up to a cap


def test_account_repr_and_sas_token_never_show_secrets():
    acct = StorageAccount("acct", "https://acct.blob.core.windows.net", "c2VjcmV0LWtleQ==")
    assert "c2VjcmV0" not in repr(acct) and "key" in repr(acct)
    token = SasToken("?sv=2024&sp=rl&sig=SECRETSIG")
    assert "SECRETSIG" not in repr(token) and token.permissions() == "rl"
    with pytest.raises(StorageConfigError):
        StorageAccount("acct", "ftp://x", "k")
    with pytest.raises(StorageConfigError):
        StorageAccount("acct", "https://x", "")


def _refused(call) -> int:
    with pytest.raises(HttpResponseError) as err:
        call()
    return err.value.status_code


def _sas_can_only_read_its_own_container(acct: StorageAccount, **client_kwargs) -> None:
    """The copy's SAS on container `own` reads its blobs, and does nothing else: no listing (not even of
    `own`), no write or delete, nothing at all in container `other` of the same account."""
    with acct.service_client() as client:
        own = client.get_container_client(f"own-{uuid.uuid4().hex[:8]}")
        other = client.get_container_client(f"other-{uuid.uuid4().hex[:8]}")
        for box in (own, other):
            box.create_container()
            box.upload_blob("obj", b"avere object", metadata={"AvereObjId": "1"})
    sas = acct.read_sas(own.container_name, StorageAccount.sas_lifetime(600, 60))
    through_sas = BlobServiceClient(acct.blob_endpoint, credential=sas, **client_kwargs)
    mine = through_sas.get_container_client(own.container_name)
    theirs = through_sas.get_container_client(other.container_name)
    assert mine.download_blob("obj").readall() == b"avere object"  # what the copy needs
    assert mine.get_blob_client("obj").get_blob_properties().metadata == {"AvereObjId": "1"}
    assert _refused(lambda: list(mine.list_blobs())) == 403
    assert _refused(lambda: mine.upload_blob("new", b"x")) == 403
    assert _refused(lambda: mine.upload_blob("obj", b"overwritten", overwrite=True)) == 403
    assert _refused(lambda: mine.delete_blob("obj")) == 403
    assert _refused(lambda: theirs.download_blob("obj").readall()) == 403
    assert _refused(lambda: list(theirs.list_blobs())) == 403
    assert _refused(lambda: theirs.upload_blob("new", b"x")) == 403
    assert _refused(lambda: theirs.delete_blob("obj")) == 403
    with acct.service_client() as client:  # nothing was changed through the SAS
        assert [b.name for b in client.get_container_client(own.container_name).list_blobs()] == ["obj"]
        assert [b.name for b in client.get_container_client(other.container_name).list_blobs()] == ["obj"]
        assert client.get_container_client(own.container_name).download_blob("obj").readall() == b"avere object"


def test_account_key_sas_of_the_copy_reads_its_container_only(azurite):
    source = azurite.accounts["source"]
    acct = StorageAccount(source.name, azurite.account_url("source"), source.key)
    _sas_can_only_read_its_own_container(acct)


def test_user_delegation_sas_of_the_copy_reads_its_container_only(oauth_azurite, azurite):
    source = azurite.accounts["source"]
    acct = StorageAccount(
        source.name,
        f"{oauth_azurite.blob_endpoint}/{source.name}",
        LocalToken(oauth_azurite.tenant),
        ca_file=oauth_azurite.ca_file,
    )
    assert parse_qs(acct.read_sas("any", timedelta(hours=1)))["spr"] == ["https"]
    _sas_can_only_read_its_own_container(acct, connection_verify=oauth_azurite.ca_file)


def test_operator_sas_is_used_as_given_but_must_allow_read():
    acct, container, prefix = split_container_url("https://acct.blob.core.windows.net/box/some/prefix?sp=rl&sig=x")
    assert (acct.name, container, prefix, acct.auth_kind) == ("acct", "box", "some/prefix", "sas")
    assert acct.read_sas("box", timedelta(hours=1)) == "sp=rl&sig=x"
    write_only, _, _ = split_container_url("http://127.0.0.1:10000/devacct/box?sp=w&sig=x")
    assert write_only.name == "devacct" and write_only.blob_endpoint == "http://127.0.0.1:10000/devacct"
    with pytest.raises(StorageConfigError, match="read"):
        write_only.read_sas("box", timedelta(hours=1))
    with pytest.raises(StorageConfigError, match="SAS"):
        split_container_url("https://acct.blob.core.windows.net/box")
    assert account_name_from_endpoint("https://acct.blob.core.windows.net") == "acct"


def test_connection_string_parsing(azurite):
    acct = StorageAccount.from_connection_string(azurite.connection_string("source"))
    assert acct.name == azurite.accounts["source"].name and acct.auth_kind == "key"
    assert acct.blob_endpoint == azurite.account_url("source")
    with pytest.raises(StorageConfigError):
        StorageAccount.from_connection_string("AccountName=x")


def test_user_delegation_sas_from_a_token_credential_copies_across_accounts(oauth_azurite, azurite):
    credential = LocalToken(oauth_azurite.tenant)
    src_name, dst_name = azurite.accounts["source"].name, azurite.accounts["dr"].name
    src = StorageAccount(
        src_name, f"{oauth_azurite.blob_endpoint}/{src_name}", credential, ca_file=oauth_azurite.ca_file
    )
    dst = StorageAccount(
        dst_name, f"{oauth_azurite.blob_endpoint}/{dst_name}", credential, ca_file=oauth_azurite.ca_file
    )
    assert src.auth_kind == "token"
    with src.service_client() as client:
        box = client.get_container_client("udsrc")
        box.create_container()
        for i in range(3):
            box.upload_blob(f"obj {i}", b"data" * i, metadata={"AvereObjId": str(i)})
    before = time.time()
    sas = src.read_sas("udsrc", StorageAccount.sas_lifetime(600, 60))
    query = parse_qs(sas)
    assert query["sp"] == ["r"] and "skoid" in query and "sig" in query
    expiry = datetime.strptime(query["se"][0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before + 655 <= expiry <= time.time() + 661
    # The engine end to end with the managed-identity path: aio clients, bearer auth, user-delegation SAS.
    job = CopyJob(
        job_id="ud-1",
        source=ContainerRef(_ref(src), "udsrc"),
        dest=ContainerRef(_ref(dst), "uddst"),
        catalog=CatalogRef(_ref(dst), "udcatalog", "x"),
    )
    env = CopyEnv(connect=credential_connector(credential, ca_file=oauth_azurite.ca_file))
    summary = copy_container(job, env, poll_interval=0.01)
    assert summary.verified and summary.copied == 3
    with dst.service_client() as client:
        target = client.get_container_client("uddst").get_blob_client("obj 2")
        assert target.download_blob().readall() == b"datadata"
        copy_source = urlsplit(target.get_blob_properties().copy.source)
        assert "skoid=" in copy_source.query  # the copy read the source through the user-delegation SAS


def _ref(acct):
    from shared.blobcopy import AccountRef

    return AccountRef(acct.name, acct.blob_endpoint)


def test_sync_client_retries_throttling_and_resets(copy_stack, faults):
    ref = copy_stack.ref("dr", via_proxy=True)
    acct = StorageAccount(
        ref.name,
        ref.blob_endpoint,
        copy_stack.keys[ref.name],
        retry=RetrySettings(total=4, initial_backoff=0.01, max_backoff=0.05),
    )
    container = copy_stack.new_container("dr", "rt")
    client = acct.service_client().get_container_client(container.container_name)
    busy = faults.add_rule("error", operation="GetContainerProperties", status=503, times=2)
    reset = faults.add_rule("reset", operation="GetContainerProperties", times=1)
    client.get_container_properties()
    assert (busy.fired, reset.fired) == (2, 1)
    throttle = faults.add_rule(
        "error", operation="GetContainerProperties", status=429, code="TooManyRequests", retry_after=1, times=1
    )
    started = time.monotonic()
    client.get_container_properties()
    assert throttle.fired == 1 and time.monotonic() - started >= 1.0  # Retry-After honoured
    faults.add_rule("error", operation="GetContainerProperties", status=500, code="InternalError")
    with pytest.raises(HttpResponseError) as err:
        client.get_container_properties()
    assert err.value.status_code == 500  # retries are bounded
    faults.clear()
    faults.add_rule("reset", operation="GetContainerProperties")
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        client.get_container_properties()
