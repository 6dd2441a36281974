"""Simulator faults on the answers and the data: garbled fields, a flush that leaves dirty files, a lossy remove."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle
from devstack.cluster.waits import wait_activity
from devstack.stack.azurite import Azurite
from shared.avere import errors as E
from shared.avere.client import MAINTENANCE, AvereClient
from tests.fixtures.cluster import add_junction, client_for, create_filer, read, write


def _rule(client: AvereClient, method: str, path: Any, op: str = "drop", **more: Any) -> str:
    return str(client.call("sim.injectFault", {"method": method, "action": "rewrite", "path": path, "op": op, **more}))


def _remove_junctions(client: AvereClient, name: str) -> None:
    for activity in client.remove_junctions(name):
        wait_activity(client, activity)


def _removals(client: AvereClient) -> list[tuple[str, int, bool]]:
    """(filer, dirty files when the remove arrived, whether it started) for every corefiler.remove."""
    return [
        (e["filer"], e["numFiles"], "activity" in e)
        for e in client.call("sim.callLog")
        if e["method"] == "corefiler.remove"
    ]


@pytest.fixture
def client(primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock) -> AvereClient:
    """A client of the primary with filer 'projects' (unencrypted, junction /projects) and one dirty file."""
    client = client_for(primary_cluster, cluster_clock, retries=0)
    create_filer(client, azurite, encrypted=False)
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a.txt", b"dirty")
    return client


def test_modified_files_info_missing_or_garbled(client: AvereClient) -> None:
    method = "corefiler.modifiedFilesInfo"
    normal = client.call(method, "projects")
    assert normal["numFiles"] == 1
    _rule(client, method, "numFiles")
    assert client.call(method, "projects") == {"oldestAge": normal["oldestAge"]}
    for value in ("many", 0.5, "1", [1], {"n": 1}):
        _rule(client, method, "numFiles", "set", value=value)
        assert client.call(method, "projects")["numFiles"] == value
    _rule(client, method, "", "set", value={})
    assert client.call(method, "projects") == {}
    _rule(client, method, "$", "set", value="")  # '$' names the whole answer too
    assert client.call(method, "projects") == ""
    assert client.call(method, "projects") == normal  # each rule fired once; the state never changed


def test_activity_state_and_percent_missing_or_unexpected(client: AvereClient, cluster_clock: VirtualClock) -> None:
    activity = client.flush_core_filer("projects")
    normal = client.call("cluster.getActivity", activity)
    assert normal["state"] == "inprogress" and normal["percent"] == "0"
    _rule(client, "cluster.getActivity", "state")
    _rule(client, "cluster.getActivity", "percent")
    answer = client.call("cluster.getActivity", activity)  # both rules fire on the same answer
    assert "state" not in answer and "percent" not in answer and answer["id"] == activity
    _rule(client, "cluster.getActivity", "state", "set", value="paused", args=[activity])
    _rule(client, "cluster.listActivities", "*.state", "set", value="complete", count=2)
    assert client.call("cluster.getActivity", activity)["state"] == "paused"
    assert {a["state"] for a in client.call("cluster.listActivities")} == {"complete"}
    cluster_clock.advance(10)
    done = client.call("cluster.getActivity", activity)
    assert done["state"] == "success" and "percent" not in done  # percent comes only while in progress
    _rule(client, "cluster.getActivity", "percent", "set", value="100")
    assert client.call("cluster.getActivity", activity)["percent"] == "100"  # set adds a missing field
    assert client.call("sim.listFaults")["rules"][0]["count"] == 1  # listActivities: one firing left


def test_corefiler_get_and_master_key_status_fields_missing(client: AvereClient, azurite: Azurite) -> None:
    create_filer(client, azurite, name="crypt", encrypted=True)
    _rule(client, "corefiler.get", ["projects", "adminState"], args=["projects"])
    _rule(client, "mass.get", "*.bucket", count=2)
    answer = client.call("corefiler.get", ["crypt", "projects"])  # no args match: only '*.bucket' fires
    assert all("bucket" not in info for info in answer.values())
    assert "adminState" in answer["projects"]
    answer = client.call("corefiler.get", "projects")
    assert "adminState" not in answer["projects"] and "bucket" not in answer["projects"]
    assert client.call("corefiler.get", "projects")["projects"]["bucket"]

    status = client.call("corefiler.masterKeyStatus", "crypt")
    assert status["activeMasterKeyId"] not in ("", "NO ACTIVE MASTER KEY")
    _rule(client, "corefiler.masterKeyStatus", "", "set", value={})
    _rule(client, "corefiler.masterKeyStatus", "activeMasterKeyId")
    answers = [client.call("corefiler.masterKeyStatus", "crypt") for _ in range(3)]
    # Rules apply in order to one answer; the field rule finds nothing in {} and waits for the next answer.
    assert answers == [{}, {k: v for k, v in status.items() if k != "activeMasterKeyId"}, status]


def test_rewrite_waits_for_an_answer_it_changes(client: AvereClient) -> None:
    rule = _rule(client, "cluster.listActivities", "9.state")  # no 10th activity yet: nothing to change
    assert all("state" in a for a in client.call("cluster.listActivities"))
    _rule(client, "corefiler.modifiedFilesInfo", "numFiles")
    with pytest.raises(E.FilerNotFound):  # a failing call fires no rewrite
        client.call("corefiler.modifiedFilesInfo", "nosuch")
    assert [r["count"] for r in client.call("sim.listFaults")["rules"]] == [1, 1]
    assert client.call("sim.listFaults")["rules"][0]["id"] == rule
    assert client.call("sim.clearFaults", "cluster.listActivities") == 1
    assert client.call("sim.clearFaults") == 1


def test_rule_validation(client: AvereClient) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"method": "corefiler.nosuch", "action": "drop"}, "method must name"),
        ({"method": "sim.readFile", "action": "drop"}, "method must name"),
        ({"method": "system.login", "action": "drop"}, "method must name"),
        ({"method": "corefiler.list", "action": "explode"}, "action must be"),
        ({"method": "corefiler.list", "action": "drop", "when": "later"}, "when must be"),
        ({"method": "corefiler.list", "action": "drop", "count": 0}, "count must be"),
        ({"method": "corefiler.list", "action": "http", "status": 404}, "5xx"),
        ({"method": "corefiler.list", "action": "fault", "code": 100}, "non-empty text"),
        ({"method": "corefiler.list", "action": "rewrite", "path": "", "op": "drop"}, "whole answer"),
        ({"method": "corefiler.list", "action": "rewrite", "path": "x", "op": "set"}, "needs a value"),
        (
            {"method": "corefiler.list", "action": "rewrite", "path": "x", "op": "drop", "when": "after"},
            "takes no 'when'",
        ),
        ({"method": "corefiler.remove", "action": "leaveDirty"}, "corefiler.flush only"),
        ({"method": "corefiler.flush", "action": "loseDirty"}, "corefiler.remove only"),
        ({"method": "corefiler.list", "action": "drop", "typo": 1}, "unknown fault option"),
    ]
    for spec, problem in bad:
        with pytest.raises(E.AvereInvalid, match=problem) as err:
            client.call("sim.injectFault", spec)
        assert err.value.code == 103
    assert client.call("sim.listFaults") == {"rules": [], "dropConnections": 0, "refuseConnections": 0}


def test_flush_completes_but_leaves_files_dirty(client: AvereClient, cluster_clock: VirtualClock) -> None:
    quiet = client.flush_core_filer("projects")  # nothing in the way: the rule below is not used up
    wait_activity(client, quiet)
    rule = client.call("sim.injectFault", {"method": "corefiler.flush", "action": "leaveDirty", "files": 2})
    flushed = client.flush_core_filer("projects")  # no dirty file: the rule waits
    wait_activity(client, flushed)
    assert [r["id"] for r in client.call("sim.listFaults")["rules"]] == [rule]
    for name in ("a", "b", "c"):
        write(client, f"/projects/{name}.txt", name.encode())
        cluster_clock.advance(1)
    activity = client.flush_core_filer("projects")
    wait_activity(client, activity)
    done = client.call("cluster.getActivity", activity)
    assert (done["state"], done["status"]) == ("success", "complete")
    info = client.call("corefiler.modifiedFilesInfo", "projects")
    assert info["numFiles"] == 2 and info["oldestAge"] < 10  # rewritten as the flush started
    assert client.call("sim.dirtyFiles", "projects") == ["/b.txt", "/c.txt"]  # the newest two
    assert client.call("sim.listFaults")["rules"] == []
    log = [e for e in client.call("sim.callLog") if e["method"] == "corefiler.flush"]
    assert [(e["numFiles"], e.get("injected")) for e in log] == [(1, None), (0, None), (3, ["leaveDirty"])]
    wait_activity(client, client.flush_core_filer("projects"))  # the next flush covers them
    assert client.dirty_files("projects").num_files == 0
    assert read(client, "/projects/c.txt") == b"c"


def test_call_log_records_dirty_files_at_remove(client: AvereClient) -> None:
    with pytest.raises(E.JunctionsRemain):
        client.remove_core_filer("projects")
    _remove_junctions(client, "projects")
    activity = client.remove_core_filer("projects")  # removed without a flush: 1 dirty file
    wait_activity(client, activity)
    assert _removals(client) == [("projects", 1, False), ("projects", 1, True)]
    log = [e for e in client.call("sim.callLog") if e["method"] == "corefiler.remove"]
    assert [e.get("activity") for e in log] == [None, activity]
    assert client.list_core_filers() == []


def test_remove_writes_back_unless_told_to_lose_dirty_data(client: AvereClient, azurite: Azurite) -> None:
    bucket = client.capture_core_filer("projects").bucket
    wait_activity(client, client.flush_core_filer("projects"))
    write(client, "/projects/a.txt", b"second version")
    write(client, "/projects/new.txt", b"never written back")
    _remove_junctions(client, "projects")
    client.call("sim.injectFault", {"method": "corefiler.remove", "action": "loseDirty"})
    wait_activity(client, client.remove_core_filer("projects"))
    assert _removals(client) == [("projects", 2, True)]
    assert [e.get("injected") for e in client.call("sim.callLog") if e["method"] == "corefiler.remove"] == [
        ["loseDirty"]
    ]

    _reattach(client, bucket)
    assert read(client, "/projects/a.txt") == b"dirty"  # the flushed version: the rewrite was lost
    assert [f["path"] for f in client.call("sim.listFiles", "vserver", "/projects")] == ["/projects/a.txt"]

    # Without the fault, remove writes the dirty data back first (the default, as the reference says).
    write(client, "/projects/a.txt", b"third version")
    _remove_junctions(client, "projects")
    wait_activity(client, client.remove_core_filer("projects"))
    _reattach(client, bucket)
    assert read(client, "/projects/a.txt") == b"third version"


def _reattach(client: AvereClient, bucket: str) -> None:
    wait_activity(
        client,
        client.call(
            "corefiler.createCloudFiler",
            "projects",
            {
                "cloudType": "azure",
                "bucket": bucket,
                "cloudCredential": client.call("corefiler.listCredentials")[0]["name"],
                "bucketContents": "used",
            },
        ),
    )
    add_junction(client, "vserver", "/projects", "projects")
    client.unsuspend_clients("projects")


def test_lose_dirty_waits_for_a_remove_with_dirty_data(client: AvereClient) -> None:
    wait_activity(client, client.flush_core_filer("projects"))
    _remove_junctions(client, "projects")
    client.call("sim.injectFault", {"method": "corefiler.remove", "action": "loseDirty"})
    client.multicall([MAINTENANCE, ("corefiler.remove", ("projects",))])
    assert client.call("sim.listFaults")["rules"][0]["action"] == "loseDirty"  # nothing dirty: not used
