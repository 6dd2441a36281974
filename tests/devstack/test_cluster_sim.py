"""The simulator's object format, keys, clock-driven behaviour and persistence, seen through the client."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from azure.storage.blob import ContainerClient

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle, Timing
from devstack.cluster.waits import wait_activity
from devstack.stack.azurite import Azurite
from shared.avere import errors as E
from shared.avere.client import AvereClient
from shared.avere.records import Recovery
from tests.fixtures.cluster import (
    ENCRYPTED,
    add_junction,
    blob_service,
    client_for,
    create_filer,
    new_container,
    read,
    write,
)

MIB = 1024 * 1024


def _container(azurite: Azurite, bucket: str) -> ContainerClient:
    account, name = bucket.split("/")
    role = next(r for r, a in azurite.accounts.items() if a.name == account)
    return blob_service(azurite, role).get_container_client(name)


def _remove(client: AvereClient, name: str) -> None:
    for activity in client.remove_junctions(name):
        wait_activity(client, activity)
    wait_activity(client, client.remove_core_filer(name))


def _attach(client: AvereClient, azurite: Azurite, bucket: str, recovery: Recovery | None) -> None:
    """Attach `bucket` as 'projects' with 'used' data on the client's cluster, junction /projects."""
    account = azurite.accounts["source"]
    credential = f"azure-storage-{account.name}"
    client.ensure_credential(credential, account.name, account.key)
    wait_activity(
        client,
        client.call(
            "corefiler.createCloudFiler",
            "projects",
            {
                "cloudType": "azure",
                "bucket": bucket,
                "cloudCredential": credential,
                "cryptoMode": ENCRYPTED,
                "bucketContents": "used",
            },
        ),
    )
    if recovery is not None:
        client.upload_recovery_file("projects", recovery)
    add_junction(client, "vserver", "/projects", "projects")
    client.unsuspend_clients("projects")


def test_encrypted_objects_hide_data_and_reject_tampering(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock, retries=0)
    filer = create_filer(client, azurite)
    add_junction(client, "vserver", "/projects", "projects")
    secret = b"TOP-SECRET-PAYLOAD " * 200_000  # ~3.8 MB: four chunk objects
    write(client, "/projects/classified/plans.txt", secret)
    wait_activity(client, client.flush_core_filer("projects"))
    container = _container(azurite, filer.bucket)
    blobs = {b.name: b for b in container.list_blobs(include=["metadata"])}
    chunks = sorted(n for n in blobs if n.startswith("c/"))
    assert len(chunks) == 4 and len([n for n in blobs if n.startswith("i/")]) == 1
    for name in blobs:
        body = container.download_blob(name).readall()
        assert b"TOP-SECRET" not in body and b"plans.txt" not in body and b"classified" not in body
    meta = dict(blobs[chunks[1]].metadata)
    assert meta["AvereKeyId"] == client.master_key_status("projects").active_key_id
    original = container.download_blob(chunks[1]).readall()
    tampered = {
        "dropped key": ({k: v for k, v in meta.items() if k != "AvereKeyId"}, original, "lacks AvereKeyId"),
        "key case": (
            {**{k: v for k, v in meta.items() if k != "AvereKeyId"}, "averekeyid": meta["AvereKeyId"]},
            original,
            "lacks AvereKeyId",
        ),
        "other chunk no": ({**meta, "AvereChunk": "2"}, original, "authentication failed"),
        "flipped byte": (meta, original[:100] + bytes([original[100] ^ 1]) + original[101:], "authentication failed"),
    }
    for case, (metadata, body, problem) in tampered.items():
        container.upload_blob(chunks[1], body, metadata=metadata, overwrite=True)
        with pytest.raises(E.AvereGenericError, match=problem):
            read(client, "/projects/classified/plans.txt")
        container.upload_blob(chunks[1], original, metadata=meta, overwrite=True)
        assert read(client, "/projects/classified/plans.txt") == secret, case


def test_unencrypted_objects_are_still_authenticated(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock, retries=0)
    filer = create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a.txt", b"plain data")
    wait_activity(client, client.flush_core_filer("projects"))
    container = _container(azurite, filer.bucket)
    inode = next(b for b in container.list_blobs(include=["metadata"]) if b.name.startswith("c/"))
    body = container.download_blob(inode.name).readall()
    container.upload_blob(inode.name, body + b"!", metadata=inode.metadata, overwrite=True)
    with pytest.raises(E.AvereGenericError, match="digest mismatch"):
        read(client, "/projects/a.txt")


def test_key_rotation_new_objects_use_the_new_key_and_the_newest_file_holds_all(
    make_cluster: Callable[..., ClusterHandle], azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    primary = client_for(make_cluster("primary"), cluster_clock, retries=0)
    filer = create_filer(primary, azurite, passphrase="first")
    assert filer.key is not None
    add_junction(primary, "vserver", "/projects", "projects")
    write(primary, "/projects/old.txt", b"written under key 1")
    wait_activity(primary, primary.flush_core_filer("projects"))
    second = primary.generate_master_key("projects", "second")
    primary.activate_master_key("projects", second.key_id, second.recovery_file)
    write(primary, "/projects/new.txt", b"written under key 2")
    wait_activity(primary, primary.flush_core_filer("projects"))
    blobs = _container(azurite, filer.bucket).list_blobs(include=["metadata"])
    key_ids = {b.metadata["AvereKeyId"] for b in blobs if b.name.startswith("c/")}
    assert key_ids == {filer.key.key_id, second.key_id}
    _remove(primary, "projects")

    newest = client_for(make_cluster("dr", "dr"), cluster_clock, retries=0)
    _attach(newest, azurite, filer.bucket, Recovery("second", second.recovery_file))
    assert read(newest, "/projects/old.txt") == b"written under key 1"
    assert read(newest, "/projects/new.txt") == b"written under key 2"
    _remove(newest, "projects")

    older = client_for(make_cluster("dr2", "dr"), cluster_clock, retries=0)
    _attach(older, azurite, filer.bucket, Recovery("first", filer.key.recovery_file))
    with pytest.raises(E.AvereGenericError, match="lacks"):  # the index holds an inode under key 2
        read(older, "/projects/old.txt")


def test_restart_keeps_filers_junctions_keys_and_dirty_data(
    make_cluster: Callable[..., ClusterHandle], azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    first = make_cluster("primary")
    client = client_for(first, cluster_clock)
    create_filer(client, azurite)
    add_junction(client, "vserver", "/projects", "projects", inheritPolicy="no", policy="default")
    write(client, "/projects/dirty.txt", b"only in the cache")
    before = (
        client.capture_core_filer("projects"),
        client.master_key_status("projects"),
        client.dirty_files("projects"),
    )
    first.stop()

    again = make_cluster("primary")
    assert again.password == first.password
    client = client_for(again, cluster_clock)
    after = (
        client.capture_core_filer("projects"),
        client.master_key_status("projects"),
        client.dirty_files("projects"),
    )
    assert after == before and after[2].num_files == 1
    assert read(client, "/projects/dirty.txt") == b"only in the cache"
    wait_activity(client, client.flush_core_filer("projects"))
    assert client.dirty_files("projects").num_files == 0


def test_writeback_follows_the_cache_policy_delay(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    client.call(
        "cachePolicy.create",
        "Quick Writeback",
        "read-write",
        60,
        {"checkAttrPeriod": 10, "checkDirAttrPeriod": 10},
        False,
    )
    filer = create_filer(client, azurite, encrypted=False, policy="Quick Writeback")
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a.txt", b"soon in the cloud")
    cluster_clock.advance(59)
    info = client.dirty_files("projects")
    assert info.num_files == 1 and info.oldest_age == 59
    assert not any(b.name.startswith("i/") for b in _container(azurite, filer.bucket).list_blobs())
    cluster_clock.advance(2)
    assert client.dirty_files("projects").num_files == 0
    assert any(b.name.startswith("i/") for b in _container(azurite, filer.bucket).list_blobs())

    dr = client_for(primary_cluster, cluster_clock)
    record = dr.capture_core_filer("projects")
    assert record.cache_policy.writeback_delay == 60 and not record.cache_policy.builtin


def test_flush_progress_follows_the_clock(
    make_cluster: Callable[..., ClusterHandle], azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    handle = make_cluster("primary", timing=Timing(flush_base=2, bytes_per_second=MIB))
    client = client_for(handle, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    for i in range(4):
        write(client, f"/projects/f{i}.bin", os.urandom(MIB))
    flush = client.flush_core_filer("projects")  # 2 s + 4 MiB at 1 MiB/s
    seen = []
    for _ in range(3):
        status = client.activity_status(flush)
        seen.append((status.state, status.percent, client.dirty_files("projects").num_files))
        cluster_clock.advance(3)
    assert seen == [("inprogress", 0, 4), ("inprogress", 50, 2), ("success", 100, 0)]


def test_int64_values_in_every_representation(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a", b"x")
    for mode, kind in (("i8", int), ("double", float), ("string", str), ("int", int)):
        client.call("system.setInt64Representation", mode)
        assert type(client.call("corefiler.modifiedFilesInfo", "projects")["numFiles"]) is kind
        assert client.dirty_files("projects").num_files == 1


def test_policy_names_short_or_qualified(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    client.call("nfs.addPolicy", "vserver", "lab")
    add_junction(client, "vserver", "/a", "projects", inheritPolicy="no", policy="vserver.policy.lab")
    add_junction(client, "vserver", "/b", "projects", inheritPolicy="no", policy="lab")
    listed = {j["path"]: j["policy"] for j in client.call("vserver.listJunctions", "vserver")}
    assert listed == {"/a": "vserver.policy.lab", "/b": "vserver.policy.lab"}
    assert {j.policy for j in client.capture_core_filer("projects").junctions} == {"lab"}
    with pytest.raises(E.AvereInvalid, match="belongs to vserver 'other'"):
        client.call(
            "vserver.addJunction",
            "vserver",
            "/c",
            "projects",
            "/",
            {"inheritPolicy": "no", "policy": "other.policy.lab"},
        )
    with pytest.raises(E.AvereNotFound, match="subdirectory"):
        client.call("vserver.addJunction", "vserver", "/d", "projects", "/", {"subdir": "nope"})


def test_custom_cache_policy_follows_the_filer_to_another_cluster(
    make_cluster: Callable[..., ClusterHandle], azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    primary = client_for(make_cluster("primary"), cluster_clock)
    primary.call(
        "cachePolicy.create",
        {"name": "Lab Policy", "cacheMode": "read-write", "writebackDelay": 600, "description": "for the lab"},
    )
    create_filer(primary, azurite, encrypted=False, policy="Lab Policy")
    record = primary.capture_core_filer("projects")
    dr = client_for(make_cluster("dr", "dr"), cluster_clock)
    dr.ensure_cache_policy(record.cache_policy)
    dr.ensure_cache_policy(record.cache_policy)  # idempotent
    assert dr.call("cachePolicy.get", "Lab Policy")["writebackDelay"] == 600
    assert dr.call("cachePolicy.get", "Lab Policy")["description"] == "for the lab"


def test_health_reports_only_the_filers_own_trouble(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    locked = create_filer(client, azurite, name="locked", encrypted=False)  # for its credential
    wait_activity(
        client,
        client.call(
            "corefiler.createCloudFiler",
            "keyless",
            {
                "cloudType": "azure",
                "bucket": new_container(azurite),
                "cloudCredential": locked.credential,
                "cryptoMode": ENCRYPTED,
                "bucketContents": "empty",
            },
        ),
    )
    assert client.health("projects").healthy
    reasons = client.health("keyless").reasons
    assert "core filer 'keyless' has no active encryption key" in reasons
    assert any(r.startswith("alert: ") and "'keyless'" in r for r in reasons)
    assert client.call("cluster.maxActiveAlertSeverity") == "red"
    assert client.health("gone").reasons == ("core filer 'gone' does not exist",)
