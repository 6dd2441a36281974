"""The simulated cluster: state under one lock, sessions, the clock-driven activities and policy writeback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.clock import Clock
from devstack.cluster import objects
from devstack.cluster.blobio import FilerStorage, StorageError
from devstack.cluster.faults import ENOENT, Fault, no_filer
from devstack.cluster.filedata import CacheStore, FilerData
from devstack.cluster.inject import FaultBook
from devstack.cluster.model import Activity, ClusterState, Filer, Vserver, write_private_json

log = logging.getLogger("devstack.cluster")

MAX_CALL_LOG = 20000
KEEP_DONE_ACTIVITIES = 200

# Built-in cache policies (names from the Terraform provider); delays are the simulator's choice.
BUILTIN_POLICIES: dict[str, dict[str, Any]] = {
    "Full Caching": {"cacheMode": "read-write", "writebackDelay": 28800, "localDirectories": True},
    "Read and Write Caching": {"cacheMode": "read-write", "writebackDelay": 3600, "localDirectories": False},
    "Read Caching": {"cacheMode": "read", "writebackDelay": 0, "localDirectories": False},
    "Clients Bypassing the Cluster": {"cacheMode": "read", "writebackDelay": 0, "localDirectories": False},
    "Transitioning Clients Before or After a Migration": {
        "cacheMode": "read-write",
        "writebackDelay": 3600,
        "localDirectories": False,
    },
}
NOT_CLOUD_POLICIES = frozenset({"Clients Bypassing the Cluster"})


@dataclass(frozen=True)
class Timing:
    """How long activities take on the cluster's clock."""

    create: float = 3.0
    junction: float = 1.0
    flush_base: float = 2.0
    remove_base: float = 3.0
    bytes_per_second: float = 4 * 1024 * 1024

    def scaled(self, speedup: float) -> Timing:
        """Everything `speedup` times faster (process-mode tests)."""
        return Timing(
            create=self.create / speedup,
            junction=self.junction / speedup,
            flush_base=self.flush_base / speedup,
            remove_base=self.remove_base / speedup,
            bytes_per_second=self.bytes_per_second * speedup,
        )


@dataclass
class Session:
    token: str = field(repr=False)
    user: str
    short: str
    apis: set[str] = field(default_factory=set)
    int64: str = "i8"


class Cluster:
    """One simulated vFXT cluster. Every public method expects the caller to hold `lock`."""

    def __init__(
        self,
        state_dir: Path,
        name: str,
        region: str,
        blob_endpoint: str,
        clock: Clock,
        *,
        admin_password: str,
        timing: Timing | None = None,
        chunk_size: int = objects.CHUNK_SIZE,
        client_ips: tuple[str, str] = ("10.0.0.10", "10.0.0.12"),
        mgmt_ip: str = "127.0.0.1",
    ) -> None:
        self.dir = Path(state_dir)
        self.name, self.region, self.blob_endpoint, self.clock = name, region, blob_endpoint, clock
        self.admin_user = "admin"
        self._password = admin_password
        self.timing = timing or Timing()
        self.chunk_size = chunk_size
        self.mgmt_ip = mgmt_ip
        self.lock = threading.RLock()
        self.cache = CacheStore(self.dir / "cache")
        self.sessions: dict[str, Session] = {}
        self.call_log: list[dict[str, Any]] = []
        self.faults = FaultBook()  # sim.injectFault rules (in memory only)
        self.drops = 0  # sim.dropConnections: requests read, then cut off unanswered
        self.refusals = 0  # sim.refuseConnections: connections reset before anything is read
        self.state = self._load(client_ips)

    # -- persistence ---------------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def _load(self, client_ips: tuple[str, str]) -> ClusterState:
        if self.state_file.exists():
            return ClusterState.from_json(json.loads(self.state_file.read_text()))
        state = ClusterState(name=self.name, region=self.region)
        state.vservers["vserver"] = Vserver(
            name="vserver", first_ip=client_ips[0], last_ip=client_ips[1], policies={"default": [self._default_rule(1)]}
        )
        state.next_rule = 2
        return state

    @staticmethod
    def _default_rule(rule_id: int) -> dict[str, Any]:
        return {
            "id": rule_id,
            "scope": "default",
            "filter": "",
            "permission": "rw",
            "squash": "no_root_squash",
            "anonuid": "-2",
            "suid": True,
            "subdir": "",
            "authSys": True,
            "authKrb": False,
        }

    def persist(self) -> None:
        write_private_json(self.state_file, self.state.to_json())

    def now(self) -> float:
        return self.clock.now()

    # -- sessions ------------------------------------------------------------------------------------------
    def login(self, user: str, password: str) -> Session | None:
        ok_user = hmac.compare_digest(user.encode(), self.admin_user.encode())
        ok_password = hmac.compare_digest(password.encode(), self._password.encode())
        if not (ok_user and ok_password):
            return None
        token = secrets.token_urlsafe(24)
        session = Session(token=token, user=user, short=hashlib.sha256(token.encode()).hexdigest()[:8])
        self.sessions[token] = session
        return session

    def log_call(self, session: Session | None, method: str) -> dict[str, Any]:
        """Record a call; the entry is returned so the call can add what it saw (numFiles, injected)."""
        entry: dict[str, Any] = {"session": session.short if session else "", "method": method, "time": self.now()}
        self.call_log.append(entry)
        del self.call_log[:-MAX_CALL_LOG]
        return entry

    # -- filers and their data -----------------------------------------------------------------------------
    def filer(self, name: str) -> Filer:
        filer = self.state.filers.get(name)
        if filer is None:
            raise no_filer(name)
        return filer

    def storage(self, bucket: str, credential: str) -> FilerStorage:
        cred = self.state.credentials.get(credential)
        if cred is None:
            raise Fault(ENOENT, f"Cannot find credential '{credential}'")
        return FilerStorage(self.blob_endpoint, bucket, cred.storage_key)

    def data(self, filer: Filer) -> FilerData:
        return FilerData(filer, self.storage(filer.bucket, filer.credential), self.cache)

    def policy(self, name: str) -> dict[str, Any] | None:
        if name in BUILTIN_POLICIES:
            return {"name": name, **BUILTIN_POLICIES[name]}
        return self.state.cache_policies.get(name)

    def write_through(self, filer: Filer) -> bool:
        policy = self.policy(filer.policy) or {}
        return policy.get("cacheMode") != "read-write"

    # -- activities ----------------------------------------------------------------------------------------
    def start_activity(self, process: str, filer: str, status: str, duration: float, **extra: Any) -> Activity:
        now = self.now()
        act = Activity(
            id=str(uuid.uuid4()),
            process=process,
            filer=filer,
            status=status,
            created=now,
            updated=now,
            duration=max(0.0, duration),
            **extra,
        )
        self.state.activities[act.id] = act
        done = [a for a in self.state.activities.values() if a.state != "inprogress"]
        for old in sorted(done, key=lambda a: a.updated)[:-KEEP_DONE_ACTIVITIES]:
            del self.state.activities[old.id]
        return act

    def activity_json(self, act: Activity) -> dict[str, Any]:
        out = {
            "id": act.id,
            "status": act.status,
            "process": act.process,
            "state": act.state,
            "creationTime": str(int(act.created)),
            "lastUpdateTime": str(int(act.updated)),
        }
        if act.state == "inprogress":
            out["percent"] = str(act.percent)
        return out

    def running(self, process: str, filer: str) -> Activity | None:
        return next(
            (
                a
                for a in self.state.activities.values()
                if a.state == "inprogress" and a.process == process and a.filer == filer
            ),
            None,
        )

    def tick(self) -> None:
        """Move every activity and the policy writeback to the clock's now; persist what changed."""
        now = self.now()
        changed = False
        for act in list(self.state.activities.values()):
            if act.state == "inprogress":
                self._advance(act, now)
                changed = True
        changed = self._policy_writeback(now) or changed
        if changed:
            self.persist()

    def _advance(self, act: Activity, now: float) -> None:
        frac = 1.0 if act.duration <= 0 else min(1.0, (now - act.created) / act.duration)
        act.updated = now
        try:
            if act.process in ("corefiler_flush", "corefiler_remove"):
                self._write_work(act, frac)
                done = frac >= 1.0 and not act.work
            else:
                done = frac >= 1.0
            if done:
                self._finish(act)
                act.state, act.percent, act.status = "success", 100, "complete"
            else:
                act.percent = min(99, int(frac * 100))
        except (StorageError, objects.ObjectError, Fault) as exc:
            act.state, act.status = "failure", f"{act.process} of core filer '{act.filer}' failed: {exc}"
            filer = self.state.filers.get(act.filer)
            if filer is not None and filer.admin_state in ("flushing", "removing"):
                filer.admin_state = "online"
            log.warning("cluster %s: %s", self.name, act.status)

    def _write_work(self, act: Activity, frac: float) -> None:
        filer = self.filer(act.filer)
        data = self.data(filer)
        target = frac * act.total_bytes
        while act.work and (frac >= 1.0 or act.done_bytes < target):
            entry = filer.files.get(act.work[0])
            size = entry.size if entry is not None else 0
            data.writeback(act.work[0])
            act.done_bytes += size
            act.work.pop(0)
        filer.writeback_error = ""

    def _finish(self, act: Activity) -> None:
        if act.process == "corefiler_create":
            filer = Filer.from_json(act.spec)
            if filer.contents == "empty":
                storage = self.storage(filer.bucket, filer.credential)
                storage.put(objects.FSINFO, *objects.fsinfo_object(FilerData(filer, storage, self.cache).fs))
            self.state.filers[filer.name] = filer
        elif act.process == "corefiler_flush":
            self.filer(act.filer).admin_state = "online"
        elif act.process == "corefiler_remove":
            filer = self.state.filers.pop(act.filer)
            self.cache.drop(filer.internal)

    def _policy_writeback(self, now: float) -> bool:
        changed = False
        for filer in self.state.filers.values():
            policy = self.policy(filer.policy) or {}
            delay = float(policy.get("writebackDelay", 0) or 0)
            blocked = filer.admin_state == "removing" or (filer.encrypted and not filer.active_key)
            if blocked or not filer.index_loaded:
                continue
            due = [p for p, e in filer.files.items() if e.dirty and now - e.dirty_since >= delay]
            if not due:
                continue
            try:
                data = self.data(filer)
                for path in due:
                    data.writeback(path)
                filer.writeback_error = ""
            except (StorageError, objects.ObjectError, Fault) as exc:
                filer.writeback_error = str(exc)
            changed = True
        return changed

    def alerts(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for f in self.state.filers.values():
            if f.encrypted and not f.active_key:
                out.append(
                    {
                        "name": "corefiler.noMasterKey",
                        "severity": "red",
                        "message": f"Core filer '{f.name}' has no active encryption key",
                    }
                )
            if f.writeback_error:
                out.append(
                    {
                        "name": "corefiler.writeback",
                        "severity": "red",
                        "message": f"Core filer '{f.name}' cannot write back: {f.writeback_error}",
                    }
                )
            if f.client_suspend:
                out.append(
                    {
                        "name": "corefiler.clientSuspend",
                        "severity": "yellow",
                        "message": f"Client access to core filer '{f.name}' is suspended",
                    }
                )
        return out
