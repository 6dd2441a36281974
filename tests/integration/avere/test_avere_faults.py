"""Every fault the runbook can meet, provoked on the simulator and mapped to its typed error; retries."""

from __future__ import annotations

import pytest

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle
from devstack.cluster.waits import wait_activity
from devstack.stack.azurite import Azurite
from devstack.stack.ports import free_port
from shared.avere import errors as E
from shared.avere.client import MAINTENANCE, AvereClient
from shared.avere.records import Recovery
from tests.fixtures.cluster import (
    ENCRYPTED,
    add_junction,
    client_for,
    create_filer,
    new_container,
    read,
    write,
)


def _calls(client: object, method: str) -> int:
    return sum(1 for e in client.call("sim.callLog") if e["method"] == method)  # type: ignore[attr-defined]


def test_remove_needs_maintenance_in_the_same_session(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    with pytest.raises(E.AverePermissionDenied) as err:
        client.call("corefiler.remove", "projects")
    assert err.value.code == 101 and err.value.method == "corefiler.remove"
    assert "corefiler.remove" not in client.call("system.listMethods")
    other = client_for(primary_cluster, cluster_clock)
    other.call("system.enableAPI", "maintenance")  # another session's level does not help this one
    with pytest.raises(E.AverePermissionDenied):
        client.call("corefiler.remove", "projects")
    assert "corefiler.remove" in other.call("system.listMethods")
    assert client.list_core_filers() == ["projects"]


def test_junctions_must_go_first_and_unknown_names_are_final(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    with pytest.raises(E.JunctionsRemain) as err:
        client.remove_core_filer("projects")
    assert isinstance(err.value, E.AvereInUse) and "related junction" in err.value.text
    before = _calls(client, "corefiler.get")
    with pytest.raises(E.FilerNotFound) as missing:
        client.call("corefiler.get", "nosuch")
    assert "Cannot find MASS" in missing.value.text
    assert _calls(client, "corefiler.get") == before + 1  # final: not retried
    with pytest.raises(E.JunctionNotFound):
        client.call("vserver.removeJunction", "vserver", "/nosuch")
    assert client.remove_core_filer("nosuch") == "success"
    assert client.filer_state("nosuch") == "removed"
    with pytest.raises(E.AvereNotSupported):
        client.call("corefiler.noSuchMethod")
    with pytest.raises(E.AvereInvalid):
        client.call("corefiler.get")  # wrong number of arguments


def test_second_flush_is_refused_and_flush_is_idempotent(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a.bin", b"a" * 100_000)
    first = client.flush_core_filer("projects")
    with pytest.raises(E.FlushInProgress) as err:
        client.multicall([MAINTENANCE, ("corefiler.flush", ("projects",))])
    assert "corefiler_flush already in progress" in err.value.text and err.value.code == 100
    assert client.flush_core_filer("projects") == first  # a re-delivered activity finds the running flush
    assert client.filer_state("projects") == "flushing"
    wait_activity(client, first)
    assert client.dirty_files("projects").num_files == 0 and client.filer_state("projects") == "online"


def test_bucket_rules_on_create(primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock) -> None:
    client = client_for(primary_cluster, cluster_clock)
    filer = create_filer(client, azurite, encrypted=False)
    options = {
        "cloudType": "azure",
        "bucket": filer.bucket,
        "cloudCredential": filer.credential,
        "bucketContents": "used",
    }
    with pytest.raises(E.AvereInUse, match="already used by core filer 'projects'"):
        client.call("corefiler.createCloudFiler", "second", options)
    with pytest.raises(E.AvereExists):
        client.call("corefiler.createCloudFiler", "projects", {**options, "bucket": new_container(azurite)})
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a.txt", b"data")
    wait_activity(client, client.flush_core_filer("projects"))
    wait_activity(client, _drain(client, "projects"))
    with pytest.raises(E.AvereInvalid, match="not empty"):
        client.call("corefiler.createCloudFiler", "projects", {**options, "bucketContents": "empty"})
    with pytest.raises(E.AvereInvalid, match="cryptoMode"):
        client.call("corefiler.createCloudFiler", "projects", {**options, "cryptoMode": ENCRYPTED})
    with pytest.raises(E.AvereInvalid, match="no Avere cloud filesystem"):
        client.call("corefiler.createCloudFiler", "projects", {**options, "bucket": new_container(azurite)})
    assert client.list_core_filers() == []


def _drain(client: object, name: str) -> str:
    for activity in client.remove_junctions(name):  # type: ignore[attr-defined]
        wait_activity(client, activity)  # type: ignore[arg-type]
    return client.remove_core_filer(name)  # type: ignore[attr-defined]


def test_encrypted_used_filer_is_unreadable_until_the_right_recovery_file(
    primary_cluster: ClusterHandle, dr_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    primary = client_for(primary_cluster, cluster_clock)
    filer = create_filer(primary, azurite, passphrase="correct horse")
    add_junction(primary, "vserver", "/projects", "projects")
    write(primary, "/projects/secret.txt", b"the data")
    record = primary.capture_core_filer("projects")
    wait_activity(primary, primary.flush_core_filer("projects"))
    wait_activity(primary, _drain(primary, "projects"))

    dr = client_for(dr_cluster, cluster_clock, retries=0)
    account = azurite.accounts["source"]
    dr.ensure_credential(filer.credential, account.name, account.key)
    with pytest.raises(E.AvereConfigError, match="recovery file"):
        dr.add_cloud_core_filer(record, filer.bucket, record.server_name, filer.credential)
    assert dr.list_core_filers() == []  # bad input changed nothing
    options = {
        "cloudType": "azure",
        "bucket": filer.bucket,
        "cloudCredential": filer.credential,
        "cryptoMode": ENCRYPTED,
        "bucketContents": "used",
    }
    wait_activity(dr, dr.call("corefiler.createCloudFiler", "projects", options))
    assert dr.capture_core_filer("projects").bucket == filer.bucket
    # Open question 4 as decided: attached to existing data, the filer starts client-suspended.
    assert dr.health("projects").reasons[0] == "client access to core filer 'projects' is suspended"
    dr.restore_junctions(record)
    dr.unsuspend_clients("projects")
    with pytest.raises(E.AvereNotAllowed, match="recovery file is uploaded"):
        read(dr, "/projects/secret.txt")
    assert filer.key is not None
    with pytest.raises(E.AvereInvalid, match="invalid passphrase"):
        dr.upload_recovery_file("projects", Recovery("wrong horse", filer.key.recovery_file))
    assert dr.master_key_status("projects").active_key_id == ""
    assert dr.upload_recovery_file("projects", Recovery("correct horse", filer.key.recovery_file))
    assert read(dr, "/projects/secret.txt") == b"the data"
    assert not dr.upload_recovery_file("projects", Recovery("correct horse", filer.key.recovery_file))


def test_upload_is_refused_after_generate(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    filer = create_filer(client, azurite, passphrase="p1")
    assert filer.key is not None
    with pytest.raises(E.AvereNotAllowed, match="before generateMasterKey"):
        client.call("corefiler.uploadKeyRecoveryFile", "projects", "p1", filer.key.recovery_file)
    with pytest.raises(E.AvereConfigError):
        client.generate_master_key("projects", "x" * 50)
    pending = client.generate_master_key("projects", "p2")
    with pytest.raises(E.AvereInvalid, match="most recently generated"):
        client.call("corefiler.activateMasterKey", "projects", filer.key.key_id, filer.key.recovery_file)
    client.activate_master_key("projects", pending.key_id, pending.recovery_file)
    client.activate_master_key("projects", pending.key_id, pending.recovery_file)  # idempotent
    assert client.master_key_status("projects").active_key_id == pending.key_id


def test_invalidate_discards_dirty_data(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    client = client_for(primary_cluster, cluster_clock)
    create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/kept.txt", b"v1")
    wait_activity(client, client.flush_core_filer("projects"))
    write(client, "/projects/kept.txt", b"v2 never written back")
    write(client, "/projects/lost.txt", b"lost")
    assert client.dirty_files("projects").num_files == 2
    client.multicall([MAINTENANCE, ("corefiler.invalidate", ("projects",))])
    assert client.dirty_files("projects").num_files == 0
    assert read(client, "/projects/kept.txt") == b"v1"
    assert [f["path"] for f in client.call("sim.listFiles", "vserver", "/projects")] == ["/projects/kept.txt"]


@pytest.mark.parametrize("code", [100, 101, 102, 103, 104, 105, 106, 107, 108, 109])
def test_every_fault_code_maps_to_its_class(
    primary_cluster: ClusterHandle, cluster_clock: VirtualClock, code: int
) -> None:
    client = client_for(primary_cluster, cluster_clock, retries=0)
    client.call("sim.injectFault", "corefiler.list", code, f"injected {code}", 2)
    with pytest.raises(E.AvereFault) as err:
        client.list_core_filers()
    expected = {
        100: E.AvereGenericError,
        101: E.AverePermissionDenied,
        102: E.AvereNotFound,
        103: E.AvereInvalid,
        104: E.AvereAlready,
        105: E.AvereNotAllowed,
        106: E.AvereExists,
        107: E.AvereInUse,
        108: E.AvereNotSupported,
        109: E.AvereBusy,
    }[code]
    assert type(err.value) is expected and err.value.code == code
    assert err.value.text == f"injected {code}" and "corefiler.list" in str(err.value)


@pytest.mark.parametrize("code", [100, 102, 109])
def test_transient_faults_are_retried_with_backoff(primary_cluster: ClusterHandle, code: int) -> None:
    sleeps: list[float] = []
    client = client_for(primary_cluster, sleep=sleeps.append, retries=5, backoff=0.5)
    client.call("sim.injectFault", "corefiler.list", code, "transient", 3)
    assert client.list_core_filers() == []
    assert sleeps == [0.5, 1.0, 2.0]
    client.call("sim.injectFault", "corefiler.list", code, "persistent", 100)
    sleeps.clear()
    with pytest.raises(E.AvereFault):
        client.list_core_filers()
    assert len(sleeps) == 5 and _calls(client, "corefiler.list") == 1 + 3 + 6


def test_final_faults_are_not_retried(primary_cluster: ClusterHandle) -> None:
    sleeps: list[float] = []
    client = client_for(primary_cluster, sleep=sleeps.append)
    client.call("sim.injectFault", "corefiler.list", 103, "bad", 1)
    with pytest.raises(E.AvereInvalid):
        client.list_core_filers()
    assert sleeps == []


def test_connection_errors_are_retried_and_bounded(primary_cluster: ClusterHandle) -> None:
    sleeps: list[float] = []
    client = client_for(primary_cluster, sleep=sleeps.append, retries=4)
    assert client.list_core_filers() == []
    client.call("sim.dropConnections", 3)  # the stdlib transport retries a cut connection once itself
    assert client.list_core_filers() == []
    assert sleeps == [1.0]
    with primary_cluster.cluster.lock:
        primary_cluster.cluster.drops = 1000
    sleeps.clear()
    with pytest.raises(E.AvereConnectionError, match="after 5 attempt"):
        client.list_core_filers()
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    with primary_cluster.cluster.lock:
        primary_cluster.cluster.drops = 0

    refused: list[float] = []
    nobody = AvereClient(
        f"https://127.0.0.1:{free_port()}/cgi-bin/rpc2.py",
        "admin",
        "pw",
        ca_file=str(primary_cluster.ca_cert),
        sleep=refused.append,
        retries=2,
    )
    with pytest.raises(E.AvereConnectionError, match="ConnectionRefusedError"):
        nobody.list_core_filers()
    assert refused == [1.0, 2.0]


def test_lost_session_logs_in_again(primary_cluster: ClusterHandle) -> None:
    client = client_for(primary_cluster)
    assert client.list_core_filers() == []
    with primary_cluster.cluster.lock:
        primary_cluster.cluster.sessions.clear()  # what a cluster restart does to sessions
    assert client.list_core_filers() == []
    assert _calls(client, "system.login") == 2
