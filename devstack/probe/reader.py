"""What the probe stand-in does for one request: find the cluster behind the mount addresses, list the junctions,
read a sample of files whole through the simulator's `sim.*` file calls (read-only: it never writes)."""

from __future__ import annotations

import base64
import ipaddress
import random
import time
import xmlrpc.client
from dataclasses import dataclass, field
from typing import Any

from shared.avere.client import AvereClient
from shared.avere.errors import AvereError


@dataclass(frozen=True)
class ClusterAccess:
    """A cluster the probe's network reaches: its management API stands in for NFS mounts of its vservers."""

    name: str
    url: str
    user: str
    password: str = field(repr=False)
    ca_cert: str


class BadRequest(ValueError):
    """The request is not one the contract allows (answered 400, naming the problem)."""


@dataclass(frozen=True)
class Mount:
    vserver: str
    addresses: tuple[str, ...]
    paths: tuple[str, ...]


def parse(body: Any) -> tuple[str, list[Mount], int, float]:
    """(drill id, mounts, sample size, time limit) of a request body; BadRequest for anything else."""
    if not isinstance(body, dict) or body.get("version") != 1:
        raise BadRequest("expected a version 1 request object")
    mounts = body.get("mounts")
    sample, limit = body.get("sample_size"), body.get("time_limit_seconds")
    if not isinstance(mounts, list) or not mounts:
        raise BadRequest("mounts: expected a non-empty list")
    if type(sample) is not int or not 1 <= sample <= 1000:
        raise BadRequest("sample_size: expected an integer from 1 to 1000")
    if not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0:
        raise BadRequest("time_limit_seconds: expected a positive number")
    if body.get("read_only") is not True:
        raise BadRequest("read_only: this probe only mounts read-only")
    out = []
    for m in mounts:
        if not isinstance(m, dict) or not isinstance(m.get("vserver"), str):
            raise BadRequest("mounts[]: expected objects with vserver, addresses and paths")
        addresses, paths = _strings(m.get("addresses")), _strings(m.get("paths"))
        if not addresses or not paths or not all(p.startswith("/") for p in paths):
            raise BadRequest("mounts[]: addresses and paths must be non-empty lists of strings (absolute paths)")
        out.append(Mount(m["vserver"], addresses, paths))
    return str(body.get("drill_id", "")), out, sample, float(limit)


def _strings(value: Any) -> tuple[str, ...]:
    """The list's strings, or () when it is not a list of strings."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return ()


def _serves(client: AvereClient, vserver: str, address: str) -> bool:
    try:
        info = client.call("vserver.get", vserver)[vserver]
    except (AvereError, KeyError):
        return False
    try:
        want = int(ipaddress.ip_address(address))
    except ValueError:
        return False
    for block in info.get("clientFacingIPs") or []:
        first = int(ipaddress.ip_address(block["firstIP"]))
        last = int(ipaddress.ip_address(block.get("lastIP") or block["firstIP"]))
        if first <= want <= last:
            return True
    return False


def read_sample(
    clusters: list[ClusterAccess], drill_id: str, mounts: list[Mount], sample: int, limit: float
) -> dict[str, Any]:
    """Mount each (vserver, address) read-only, list the paths, read a sample of files whole."""
    deadline = time.monotonic() + limit
    files: list[dict[str, Any]] = []
    listed: list[tuple[AvereClient, str, str]] = []
    opened: list[AvereClient] = []
    try:
        for mount in mounts:
            client = _mount(clusters, mount, opened)
            exports = _exports(client, mount.vserver) if client is not None else set()
            for path in mount.paths:
                if client is None:
                    files.append(
                        {
                            "path": path,
                            "status": "error",
                            "error": f"no cluster serves vserver {mount.vserver} at {mount.addresses[0]}",
                        }
                    )
                    continue
                if not any(path == e or path.startswith(e + "/") for e in exports):
                    files.append(
                        {
                            "path": path,
                            "status": "error",
                            "error": f"mount {mount.addresses[0]}:{path} failed: no such export",
                        }
                    )
                    continue
                try:
                    found = client.call("sim.listFiles", mount.vserver, path)
                except (AvereError, xmlrpc.client.Fault, OSError) as exc:
                    files.append({"path": path, "status": "error", "error": f"listing failed: {exc}"[:300]})
                    continue
                listed.extend((client, mount.vserver, str(f["path"])) for f in found)
        room = max(0, sample - len(files))  # listing errors count against the sample
        chosen = sorted(random.Random(drill_id).sample(listed, min(room, len(listed))), key=lambda item: item[2])
        complete = True
        for client, vserver, path in chosen:
            if time.monotonic() > deadline:
                complete = False
                break
            files.append(_read(client, vserver, path))
    finally:
        for client in opened:
            client.close()
    return {"version": 1, "drill_id": drill_id, "files": files, "listed": len(listed), "complete": complete}


def _exports(client: AvereClient, vserver: str) -> set[str]:
    """The junction paths a client can mount from the vserver."""
    return {str(j["path"]) for j in client.call("vserver.listJunctions", vserver)}


def _mount(clusters: list[ClusterAccess], mount: Mount, opened: list[AvereClient]) -> AvereClient | None:
    for access in clusters:
        client = AvereClient(access.url, access.user, access.password, ca_file=access.ca_cert, retries=1)
        if _serves(client, mount.vserver, mount.addresses[0]):
            opened.append(client)
            return client
        client.close()
    return None


def _read(client: AvereClient, vserver: str, path: str) -> dict[str, Any]:
    try:
        data = base64.b64decode(client.call("sim.readFile", vserver, path))
    except (AvereError, xmlrpc.client.Fault, OSError, ValueError) as exc:
        return {"path": path, "status": "error", "error": str(exc)[:300]}
    return {"path": path, "status": "ok", "bytes": len(data)}
