"""The simulated cluster's persistent state: vservers, junctions, policies, credentials, filers, jobs."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "avere-sim-cluster-state/1"


def _from(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class FileEntry:
    """A file of a core filer as the cache knows it; the data of dirty files lives in the cache store."""

    objid: str
    size: int = 0  # current size (dirty data when dirty)
    gen: int = 0  # generation stored in the container, 0 = never written back
    chunks: int = 0  # chunk objects of that generation
    stored_size: int = 0  # size of the stored generation
    dirty: bool = False
    deleted: bool = False
    dirty_since: float = 0.0
    mtime: float = 0.0


@dataclass
class Filer:
    """A cloud core filer: its settings, keys (the simpleKey store on 'local disk') and its cached index."""

    name: str
    id: int
    internal: str
    bucket: str
    server_name: str
    credential: str
    crypto_mode: str
    compress_mode: str
    ssl_verify_mode: str
    https: str
    port: str
    proxy: str
    nearline: str
    network: str
    policy: str
    contents: str
    admin_state: str = "online"
    client_suspend: bool = False
    fsid: str = ""
    chunk_size: int = 1024 * 1024
    keys: dict[str, str] = field(default_factory=dict)  # key id -> hex key, activation order
    active_key: str = ""
    activation_time: float = 0.0
    pending_key: str = ""
    pending_key_hex: str = ""
    last_file: str = ""  # the most recent generateMasterKey's recovery file (downloadKeyRecoveryFile)
    last_signature: str = ""
    recovery_signature: str = ""
    key_generated: bool = False
    index_loaded: bool = False
    files: dict[str, FileEntry] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    writeback_error: str = ""

    @property
    def encrypted(self) -> bool:
        return self.crypto_mode != "DISABLED"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Filer:
        filer = _from(cls, data)
        filer.files = {p: _from(FileEntry, e) for p, e in data.get("files", {}).items()}
        return filer


@dataclass
class Junction:
    path: str
    filer: str
    export: str = "/"
    subdir: str = ""
    inherit_policy: bool = True
    policy: str = ""
    access: str = "posix"
    sharename: str = ""
    sharesubdir: str = ""
    permissions: str = "preserve"


@dataclass
class Vserver:
    name: str
    first_ip: str
    last_ip: str
    netmask: str = "255.255.255.0"
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> rules
    junctions: dict[str, Junction] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vserver:
        vs = _from(cls, data)
        vs.junctions = {p: _from(Junction, j) for p, j in data.get("junctions", {}).items()}
        return vs


@dataclass
class Credential:
    name: str
    type: str
    tenant: str = ""
    subscription: str = ""
    note: str = ""
    storage_key: str = field(default="", repr=False)  # the account key, base64 (without 'BASE64:')


@dataclass
class Activity:
    """A long-running job. Progress is a function of the clock; `work` is what is left to write back."""

    id: str
    process: str
    filer: str
    status: str
    created: float
    duration: float
    state: str = "inprogress"
    updated: float = 0.0
    percent: int = 0
    total_bytes: int = 0
    done_bytes: int = 0
    work: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClusterState:
    name: str
    region: str
    next_id: int = 1
    next_rule: int = 1
    vservers: dict[str, Vserver] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
    cache_policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # custom ones only
    filers: dict[str, Filer] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        if data.get("format") != FORMAT:
            raise ValueError(f"cluster state format {data.get('format')!r} is not {FORMAT!r}")
        state = _from(cls, data)
        state.vservers = {n: Vserver.from_json(v) for n, v in data.get("vservers", {}).items()}
        state.credentials = {n: _from(Credential, c) for n, c in data.get("credentials", {}).items()}
        state.filers = {n: Filer.from_json(f) for n, f in data.get("filers", {}).items()}
        state.activities = {i: _from(Activity, a) for i, a in data.get("activities", {}).items()}
        return state

    def junctions_of(self, filer: str) -> list[tuple[str, Junction]]:
        return [(v.name, j) for v in self.vservers.values() for j in v.junctions.values() if j.filer == filer]


def write_private_json(path: Path, data: Any) -> None:
    """Atomically replace path with data, readable by the owner only (it holds keys and credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
