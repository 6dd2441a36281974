"""The runbook through shared/avere/client.py on the simulator: rotate, capture, flush, remove, re-add, failover."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle
from devstack.cluster.waits import wait_healthy
from devstack.stack.azurite import Azurite
from shared.avere.client import AvereClient
from shared.avere.records import FilerRecord, Recovery
from tests.fixtures.cluster import (
    add_junction,
    blob_service,
    client_for,
    create_filer,
    new_container,
    read,
    write,
)

FILES = {
    "/projects/readme.txt": b"hello from the primary\n",
    "/projects/results/big.bin": os.urandom(2 * 1024 * 1024 + 12345),  # three 1 MiB objects
    "/projects/results/empty.dat": b"",
    "/scratch/notes.md": b"# notes\n" * 100,
}


def _wait_all(client: AvereClient, clock: VirtualClock, activities: list[str]) -> None:
    """Poll like the orchestrator does: activity_status on timers (here: the virtual clock)."""
    for activity in activities:
        for _ in range(600):
            status = client.activity_status(activity)
            if status.done:
                break
            clock.advance(1)
        assert status.succeeded, status


def _setup_primary(client: AvereClient, azurite: Azurite) -> str:
    filer = create_filer(client, azurite, name="projects")
    client.call("nfs.addPolicy", "vserver", "lab")
    client.call(
        "nfs.addRule",
        "vserver",
        "lab",
        "network",
        "10.20.0.0/16",
        "rw",
        "root_squash",
        "-2",
        False,
        "",
        {"authSys": True, "authKrb": False},
    )
    add_junction(client, "vserver", "/projects", filer.name, subdir="data", createSubdirs="yes", permissions="modebits")
    add_junction(
        client,
        "vserver",
        "/scratch",
        filer.name,
        subdir="tmp",
        createSubdirs="yes",
        inheritPolicy="no",
        policy="lab",
        access="posix",
    )
    for path, data in FILES.items():
        write(client, path, data)
    return filer.bucket


def _rotate(client: AvereClient, name: str, passphrase: str) -> Recovery:
    """Step 1: generate, store (here: keep in memory) before activating, then check the status."""
    key = client.generate_master_key(name, passphrase)
    stored = Recovery(passphrase, key.recovery_file)
    client.activate_master_key(name, key.key_id, key.recovery_file)
    assert client.master_key_status(name).active_key_id == key.key_id
    return stored


def _flush_and_remove(client: AvereClient, clock: VirtualClock, name: str) -> None:
    assert client.dirty_files(name).num_files == len(FILES)
    _wait_all(client, clock, [client.flush_core_filer(name)])
    assert client.dirty_files(name).num_files == 0
    _wait_all(client, clock, client.remove_junctions(name))
    _wait_all(client, clock, [client.remove_core_filer(name)])
    assert client.filer_state(name) == "removed"
    assert client.remove_core_filer(name) == "success"  # removing what is gone is a no-op


def _re_add(
    client: AvereClient, clock: VirtualClock, record: FilerRecord, *, bucket: str, credential: str, recovery: Recovery
) -> None:
    server = bucket.split("/", maxsplit=1)[0] + ".blob.core.windows.net"
    activity = client.add_cloud_core_filer(record, bucket, server, credential, recovery=recovery)
    _wait_all(client, clock, [activity])
    # Called again once created: uploads the recovery file and stops (no new key).
    assert client.add_cloud_core_filer(record, bucket, server, credential, recovery=recovery) == "success"
    status = client.master_key_status(record.name)
    assert status.active_key_id == record.active_key_id and status.ready_to_activate == ""
    _wait_all(client, clock, client.restore_junctions(record))
    assert client.restore_junctions(record) == []  # already there: nothing to do
    client.unsuspend_clients(record.name)
    assert wait_healthy(client, record.name, timeout=30).healthy


def test_rotate_capture_flush_remove_readd_restores_everything(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    bucket = _setup_primary(client, azurite)
    recovery = _rotate(client, "projects", "second passphrase")
    record = client.capture_core_filer("projects")
    # The record travels through orchestration history as JSON.
    record = FilerRecord.from_json(json.loads(json.dumps(FilerRecord.to_json(record))))
    assert {j.path for j in record.junctions} == {"/projects", "/scratch"}
    assert [p.name for p in record.export_policies] == ["lab"]

    _flush_and_remove(client, cluster_clock, "projects")
    _re_add(client, cluster_clock, record, bucket=bucket, credential=record.credential_name, recovery=recovery)

    assert client.capture_core_filer("projects") == record  # junctions and policies restored exactly
    for path, data in FILES.items():
        assert read(client, path) == data
    methods = {entry["method"] for entry in client.call("sim.callLog")}
    assert "corefiler.remove" in methods and "corefiler.invalidate" not in methods


def test_failover_to_dr_cluster_from_a_copied_container(
    primary_cluster: ClusterHandle, dr_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    primary = client_for(primary_cluster, cluster_clock)
    bucket = _setup_primary(primary, azurite)
    recovery = _rotate(primary, "projects", "failover passphrase")
    record = primary.capture_core_filer("projects")
    _flush_and_remove(primary, cluster_clock, "projects")

    # Server-side copy, byte for byte with metadata, into a container of the DR-region account.
    source_account, source_name = bucket.split("/")
    source = blob_service(azurite, "source").get_container_client(source_name)
    backup_bucket = new_container(azurite, "dr", "backup")
    backup = blob_service(azurite, "dr").get_container_client(backup_bucket.split("/")[1])
    sas = generate_container_sas(
        source_account,
        source_name,
        account_key=azurite.accounts["source"].key,
        permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(minutes=10),
    )
    for blob in source.list_blobs():
        backup.get_blob_client(blob.name).start_copy_from_url(f"{source.get_blob_client(blob.name).url}?{sas}")

    dr = client_for(dr_cluster, cluster_clock)
    dr_account = azurite.accounts["dr"]
    credential = f"azure-storage-{dr_account.name}"
    assert dr.ensure_credential(credential, dr_account.name, dr_account.key) == "created"
    _re_add(dr, cluster_clock, record, bucket=backup_bucket, credential=credential, recovery=recovery)
    for path, data in FILES.items():
        assert read(dr, path) == data
    mounts = dr.client_mount_addresses("projects")
    assert mounts[0].paths == ("/projects", "/scratch") and mounts[0].addresses
    primary_first = primary.call("vserver.get", "vserver")["vserver"]["clientFacingIPs"][0]["firstIP"]
    assert primary_first not in mounts[0].addresses  # clients remount at the DR cluster's addresses
