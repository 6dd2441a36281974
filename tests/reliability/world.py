"""One matrix cell's world: the app environment behind the fault proxy, a Durable runner that can be killed and
started again on its state dir, and the workflows started through the app's own HTTP routes.

Only what an operator could see is read: the routes' answers, the run's status, the clusters (through their
management API), the storage accounts, the vault and the catalog.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.storage.blob import ContainerClient

from devstack.faultproxy.proxy import FaultProxy
from shared.runbook.key_secret import KeySecret, key_secret_name
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv

FILES = {
    "/data/big.bin": bytes(range(256)) * 6000,  # 1.5 MB: two chunk objects
    "/data/a/b/c.txt": b"deep",
    "/scratch/notes.md": b"# notes",
}
DIRTY = {"/scratch/dirty.log": b"written just before the run: reaches the container only at its flush"}
WRITE_OPS = (
    "PutBlob",
    "PutBlock",
    "PutBlockList",
    "PutBlockFromURL",
    "CopyBlob",
    "CopyBlobFromURL",
    "DeleteBlob",
    "SetBlobMetadata",
    "SetBlobProperties",
    "AbortCopyBlob",
    "CreateContainer",
    "DeleteContainer",
)
STALE = "i/stale-0000"
ABANDON_WAIT_S = 60.0
RUN_TIMEOUT_S = 300.0


def snapshot(container: ContainerClient) -> dict[str, tuple]:
    """Every blob with its etag: a rewrite of any of them shows."""
    return {b.name: (b.etag, b.size) for b in container.list_blobs()}


def blobs(container: ContainerClient) -> dict[str, tuple]:
    """Everything a byte-for-byte copy must keep, by blob name."""
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


def step_of(status: dict | None) -> str | None:
    custom = (status or {}).get("customStatus")
    return custom.get("step") if isinstance(custom, dict) else None


@dataclass
class World:
    env: AppEnv
    proxy: FaultProxy
    make_runner: Callable[..., Any]
    state_dir: Path
    runner: Any = None
    restarts: list[str] = field(default_factory=list)  # where each kill landed (the run's step then)
    instance: str | None = None
    refused: str = ""
    stopped: set[str] = field(default_factory=set)  # clusters lost with their region

    # --- names the injectors resolve ---------------------------------------------------------------------
    @property
    def key_secret(self) -> str:
        return key_secret_name("primary", self.env.filer_name)

    def cluster_name(self, cluster: str) -> str:
        return cluster

    def account(self, role: str) -> str:
        return {"source": self.env.filer.source.account, "backup": self.env.filer.backup.account}[role]

    def container_name(self, which: str) -> str:
        if which == "catalog":
            return self.env.context().catalog_container
        if which == "source":
            return self.env.filer.source.container
        return self.env.filer.backup.containers["ab".index(which)]  # a generation: "a" or "b"

    # --- the runner --------------------------------------------------------------------------------------
    def start_runner(self) -> None:
        import function_app

        self.runner = self.make_runner(function_app.app, clock=self.env.clock, state_dir=self.state_dir)

    def restart_runner(self) -> None:
        """Stop the runner mid-run, let the activities it abandoned finish acting (their completions are lost,
        as when the host dies right after an activity's side effects), then start a new one on the state dir."""
        self.restarts.append(step_of(self.runner.status(self.instance)) or "?")
        self.runner.stop()
        for thread in threading.enumerate():
            if thread.name.startswith("durable-activity") and thread.is_alive():
                thread.join(ABANDON_WAIT_S)
        self.start_runner()

    def status(self) -> dict | None:
        return self.runner.status(self.instance, show_history=False)

    def reached(self, step: str, at_rest: bool) -> Callable[[], bool]:
        def check() -> bool:
            now = step_of(self.runner.status(self.instance))
            return now == step and (not at_rest or self.runner.is_idle())

        return check

    # --- doors ----------------------------------------------------------------------------------------------
    def post(self, path: str) -> str | None:
        """Start through the route: the instance id, or None when the route refused (kept in `refused`)."""
        reply = http_call("POST", f"{self.runner.base_url}/api/{path}")
        if reply.status != 202:
            self.refused = f"HTTP {reply.status}: {reply.body.decode('utf-8', 'replace')}"
            return None
        return str(reply.json()["id"])

    def wait(self) -> dict:
        return dict(self.runner.wait_for(self.instance, timeout=RUN_TIMEOUT_S))

    # --- seeding and observing ------------------------------------------------------------------------------
    def seed(self) -> None:
        for path, data in FILES.items():
            self.env.write(path, data)
        self.env.flush()
        for path, data in DIRTY.items():
            self.env.write(path, data)

    def seed_stale(self) -> None:
        """A blob in the first generation's container that the source never had (a file deleted since)."""
        container = self.env.backup_container("a")
        if not container.exists():
            container.create_container()
        container.upload_blob(STALE, b"deleted from the source since the last backup")

    def fired(self) -> str:
        """How often the armed faults hit: proxy rules, cluster calls with an injected label, vault rules used."""
        storage = sum(r.fired for r in self.proxy.rules() if r.action != "block")
        cluster = sum(1 for c in self.call_log("dr") if c.get("injected"))
        if "primary" not in self.stopped:
            cluster += sum(1 for c in self.call_log() if c.get("injected"))
        return f"hits: storage {storage}, cluster {cluster}"

    def clear_faults(self) -> None:
        self.proxy.clear()
        self.env.keyvault.clear_faults()
        for cluster in ("primary", "dr"):
            if cluster not in self.stopped:
                self.env.client(cluster).call("sim.clearFaults")

    def app_writes(self, role: str) -> dict[str, int]:
        account = self.account(role)
        return {
            k: v
            for k, v in self.proxy.stats().items()
            if k.startswith(f"{account}:") and k.split(":", 1)[1] in WRITE_OPS and v
        }

    def vault_key_ids(self) -> dict[str, str]:
        """key id -> secret version, for every version of the filer's key secret."""
        out = {}
        for version in self.env.vault.versions(self.key_secret):
            value = KeySecret.loads(self.env.vault.read_ref(version.ref).value)
            out[value.key_id] = version.ref.version
        return out

    def call_log(self, cluster: str = "primary") -> list[dict[str, Any]]:
        return list(self.env.client(cluster).call("sim.callLog"))

    def describe(self, status: dict) -> str:
        return json.dumps({k: status.get(k) for k in ("runtimeStatus", "output", "customStatus")}, default=str)[:3000]
