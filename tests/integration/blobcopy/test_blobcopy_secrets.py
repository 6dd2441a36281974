"""No SAS signature or account key in logs, reports, catalog state or exception texts."""

from __future__ import annotations

import gzip
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.blobcopy import CopyError, copy_container, redact
from shared.blobcopy.steps import plan_page


def test_redact_strips_signatures_queries_and_keys():
    text = (
        "copy from https://a.blob.core.windows.net/c/b?sv=2024&sp=r&sig=AbC%2Bdef%3D then "
        "AccountKey=c2VjcmV0;BlobEndpoint=x and header x-ms-copy-source: http://127.0.0.1:1/a/c?se=1&sig=zzz"
    )
    out = redact(text)
    assert "AbC" not in out and "zzz" not in out and "c2VjcmV0" not in out
    assert "https://a.blob.core.windows.net/c/b?<redacted>" in out
    assert str(CopyError(text)).count("<redacted>") == 3


def test_no_signature_anywhere_after_a_run_with_faults_and_failures(copy_stack, faults, caplog):
    caplog.set_level(logging.DEBUG)
    src = copy_stack.new_container("source", "sec")
    for i in range(20):
        src.upload_blob(f"s/{i:02d} #?", b"secret-free data", metadata={"AvereObjId": str(i)})
    dest = copy_stack.container_name("bak")
    faults.add_rule("error", operation="CopyBlob", status=503, times=4)
    faults.add_rule("pending", polls=1, times=10)
    faults.add_rule("error", operation="CopyBlob", blob="s/07*", status=403, code="CannotVerifyCopySource")
    job = copy_stack.job(src.container_name, dest, via_proxy=True, page_size=8)
    summary = copy_container(job, copy_stack.env(), poll_interval=0.01)
    assert summary.failed == 1 and not summary.verified

    target = copy_stack.client("dr").get_container_client(dest)
    signatures = {
        parse_qs(urlsplit(b.copy.source).query)["sig"][0] for b in target.list_blobs(include=["copy"]) if b.copy.source
    }
    assert signatures, "the copies must have carried a SAS"
    catalog = copy_stack.client("dr").get_container_client("catalog")
    state = b"".join(
        gzip.decompress(catalog.download_blob(b.name).readall())
        for b in catalog.list_blobs(name_starts_with=job.catalog.prefix)
    )
    keys = [a.key for a in copy_stack.azurite.accounts.values()]
    haystacks = {"logs": caplog.text, "summary": str(summary.to_json()), "state": state.decode("utf-8")}
    for where, text in haystacks.items():
        for secret in [*signatures, *keys]:
            assert secret not in text, f"a secret leaked into {where}"
        assert "sig=" not in text, where
    assert "CannotVerifyCopySource" in haystacks["state"]  # the failure itself is recorded, redacted


def test_exception_texts_carry_no_signature(copy_stack, faults):
    src = copy_stack.new_container("source", "exc")
    src.upload_blob("a", b"1")
    job = copy_stack.job(src.container_name, copy_stack.container_name("bak"), via_proxy=True)
    faults.add_rule("error", operation="ListBlobs", status=403, code="AuthenticationFailed")
    import asyncio

    with pytest.raises(CopyError) as err:
        asyncio.run(plan_page(job, None, copy_stack.env()))
    assert "AuthenticationFailed" in str(err.value) and "sig=" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
