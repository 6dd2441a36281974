"""Azurite from the pinned npm package: two accounts, and a server-side copy between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from devstack.stack.azurite import Azurite


def test_two_accounts_in_different_regions(azurite: Azurite) -> None:
    assert azurite.accounts["source"].name != azurite.accounts["dr"].name
    assert azurite.accounts["source"].region != azurite.accounts["dr"].region


def test_copy_blob_across_accounts(azurite: Azurite) -> None:
    src = BlobServiceClient.from_connection_string(azurite.connection_string("source"))
    dst = BlobServiceClient.from_connection_string(azurite.connection_string("dr"))
    src_c = src.get_container_client("smoke-src")
    dst_c = dst.get_container_client("smoke-dst")
    src_c.create_container()
    dst_c.create_container()
    src_c.upload_blob("a b/ü#?.bin", b"\x00payload", metadata={"AvereKey": "v1"})
    sas = generate_container_sas(
        azurite.accounts["source"].name,
        "smoke-src",
        account_key=azurite.accounts["source"].key,
        permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(minutes=5),
    )
    source_url = f"{src_c.get_blob_client('a b/ü#?.bin').url}?{sas}"
    dest = dst_c.get_blob_client("a b/ü#?.bin")
    dest.start_copy_from_url(source_url)
    assert dest.download_blob().readall() == b"\x00payload"
    assert dest.get_blob_properties().metadata == {"AvereKey": "v1"}
