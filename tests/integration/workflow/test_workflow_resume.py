"""A runner killed (SIGKILL) in the middle of a backup's copy, with the filer removed, resumes on the same state
dir and finishes: the backup holds exactly the source's blobs, the filer is back with its junctions, and no
history event was recorded twice.

Everything runs as the demo does: `devstack up`'s stack in a temp state dir (Azurite behind the fault proxy,
Key Vault stand-in, both clusters as processes) and `python -m devstack serve` on the real clock. The fault proxy
keeps every Copy Blob pending, so the moment of the kill is certainly inside the copy.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack.durable import protocol as p
from devstack.faultproxy.proxy import FaultProxyClient
from devstack.stack.lifecycle import start_stack, stop_stack
from devstack.stack.procs import Proc, stop
from shared.avere.client import AvereClient
from tests.fixtures.durable import http_call, poll_until, start_serve

DEADLINE_S = 90.0  # real processes on real time, on a loaded 2-core machine
FILER = "demo-filer"
T = TypeVar("T")


def until(what: str, check: Callable[[], T], timeout: float = DEADLINE_S) -> T:
    return poll_until(what, check, timeout)


FILES = {
    "/demo/projects/resume/a.bin": bytes(range(256)) * 3000,
    "/demo/projects/resume/nested/b.txt": b"b" * 1000,
    "/demo/scratch/resume-c.log": b"written just before the backup",
}


def quick_plan(state_dir: Path) -> None:
    """The generated plan, polling every second; one copy pass (after the remove), so the kill lands offline;
    a short pending limit, so copies left pending across the kill are aborted and restarted soon after."""
    path = state_dir / "plan.json"
    plan = json.loads(path.read_text())
    for cluster in (*plan["clusters"], *plan["dr_clusters"]):
        cluster["poll_seconds"] = 1
    plan["copy"].update(poll_interval_seconds=1, pending_limit_seconds=4)
    plan["short_offline_window"] = False
    path.write_text(json.dumps(plan, indent=2))


def serve(state_dir: Path) -> tuple[Proc, str]:
    return start_serve(state_dir)


def status(url: str, instance_id: str) -> dict:
    return (
        http_call("GET", f"{url}/durabletask/instances/{instance_id}?showHistory=true&showHistoryOutput=true").json()
        or {}
    )


def blobs(container: ContainerClient) -> dict[str, tuple]:
    out = {}
    for b in container.list_blobs(include=["metadata"]):
        s = b.content_settings
        out[b.name] = (
            b.size,
            bytes(s.content_md5 or b""),
            s.content_type,
            s.content_encoding,
            s.content_language,
            s.content_disposition,
            s.cache_control,
            dict(b.metadata or {}),
        )
    return out


def service(stack: dict, role: str) -> BlobServiceClient:
    account = stack["storage"]["accounts"][role]
    return BlobServiceClient(
        f"{stack['storage']['blob_endpoint']}/{account['name']}",
        credential={"account_name": account["name"], "account_key": account["key"]},
    )


def cluster(stack: dict, name: str) -> AvereClient:
    info = stack["clusters"][name]
    return AvereClient(info["url"], info["user"], info["password"], ca_file=info["ca_cert"], retries=3, backoff=0.2)


def history_keys(db: sqlite3.Connection, instance_id: str) -> list[tuple[str, Any]]:
    events = [
        json.loads(row[0])
        for row in db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
    ]
    return [
        (e["EventType"], e.get("TaskScheduledId", e.get("TimerId", e["EventId"])))
        for e in events
        if e["EventType"] not in (p.ORCHESTRATOR_STARTED, p.ORCHESTRATOR_COMPLETED)
    ]


@pytest.mark.slow
def test_runner_killed_mid_copy_resumes_and_finishes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir = tmp_path / "stack"
    monkeypatch.setenv("DEVSTACK_CLUSTER_SPEEDUP", "20")
    stack = start_stack(state_dir)
    proc: Proc | None = None
    try:
        # The runner reads its settings from the stack's local.settings.json; the environment would win.
        settings = json.loads((state_dir / "local.settings.json").read_text())["Values"]
        for name in (*settings, "VFXTDR_PLAN"):
            monkeypatch.delenv(name, raising=False)
        quick_plan(state_dir)
        primary = cluster(stack, "primary")
        for path, data in FILES.items():
            primary.call("sim.writeFile", "vserver", path, base64.b64encode(data).decode())
        captured = primary.capture_core_filer(FILER)
        proxy = FaultProxyClient(stack["faultproxy"]["url"])
        rule = proxy.add_rule("pending", operation="CopyBlob", polls=None)  # pending until aborted

        proc, url = serve(state_dir)
        reply = http_call("POST", f"{url}/api/backups/primary/{FILER}")
        assert reply.status == 202, reply.body
        instance_id = reply.json()["id"]
        until("a Copy Blob to be pending", lambda: any(r["id"] == rule["id"] and r["fired"] > 0 for r in proxy.rules()))
        os.killpg(proc.pid, signal.SIGKILL)
        until("the killed runner to be gone", lambda: not proc.alive())
        assert primary.filer_state(FILER) == "removed"  # killed inside the offline window
        proxy.remove_rule(rule["id"])  # copies started from now on complete; those left pending stay so

        proc, url = serve(state_dir)
        final = until(
            "the backup to finish",
            lambda: (s := status(url, instance_id)).get("runtimeStatus") in ("Completed", "Failed", "Terminated") and s,
        )
        assert final["runtimeStatus"] == "Completed", json.dumps(final, indent=1)[:4000]
        out = final["output"]
        assert out["status"] == "verified", out
        # The copies the killed runner left pending were found by the new one, aborted and made again.
        assert proxy.stats().get(f"{stack['storage']['accounts']['dr']['name']}:AbortCopyBlob", 0) >= 1

        source = service(stack, "source").get_container_client(FILER)
        backup = service(stack, "dr").get_container_client(out["container"])
        expected = blobs(source)
        assert expected and blobs(backup) == expected  # nothing missing, extra or altered

        assert primary.filer_state(FILER) == "online"
        assert primary.capture_core_filer(FILER).junctions == captured.junctions
        for path, data in FILES.items():
            assert base64.b64decode(primary.call("sim.readFile", "vserver", path)) == data, path
        primary.close()

        db = sqlite3.connect(state_dir / "durable.sqlite3")
        try:
            ids = [r[0] for r in db.execute("SELECT instance_id FROM instances")]
            assert instance_id in ids and any(i.startswith(f"{instance_id}~") for i in ids), ids
            for iid in ids:
                keys = history_keys(db, iid)
                assert len(keys) == len(set(keys)), f"duplicated history events in {iid}"
                kinds = [k for k, _ in keys]
                assert kinds.count(p.EXECUTION_STARTED) == 1 and kinds.count(p.EXECUTION_COMPLETED) == 1, iid
            assert db.execute("SELECT COUNT(*) FROM activity_queue").fetchone()[0] == 0
            assert db.execute("SELECT COUNT(*) FROM timers").fetchone()[0] == 0
        finally:
            db.close()
    finally:
        if proc is not None:
            stop(proc)
        stop_stack(state_dir)
