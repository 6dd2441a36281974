"""The fault proxy: faithful pass-through, every fault, pending copies, blocked accounts, control API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from devstack.faultproxy.proxy import FaultProxyClient, classify, start_fault_proxy_process
from devstack.stack.ports import free_port
from devstack.stack.procs import stop
from shared.azure.storage import RetrySettings, StorageAccount

NO_RETRY = RetrySettings(total=0, connection_timeout=5, read_timeout=10)


def _account(copy_stack, role, retry=NO_RETRY):
    ref = copy_stack.ref(role, via_proxy=True)
    return StorageAccount(ref.name, ref.blob_endpoint, copy_stack.keys[ref.name], retry=retry)


def _source_url(copy_stack, container, name):
    acct = _account(copy_stack, "source")
    sas = generate_container_sas(
        acct.name,
        container,
        account_key=copy_stack.keys[acct.name],
        permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(minutes=10),
    )
    return f"{acct.blob_url(container, name)}?{sas}"


@pytest.fixture
def pair(copy_stack):
    """A source container with one blob and an empty destination container, both reached via the proxy."""
    src = copy_stack.new_container("source", "px")
    src.upload_blob("dir/a b#?.bin", b"payload" * 100, metadata={"AvereKey": "v1"})
    dst = copy_stack.new_container("dr", "px")
    src_client = _account(copy_stack, "source").service_client().get_container_client(src.container_name)
    dst_client = _account(copy_stack, "dr").service_client().get_container_client(dst.container_name)
    return src_client, dst_client


def test_pass_through_keeps_bytes_metadata_and_host_so_copy_blob_works(copy_stack, faults, pair):
    src, dst = pair
    assert src.download_blob("dir/a b#?.bin").readall() == b"payload" * 100
    assert [b.name for b in src.list_blobs()] == ["dir/a b#?.bin"]
    target = dst.get_blob_client("dir/a b#?.bin")
    result = target.start_copy_from_url(_source_url(copy_stack, src.container_name, "dir/a b#?.bin"))
    assert result["copy_status"] == "success"
    assert target.get_blob_properties().metadata == {"AvereKey": "v1"}
    stats = faults.stats()
    assert stats["vfxtdr:CopyBlob"] == 1
    # Azurite verified the copy source by reading it back through the proxy (its Host is the proxy's).
    assert stats["vfxtsource:GetBlobProperties"] >= 1


def test_error_rule_with_skip_times_and_matching(copy_stack, faults, pair):
    src, dst = pair
    rule = faults.add_rule(
        "error", account=src.account_name, operation="GetBlob", status=503, code="ServerBusy", skip=1, times=2
    )
    src.download_blob("dir/a b#?.bin").readall()  # skipped
    for _ in range(2):
        with pytest.raises(HttpResponseError) as err:
            src.download_blob("dir/a b#?.bin").readall()
        assert err.value.status_code == 503 and err.value.error_code == "ServerBusy"
    src.download_blob("dir/a b#?.bin").readall()  # times used up
    dst.get_container_properties()  # other account and operation: untouched
    assert (rule.matched, rule.fired) == (4, 2)


def test_429_carries_retry_after(copy_stack, faults, pair):
    src, _ = pair
    faults.add_rule("error", operation="ListBlobs", status=429, code="TooManyRequests", retry_after=7, times=1)
    with pytest.raises(HttpResponseError) as err:
        list(src.list_blobs())
    assert err.value.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"


def test_connection_reset(copy_stack, faults, pair):
    src, _ = pair
    faults.add_rule("reset", operation="GetBlobProperties", times=1)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        src.get_blob_client("dir/a b#?.bin").get_blob_properties()
    assert src.get_blob_client("dir/a b#?.bin").get_blob_properties().size == 700


def test_slow_response(copy_stack, faults, pair):
    src, _ = pair
    faults.add_rule("delay", delay=0.4, operation="GetBlobProperties", times=1)
    started = time.monotonic()
    src.get_blob_client("dir/a b#?.bin").get_blob_properties()
    assert time.monotonic() - started >= 0.4


def test_pending_copy_shows_pending_for_n_polls_then_success(copy_stack, faults, pair):
    src, dst = pair
    faults.add_rule("pending", polls=2, times=1)
    target = dst.get_blob_client("dir/a b#?.bin")
    result = target.start_copy_from_url(_source_url(copy_stack, src.container_name, "dir/a b#?.bin"))
    assert result["copy_status"] == "pending"
    seen = [
        target.get_blob_properties().copy.status,
        next(iter(dst.list_blobs(include=["copy"]))).copy.status,
        target.get_blob_properties().copy.status,
    ]
    assert seen == ["pending", "pending", "success"]
    assert target.get_blob_properties().copy.status == "success"


def test_pending_copy_can_fail_and_conflicts_while_pending(copy_stack, faults, pair):
    src, dst = pair
    faults.add_rule("pending", polls=1, outcome="failed", times=1)
    target = dst.get_blob_client("dir/a b#?.bin")
    url = _source_url(copy_stack, src.container_name, "dir/a b#?.bin")
    target.start_copy_from_url(url)
    with pytest.raises(HttpResponseError) as err:
        target.start_copy_from_url(url)  # one pending copy per blob, as in Azure
    assert err.value.status_code == 409 and err.value.error_code == "PendingCopyOperation"
    assert target.get_blob_properties().copy.status == "pending"
    failed = target.get_blob_properties().copy
    assert failed.status == "failed" and "InternalError" in failed.status_description
    assert target.start_copy_from_url(url)["copy_status"] == "success"  # a new copy replaces it


def test_pending_copy_aborts(copy_stack, faults, pair):
    src, dst = pair
    faults.add_rule("pending", polls=None, times=1)
    target = dst.get_blob_client("dir/a b#?.bin")
    url = _source_url(copy_stack, src.container_name, "dir/a b#?.bin")
    copy_id = target.start_copy_from_url(url)["copy_id"]
    assert target.get_blob_properties().copy.status == "pending"
    target.abort_copy(copy_id)
    assert target.get_blob_properties().copy.status == "aborted"
    with pytest.raises(HttpResponseError) as err:
        target.abort_copy(copy_id)
    assert err.value.error_code == "NoPendingCopyOperation"


def test_blocked_account_is_unreachable_for_clients_and_server_side_copies(copy_stack, faults, pair):
    src, dst = pair
    faults.block_account(src.account_name)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        src.get_container_properties()
    dst.get_container_properties()  # the other region still answers
    with pytest.raises(HttpResponseError):  # the destination service cannot read the lost source either
        url = _source_url(copy_stack, src.container_name, "dir/a b#?.bin")
        dst.get_blob_client("x").start_copy_from_url(url)
    assert faults.unblock_account(src.account_name)
    assert src.get_container_properties() is not None


def test_classify_operations():
    assert classify("PUT", "/a/c/b", {}, {"x-ms-copy-source": "u"}).operation == "CopyBlob"
    assert (
        classify("PUT", "/a/c/b", {}, {"x-ms-copy-source": "u", "x-ms-requires-sync": "true"}).operation
        == "CopyBlobFromURL"
    )
    assert (
        classify("PUT", "/a/c/b", {}, {"x-ms-copy-source": "u", "x-ms-blob-type": "BlockBlob"}).operation
        == "PutBlobFromURL"
    )
    assert classify("PUT", "/a/c/b", {"comp": "block"}, {"x-ms-copy-source": "u"}).operation == "PutBlockFromURL"
    assert classify("PUT", "/a/c/b", {"comp": "copy"}, {}).operation == "AbortCopyBlob"
    assert classify("GET", "/a/c", {"restype": "container", "comp": "list"}, {}).operation == "ListBlobs"
    op = classify("HEAD", "/acct/cont/dir/x%20y%23", {}, {})
    assert (op.account, op.container, op.blob) == ("acct", "cont", "dir/x y#")
    assert op.operation == "GetBlobProperties"


def test_control_endpoint_from_another_process(azurite, state_root, copy_stack):
    proc, url = start_fault_proxy_process(azurite.blob_endpoint, state_root, free_port())
    try:
        client = FaultProxyClient(url)
        rule = client.add_rule("error", operation="GetContainerProperties", status=500, code="InternalError", times=1)
        assert [r["id"] for r in client.rules()] == [rule["id"]]
        name = copy_stack.azurite.accounts["dr"].name
        service = BlobServiceClient(
            f"{url}/{name}", credential={"account_name": name, "account_key": copy_stack.keys[name]}, retry_total=0
        )
        container = copy_stack.new_container("dr", "ctl")
        with pytest.raises(HttpResponseError):
            service.get_container_client(container.container_name).get_container_properties()
        client.block_account(name)
        with pytest.raises((ServiceRequestError, ServiceResponseError)):
            service.get_container_client(container.container_name).get_container_properties()
        assert client.unblock_account(name)
        service.get_container_client(container.container_name).get_container_properties()
        assert client.stats()[f"{name}:GetContainerProperties"] == 3
        client.clear()
        assert client.rules() == []
    finally:
        stop(proc)
