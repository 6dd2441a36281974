"""Simulator faults on the wire: writes applied with the answer lost, requests lost before running, refusals."""

from __future__ import annotations

import base64
import http.client
import ssl
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle
from devstack.stack.azurite import Azurite
from shared.avere.client import AvereClient
from tests.fixtures.cluster import add_junction, client_for, create_filer, new_container

RULE_ARGS = (
    "vserver",
    "lab",
    "network",
    "10.1.0.0/16",
    "rw",
    "root_squash",
    "-2",
    False,
    "",
    {"authSys": True, "authKrb": False},
)


class Raw:
    """One XML-RPC session over http.client with no retries anywhere: every failure reaches the test."""

    def __init__(self, handle: ClusterHandle) -> None:
        url = urlsplit(handle.url)
        self.host, self.port, self.path = url.hostname or "", url.port or 443, url.path
        self.context = ssl.create_default_context(cafile=str(handle.ca_cert))
        self.conn: http.client.HTTPSConnection | None = None
        self.cookie = ""
        self.user, self.password = handle.user, handle.password

    def connect(self) -> http.client.HTTPSConnection:
        """A new connection, TLS handshake done: an error here means no request byte was sent."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, method: str, *params: Any) -> tuple[int, bytes]:
        """(HTTP status, body) of one request, on the kept connection or a new one."""
        if self.conn is None:
            self.conn = self.connect()
        body = xmlrpc.client.dumps(params, method).encode()
        headers = {"Content-Type": "text/xml"} | ({"Cookie": self.cookie} if self.cookie else {})
        try:
            self.conn.request("POST", self.path, body, headers)
            response = self.conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        if response.will_close:
            self.close()
        return response.status, data

    def call(self, method: str, *params: Any) -> Any:
        status, data = self.post(method, *params)
        assert status == 200, data
        return xmlrpc.client.loads(data, use_builtin_types=True)[0][0]

    def login(self) -> Raw:
        user, password = (base64.b64encode(v.encode()).decode() for v in (self.user, self.password))
        assert self.call("system.login", user, password) == "success"
        return self


@dataclass(frozen=True)
class Write:
    """A non-idempotent write, what it leaves behind, and what the cluster answers when it is sent again."""

    method: str
    params: Callable[[], tuple[Any, ...]]
    state: Callable[[AvereClient], Any]  # what the write changes, read back through the API
    again: str  # 'exists' (fault 106) or 'duplicate' (accepted again)


def _writes(filer: str, bucket: str, credential: str) -> dict[str, Write]:
    return {
        "addJunction": Write(
            "vserver.addJunction",
            lambda: ("vserver", "/lab", filer, "/", {}),
            lambda c: sorted(j["path"] for j in c.call("vserver.listJunctions", "vserver")),
            "exists",
        ),
        "createCloudFiler": Write(
            "corefiler.createCloudFiler",
            lambda: (
                "second",
                {"cloudType": "azure", "bucket": bucket, "cloudCredential": credential, "bucketContents": "empty"},
            ),
            lambda c: sorted(a["process"] for a in c.call("cluster.listActivities") if a["state"] == "inprogress"),
            "exists",
        ),
        "addRule": Write(
            "nfs.addRule",
            lambda: RULE_ARGS,
            lambda c: sorted(r["id"] for r in c.call("nfs.listRules", "vserver", "lab", "")),
            "duplicate",
        ),
        "generateMasterKey": Write(
            "corefiler.generateMasterKey",
            lambda: (filer, "another passphrase"),
            lambda c: c.call("corefiler.masterKeyStatus", filer)["masterKeyIdReadyToActivate"],
            "duplicate",
        ),
    }


def _setup(client: AvereClient, azurite: Azurite) -> dict[str, Write]:
    filer = create_filer(client, azurite)
    client.call("nfs.addPolicy", "vserver", "lab")
    return _writes(filer.name, new_container(azurite), filer.credential)


def _log(client: AvereClient, method: str, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in client.call("sim.callLog", since) if e["method"] == method]


LOST_AFTER: dict[str, dict[str, Any]] = {
    "drop": {"action": "drop", "when": "after"},
    "http": {"action": "http", "status": 503, "when": "after"},
    "fault": {"action": "fault", "code": 100, "text": "injected: lost after applying", "when": "after"},
}


@pytest.mark.parametrize("how", sorted(LOST_AFTER))
@pytest.mark.parametrize("name", ["addJunction", "createCloudFiler", "addRule", "generateMasterKey"])
def test_write_applied_then_answer_lost(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock, name: str, how: str
) -> None:
    control = client_for(primary_cluster, cluster_clock, retries=0)
    write = _setup(control, azurite)[name]
    before = write.state(control)
    assert control.call("sim.injectFault", {"method": write.method, **LOST_AFTER[how]}).startswith("fault-")
    raw = Raw(primary_cluster).login()
    if how == "http":
        status, body = raw.post(write.method, *write.params())
        assert status == 503 and b"<methodResponse>" not in body
    elif how == "drop":
        with pytest.raises(http.client.RemoteDisconnected):
            raw.post(write.method, *write.params())
    else:
        with pytest.raises(xmlrpc.client.Fault, match="lost after applying"):
            raw.call(write.method, *write.params())
    applied = write.state(control)
    assert applied != before  # the cluster did the work although the client saw a failure
    assert _log(control, write.method)[-1]["injected"] == [f"{how}-after"]
    assert control.call("sim.listFaults")["rules"] == []  # fired once, gone

    if write.again == "exists":  # a blind retry: the real cluster refuses a second one with that name
        with pytest.raises(xmlrpc.client.Fault) as err:
            raw.call(write.method, *write.params())
        assert err.value.faultCode == 106 and "already exists" in err.value.faultString
        assert write.state(control) == applied
    else:  # accepted again: a second rule with its own id, or a second key that replaces the first
        raw.call(write.method, *write.params())
        assert write.state(control) not in (before, applied)


@pytest.mark.parametrize("name", ["addJunction", "createCloudFiler", "addRule", "generateMasterKey"])
def test_write_lost_before_running_changes_nothing(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock, name: str
) -> None:
    control = client_for(primary_cluster, cluster_clock, retries=0)
    write = _setup(control, azurite)[name]
    before = write.state(control)
    since = len(control.call("sim.callLog"))
    control.call("sim.injectFault", {"method": write.method, "action": "drop"})
    control.call("sim.injectFault", {"method": write.method, "action": "http", "status": 502})
    control.call("sim.injectFault", {"method": write.method, "action": "fault", "code": 109, "text": "busy"})
    raw = Raw(primary_cluster).login()
    with pytest.raises(http.client.RemoteDisconnected):
        raw.post(write.method, *write.params())
    assert raw.post(write.method, *write.params())[0] == 502
    with pytest.raises(xmlrpc.client.Fault, match="busy"):
        raw.call(write.method, *write.params())
    assert write.state(control) == before
    assert [e.get("injected") for e in _log(control, write.method, since)] == [
        ["drop-before"],
        ["http-before"],
        ["fault-before"],
    ]
    raw.call(write.method, *write.params())  # the retry is the first write that runs
    assert write.state(control) != before


def test_rules_match_leading_arguments_and_wait_for_a_call_that_succeeds(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    control = client_for(primary_cluster, cluster_clock, retries=0)
    create_filer(control, azurite, encrypted=False)
    control.call(
        "sim.injectFault",
        {"method": "vserver.addJunction", "action": "drop", "when": "after", "args": ["vserver", "/b"], "count": 2},
    )
    add_junction(control, "vserver", "/a", "projects")  # other arguments: not matched
    raw = Raw(primary_cluster).login()
    with pytest.raises(xmlrpc.client.Fault, match="subdirectory"):  # failed on its own: the rule waits
        raw.call("vserver.addJunction", "vserver", "/b", "projects", "/", {"subdir": "nope"})
    assert control.call("sim.listFaults")["rules"][0]["count"] == 2
    with pytest.raises(http.client.RemoteDisconnected):
        raw.post("vserver.addJunction", "vserver", "/b", "projects", "/", {})
    assert control.call("sim.listFaults")["rules"][0]["count"] == 1
    assert [j["path"] for j in control.call("vserver.listJunctions", "vserver")] == ["/a", "/b"]


def test_multicall_sub_calls_lost_before_or_after(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    control = client_for(primary_cluster, cluster_clock, retries=0)
    create_filer(control, azurite, encrypted=False)
    create_filer(control, azurite, name="other", encrypted=False)
    raw = Raw(primary_cluster).login()
    calls = [
        {"methodName": "system.enableAPI", "params": ["maintenance"]},
        {"methodName": "corefiler.remove", "params": ["projects"]},
    ]

    control.call("sim.injectFault", {"method": "corefiler.remove", "action": "drop"})
    with pytest.raises(http.client.RemoteDisconnected):
        raw.post("system.multicall", calls)
    assert raw.call("system.enabledAPIs") == []  # lost on the way: not even the first sub-call ran
    assert control.filer_state("projects") == "online"

    control.call(
        "sim.injectFault",
        {"method": "corefiler.remove", "action": "fault", "when": "after", "code": 100, "text": "injected after"},
    )
    results = raw.call("system.multicall", calls)
    assert results[0] == ["success"] and results[1]["faultString"] == "injected after"
    assert control.filer_state("projects") == "removing"  # applied, though its slot reads as a fault

    control.call("sim.injectFault", {"method": "mass.remove", "action": "drop", "when": "after"})
    with pytest.raises(http.client.RemoteDisconnected):
        raw.post("system.multicall", [calls[0], {"methodName": "corefiler.remove", "params": ["other"]}])
    assert control.filer_state("other") == "removing"  # the whole answer was lost after the work


def test_refused_connections_carry_no_request(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    control = Raw(primary_cluster).login()
    idle = Raw(primary_cluster).login()  # a client holding a keep-alive connection
    assert idle.conn is not None
    logged = len(control.call("sim.callLog"))
    assert control.call("sim.refuseConnections", 2) == "success"
    assert control.conn is None  # that answer closed its own connection ('Connection: close')

    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        idle.post("nfs.addPolicy", "vserver", "lab")  # its idle connection was shut: never read
    for _ in range(2):  # a new connection fails in the handshake: nothing was sent on it
        with pytest.raises((ConnectionResetError, BrokenPipeError)):  # the reset, seen on a read or a write
            idle.connect()
    assert idle.call("nfs.listPolicies", "vserver") == ["default"]  # the third connects again
    log = control.call("sim.callLog")
    assert [e["method"] for e in log[logged:]] == ["sim.refuseConnections", "nfs.listPolicies", "sim.callLog"]
    assert control.call("sim.listFaults")["refuseConnections"] == 0


def test_dropped_requests_are_read_but_never_run(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    control = client_for(primary_cluster, cluster_clock, retries=0)
    raw = Raw(primary_cluster).login()
    control.call("sim.dropConnections", 1)
    with pytest.raises(http.client.RemoteDisconnected):
        raw.post("nfs.addPolicy", "vserver", "lab")
    assert control.call("nfs.listPolicies", "vserver") == ["default"]
    assert not _log(control, "nfs.addPolicy")


def test_legacy_form_and_a_lost_key_answer(
    primary_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> None:
    control = client_for(primary_cluster, cluster_clock, retries=0)
    filer = create_filer(control, azurite, encrypted=True)
    assert filer.key is not None
    # The positional form is unchanged: the next `count` calls fail before running; count 0 clears it.
    control.call("sim.injectFault", "corefiler.activateMasterKey", 105, "not ready", 5)
    control.call("sim.injectFault", "corefiler.activateMasterKey", 105, "cleared", 0)
    assert control.call("sim.listFaults")["rules"] == []
    control.call(
        "sim.injectFault", {"method": "corefiler.generateMasterKey", "action": "http", "status": 500, "when": "after"}
    )
    raw = Raw(primary_cluster).login()
    status, body = raw.post("corefiler.generateMasterKey", "projects", "p2")
    assert status == 500 and b"Internal Server Error" in body
    pending = control.call("corefiler.masterKeyStatus", "projects")["masterKeyIdReadyToActivate"]
    assert pending and pending != filer.key.key_id  # a key the client never saw is ready to activate
    with pytest.raises(xmlrpc.client.Fault, match="recovery file does not belong"):
        raw.call("corefiler.activateMasterKey", "projects", pending, filer.key.recovery_file)
    # The answer can be fetched again, as on the real cluster: the last generated key and its file.
    lost = raw.call("corefiler.downloadKeyRecoveryFile", "projects")
    assert lost["keyId"] == pending
    assert raw.call("corefiler.activateMasterKey", "projects", pending, lost["recoveryFile"]) == "success"
