"""The drill probe stand-in speaks the contract of docs/drills.md over HTTPS: the key header, the request schema,
per-file answers read whole through the cluster whose vserver serves the mount address, never a write."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle
from devstack.probe import ClusterAccess, start_probe
from devstack.probe.server import KEY_HEADER
from devstack.stack.azurite import Azurite
from devstack.stack.tls import issue_server_cert
from tests.fixtures.cluster import add_junction, client_for, create_filer, write

KEY = "the-probe-key-for-this-test"
FILES = {f"/lab/f{i:02d}.txt": b"x" * (100 + i) for i in range(12)}


@pytest.fixture
def probe_on_cluster(
    tmp_path: Path, state_root: Path, dr_cluster: ClusterHandle, azurite: Azurite, cluster_clock: VirtualClock
) -> Any:
    client = client_for(dr_cluster, cluster_clock)
    create_filer(client, azurite, name="lab", role="dr", encrypted=False)
    add_junction(client, "vserver", "/lab", "lab")
    for path, data in FILES.items():
        write(client, path, data)
    cert = issue_server_cert(tmp_path / "tls", "probe", ca_dir=state_root / "tls")
    access = ClusterAccess(
        dr_cluster.name, dr_cluster.url, dr_cluster.user, dr_cluster.password, str(dr_cluster.ca_cert)
    )
    server, thread = start_probe(KEY, [access], cert.server_context())
    mounts = client.client_mount_addresses("lab")
    yield server, [m.to_json() for m in mounts], client, str(cert.ca_cert)
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    client.close()


def post(url: str, ca: str, body: Any, key: str | None = KEY) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **({KEY_HEADER: key} if key is not None else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30, context=ssl.create_default_context(cafile=ca)) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def body(mounts: list[dict[str, Any]], sample: int = 5, **changes: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "drill_id": "20270115T080000Z-1a2b3c4d",
        "filer": "primary/lab",
        "cluster": "dr",
        "mounts": mounts,
        "sample_size": sample,
        "read_only": True,
        "time_limit_seconds": 60,
        **changes,
    }


def test_it_reads_a_deterministic_sample_whole_and_never_writes(probe_on_cluster: Any) -> None:
    server, mounts, client, ca = probe_on_cluster
    calls_before = len(client.call("sim.callLog"))
    status, answer = post(server.url, ca, body(mounts, sample=5))
    assert status == 200, answer
    assert answer["version"] == 1 and answer["listed"] == len(FILES) and answer["complete"] is True
    files = answer["files"]
    assert len(files) == 5 and all(f["status"] == "ok" for f in files)
    assert all(f["bytes"] == len(FILES[f["path"]]) for f in files)
    assert post(server.url, ca, body(mounts, sample=5))[1]["files"] == files  # the same drill, the same sample
    assert len(post(server.url, ca, body(mounts, sample=50))[1]["files"]) == len(FILES)
    methods = {e["method"] for e in client.call("sim.callLog")[calls_before:]}
    assert "sim.writeFile" not in methods and "sim.deleteFile" not in methods
    assert {"sim.listFiles", "sim.readFile"} <= methods


def test_it_refuses_without_the_key_and_names_a_bad_request(probe_on_cluster: Any) -> None:
    server, mounts, _, ca = probe_on_cluster
    assert post(server.url, ca, body(mounts), key=None)[0] == 401
    assert post(server.url, ca, body(mounts), key=KEY + "x")[0] == 401
    for bad, word in (
        (body(mounts, sample=0), "sample_size"),
        (body([]), "mounts"),
        (body(mounts, read_only=False), "read_only"),
        (body(mounts, version=2), "version"),
        (body([{"vserver": "vserver", "addresses": [], "paths": ["/lab"]}]), "addresses"),
    ):
        status, answer = post(server.url, ca, bad)
        assert status == 400 and word in answer["error"], (word, answer)
    assert post(server.url.replace("/read", "/other"), ca, body(mounts))[0] == 404
    assert server.requests == []  # nothing refused reached the cluster


def test_an_address_no_cluster_serves_or_a_missing_path_is_an_error_entry(probe_on_cluster: Any) -> None:
    server, mounts, _, ca = probe_on_cluster
    elsewhere = [{"vserver": "vserver", "addresses": ["192.0.2.1"], "paths": ["/lab"]}]
    status, answer = post(server.url, ca, body(elsewhere))
    assert status == 200 and answer["files"][0]["status"] == "error" and "192.0.2.1" in answer["files"][0]["error"]
    missing = [{**mounts[0], "paths": ["/nowhere"]}]
    status, answer = post(server.url, ca, body(missing))
    assert status == 200 and answer["files"][0]["status"] == "error"
