"""Start a simulated cluster in this process (tests, fixtures) or as the process itself (the stack)."""

from __future__ import annotations

import json
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from devstack.clock import Clock
from devstack.cluster import objects
from devstack.cluster.engine import Cluster, Timing
from devstack.cluster.model import write_private_json
from devstack.cluster.server import ClusterService
from devstack.stack.tls import issue_server_cert

USER = "admin"


class AdjustableClock:
    """Real time plus an offset that sim.advanceClock can grow (process mode: speed up writeback delays)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._offset += seconds
            return time.time() + self._offset


def cluster_dir(state_dir: Path, name: str) -> Path:
    return Path(state_dir) / "clusters" / name


def admin_password(directory: Path) -> str:
    """The cluster's admin password, made once and kept (owner-only) in its state dir."""
    path = directory / "admin.json"
    if path.exists():
        return str(json.loads(path.read_text())["password"])
    password = secrets.token_urlsafe(18)
    write_private_json(path, {"user": USER, "password": password})
    return password


def default_client_ips(name: str) -> tuple[str, str]:
    """Client-facing addresses per cluster (never contacted; they are what failover reports)."""
    net = 1 + zlib.crc32(name.encode()) % 200
    return f"10.{net}.0.10", f"10.{net}.0.12"


@dataclass(frozen=True)
class ClusterHandle:
    """A running simulated cluster: where its API answers, how to log in and trust it, and stop()."""

    name: str
    region: str
    url: str
    user: str
    password: str = field(repr=False)
    ca_cert: Path
    fingerprint: str
    state_dir: Path
    service: ClusterService = field(repr=False)

    @property
    def cluster(self) -> Cluster:
        return self.service.cluster

    def stop(self) -> None:
        self.service.stop()

    def to_json(self) -> dict[str, str]:
        return {
            "url": self.url,
            "user": self.user,
            "password": self.password,
            "ca_cert": str(self.ca_cert),
            "region": self.region,
        }


def start_cluster(
    state_dir: Path,
    name: str,
    region: str,
    blob_endpoint: str,
    clock: Clock | None = None,
    *,
    port: int = 0,
    timing: Timing | None = None,
    chunk_size: int = objects.CHUNK_SIZE,
    client_ips: tuple[str, str] | None = None,
    tick_every: float | None = None,
) -> ClusterHandle:
    """Serve cluster `name` on loopback (port 0: any free one) from STATE/clusters/<name>, in threads.

    The certificate chains to the CA in STATE/tls (made if missing). With a VirtualClock nothing moves until
    the clock does; tick_every adds a background ticker for real time.
    """
    state_dir = Path(state_dir)
    directory = cluster_dir(state_dir, name)
    password = admin_password(directory)
    cert = issue_server_cert(directory / "tls", "server", ca_dir=state_dir / "tls")
    cluster = Cluster(
        directory,
        name,
        region,
        blob_endpoint,
        clock or AdjustableClock(),
        admin_password=password,
        timing=timing,
        chunk_size=chunk_size,
        client_ips=client_ips or default_client_ips(name),
    )
    with cluster.lock:
        cluster.persist()
    service = ClusterService(cluster, port, cert.server_context(), tick_every=tick_every).start()
    return ClusterHandle(
        name=name,
        region=region,
        url=f"https://127.0.0.1:{service.port}/cgi-bin/rpc2.py",
        user=USER,
        password=password,
        ca_cert=cert.ca_cert,
        fingerprint=cert.sha256_fingerprint(),
        state_dir=directory,
        service=service,
    )
