"""The DR plan's parts as frozen dataclasses: clusters, filers and their storage, copy and guard settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

from shared.core.netutil import is_loopback_host
from shared.plan import validate as chk
from shared.plan.validate import Obj, Problems

DEFAULT_RPC_PATH = "/cgi-bin/rpc2.py"
ENGINES = ("copy", "blocks")


def _nonblank(value: str) -> str | None:
    return None if value.strip() and not any(c.isspace() for c in value) else "must be non-empty, no spaces"


class _Part:
    """Read from a plan fragment with `_read`; to_json/from_json follow the Durable codec's convention."""

    @classmethod
    def _read(cls, o: Obj) -> Self | None:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> Self:
        problems = Problems()
        part = cls._read(Obj(data, path, problems, cls._keys()))
        problems.raise_if_any()
        assert part is not None
        return part

    @staticmethod
    def to_json(obj: Any) -> dict[str, Any]:
        return obj.as_dict()

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        raise NotImplementedError


def _unchanged(problems: Problems, before: int) -> bool:
    return len(problems.items) == before


# What `tls.acknowledge_insecure` must say, word for word, before verification may be off for a cluster that
# is not on this machine: a person typed it, knowing what it means.
INSECURE_ACK = "I accept that the admin password is sent to a server whose identity is not checked"


@dataclass(frozen=True)
class TlsTrust(_Part):
    """How the cluster's management certificate is trusted: a CA file, a pinned fingerprint, or not at all
    (`verify: false`, which for a host other than loopback also needs `acknowledge_insecure`)."""

    ca_file: str | None = None
    fingerprint_sha256: str | None = None  # upper-case, colon-separated
    verify: bool = True
    insecure_acknowledged: bool = False  # acknowledge_insecure held INSECURE_ACK

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("ca_file", "fingerprint_sha256", "verify", "acknowledge_insecure")

    @classmethod
    def _read(cls, o: Obj) -> TlsTrust | None:
        before = len(o.problems.items)
        given = [k for k in ("ca_file", "fingerprint_sha256", "verify") if k in o.data]
        if o.ok and len(given) != 1:
            o.problems.add(o.path, "give exactly one of ca_file, fingerprint_sha256, or verify: false "
                           f"(got {', '.join(given) or 'none'})", "tls")
        ca = o.text("ca_file", _nonblank, default=None)
        fp = o.text("fingerprint_sha256", chk.fingerprint, default=None, rule="fingerprint")
        verify = o.flag("verify", default=True)
        if verify is True and "verify" in o.data:
            o.problems.add(o.at("verify"), "may only be false (to verify against a CA, give ca_file)", "tls")
        ack = o.text("acknowledge_insecure", default=None)
        if ack is not None and ack != INSECURE_ACK:
            o.problems.add(o.at("acknowledge_insecure"), f"must be exactly {INSECURE_ACK!r}", "tls")
        elif ack is not None and verify is not False:
            o.problems.add(o.at("acknowledge_insecure"), "only goes with verify: false", "tls")
        if not _unchanged(o.problems, before):
            return None
        return cls(ca_file=ca, fingerprint_sha256=chk.normal_fingerprint(fp) if fp else None,
                   verify=bool(verify), insecure_acknowledged=ack == INSECURE_ACK)

    def client_kwargs(self) -> dict[str, Any]:
        """The trust arguments shared.avere.client's client takes."""
        return {"ca_file": self.ca_file, "fingerprint_sha256": self.fingerprint_sha256,
                "insecure": not self.verify, "insecure_acknowledged": self.insecure_acknowledged}

    def as_dict(self) -> dict[str, Any]:
        if self.ca_file:
            return {"ca_file": self.ca_file}
        if self.fingerprint_sha256:
            return {"fingerprint_sha256": self.fingerprint_sha256}
        return {"verify": False} | ({"acknowledge_insecure": INSECURE_ACK} if self.insecure_acknowledged else {})


def unverified_tls_problem(address: str, tls: TlsTrust) -> str | None:
    """Why verification may not be off for this management address, or None when it may (or is on)."""
    if tls.verify or tls.insecure_acknowledged or is_loopback_host(urlsplit(f"https://{address}").hostname):
        return None
    return (f"required with verify: false, because {address} is not a loopback address: the admin password "
            f"would go to a server whose identity is not checked; to accept that, set it to exactly "
            f"{INSECURE_ACK!r}")


@dataclass(frozen=True)
class Cluster(_Part):
    """An Avere cluster reachable over its XML-RPC management API."""

    name: str
    management_address: str
    region: str
    admin_password_secret: str
    tls: TlsTrust
    admin_user: str = "admin"
    rpc_path: str = DEFAULT_RPC_PATH
    poll_seconds: float = 10.0  # cadence of the workflow's polls of cluster activities (flush, remove, attach)

    @property
    def management_url(self) -> str:
        return f"https://{self.management_address}{self.rpc_path}"

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("name", "management_address", "rpc_path", "region", "admin_user", "admin_password_secret",
                "tls", "poll_seconds")

    @classmethod
    def _read(cls, o: Obj) -> Cluster | None:
        before = len(o.problems.items)
        name = o.text("name", chk.object_name, rule="name")
        address = o.text("management_address", chk.host_port, rule="address")
        rpc = o.text("rpc_path", chk.rpc_path, default=DEFAULT_RPC_PATH, rule="address")
        region = o.text("region", chk.region, rule="region")
        user = o.text("admin_user", _nonblank, default="admin")
        secret = o.text("admin_password_secret", chk.secret_name, rule="secret-name")
        poll = o.number("poll_seconds", low=1, high=600, default=10.0)
        tls_obj = o.obj("tls", TlsTrust._keys())
        tls = TlsTrust._read(tls_obj) if tls_obj else None
        unverified = unverified_tls_problem(address, tls) if tls_obj and tls and address else None
        if tls_obj and unverified:
            o.problems.add(tls_obj.at("acknowledge_insecure"), unverified, "tls")
        if not _unchanged(o.problems, before):
            return None
        return cls(name=name, management_address=address, region=region, admin_password_secret=secret,
                   tls=tls, admin_user=user, rpc_path=rpc, poll_seconds=float(poll))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "management_address": self.management_address, "rpc_path": self.rpc_path,
                "region": self.region, "admin_user": self.admin_user,
                "admin_password_secret": self.admin_password_secret, "tls": self.tls.as_dict(),
                "poll_seconds": self.poll_seconds}


def _read_account(o: Obj) -> tuple[str | None, str | None, str | None]:
    account = o.text("account", chk.account_name, rule="account-name")
    endpoint = o.text("blob_endpoint", chk.blob_endpoint, rule="url")
    region = o.text("region", chk.region, rule="region")
    if account and endpoint:
        mismatch = chk.endpoint_account(endpoint, account)
        if mismatch:
            o.problems.add(o.at("blob_endpoint"), mismatch, "endpoint-account")
    return account, endpoint, region


@dataclass(frozen=True)
class SourceStorage(_Part):
    """The container behind a cloud core filer (written only by the cluster)."""

    account: str
    container: str
    blob_endpoint: str
    region: str
    key_secret: str | None = None  # needed when the plan's storage_auth is "key"

    @property
    def account_url(self) -> str:
        return self.blob_endpoint.rstrip("/")

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("account", "container", "blob_endpoint", "region", "key_secret")

    @classmethod
    def _read(cls, o: Obj) -> SourceStorage | None:
        before = len(o.problems.items)
        account, endpoint, region = _read_account(o)
        container = o.text("container", chk.container_name, rule="container-name")
        key_secret = o.text("key_secret", chk.secret_name, default=None, rule="secret-name")
        if not _unchanged(o.problems, before):
            return None
        return cls(account=account, container=container, blob_endpoint=endpoint, region=region,
                   key_secret=key_secret)

    def as_dict(self) -> dict[str, Any]:
        out = {"account": self.account, "container": self.container, "blob_endpoint": self.blob_endpoint,
               "region": self.region}
        return out | ({"key_secret": self.key_secret} if self.key_secret else {})


def default_containers(filer_name: str) -> tuple[str, str]:
    """Two backup generations named after the filer: `<name>-a`, `<name>-b` (made container-safe)."""
    base = re.sub(r"[^a-z0-9]+", "-", filer_name.lower()).strip("-")[:61].rstrip("-") or "filer"
    return f"{base}-a", f"{base}-b"


@dataclass(frozen=True)
class BackupStorage(_Part):
    """Where a filer's backups go: an account in another region, two container generations (A/B)."""

    account: str
    blob_endpoint: str
    region: str
    containers: tuple[str, str]
    storage_key_secret: str  # the key the cluster's azure-storage credential needs to mount a backup

    @property
    def account_url(self) -> str:
        return self.blob_endpoint.rstrip("/")

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("account", "blob_endpoint", "region", "containers", "storage_key_secret")

    @classmethod
    def _read(cls, o: Obj, filer_name: str | None = None) -> BackupStorage | None:
        before = len(o.problems.items)
        account, endpoint, region = _read_account(o)
        secret = o.text("storage_key_secret", chk.secret_name, rule="secret-name")
        containers: list[str] = []
        if "containers" in o.data:
            for path, item in o.items("containers"):
                if not isinstance(item, str):
                    o.problems.add(path, "must be a string", "type")
                elif problem := chk.container_name(item):
                    o.problems.add(path, problem, "container-name")
                else:
                    containers.append(item)
            if isinstance(o.data["containers"], list) and (
                    len(o.data["containers"]) != 2 or len(set(o.data["containers"])) != 2):
                o.problems.add(o.at("containers"), "must name exactly two distinct containers "
                               "(the A and B backup generations)", "generations")
        elif filer_name:
            containers = list(default_containers(filer_name))
        elif o.ok:
            o.problems.add(o.at("containers"), "required", "required")
        if not _unchanged(o.problems, before):
            return None
        return cls(account=account, blob_endpoint=endpoint, region=region,
                   containers=(containers[0], containers[1]), storage_key_secret=secret)

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "blob_endpoint": self.blob_endpoint, "region": self.region,
                "containers": list(self.containers), "storage_key_secret": self.storage_key_secret}


@dataclass(frozen=True)
class Filer(_Part):
    """A protected cloud core filer of a cluster: its source container and its backup generations."""

    cluster: str
    name: str
    source: SourceStorage
    backup: BackupStorage
    enabled: bool = True
    max_offline_minutes: int = 30
    failover_cluster: str | None = None

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.name}"

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("cluster", "name", "enabled", "max_offline_minutes", "source", "backup", "failover_cluster")

    @classmethod
    def _read(cls, o: Obj) -> Filer | None:
        before = len(o.problems.items)
        cluster = o.text("cluster", chk.object_name, rule="name")
        name = o.text("name", chk.object_name, rule="name")
        enabled = o.flag("enabled", default=True)
        max_offline = o.integer("max_offline_minutes", 1, 7 * 24 * 60, default=30)
        failover = o.text("failover_cluster", chk.object_name, default=None, rule="name")
        src_obj = o.obj("source", SourceStorage._keys())
        source = SourceStorage._read(src_obj) if src_obj else None
        bak_obj = o.obj("backup", BackupStorage._keys())
        backup = BackupStorage._read(bak_obj, name) if bak_obj else None
        if not _unchanged(o.problems, before):
            return None
        return cls(cluster=cluster, name=name, source=source, backup=backup,
                   enabled=enabled, max_offline_minutes=max_offline, failover_cluster=failover)

    def as_dict(self) -> dict[str, Any]:
        out = {"cluster": self.cluster, "name": self.name, "enabled": self.enabled,
               "max_offline_minutes": self.max_offline_minutes, "source": self.source.as_dict(),
               "backup": self.backup.as_dict()}
        return out | ({"failover_cluster": self.failover_cluster} if self.failover_cluster else {})


@dataclass(frozen=True)
class CopySettings(_Part):
    """How containers are copied: engine, parallelism, listing page size, polling and history bounds."""

    engine: str = "copy"
    concurrency: int = 64
    page_size: int = 5000
    poll_interval_seconds: float = 15.0
    pending_limit_seconds: float = 3600.0
    parallel_pages: int = 4
    pages_per_execution: int = 50

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f for f in cls.__dataclass_fields__)

    @classmethod
    def _read(cls, o: Obj) -> CopySettings | None:
        before = len(o.problems.items)
        engine = o.text("engine", lambda v: None if v in ENGINES else f"must be one of {', '.join(ENGINES)}",
                        default="copy", rule="enum")
        values = {
            "concurrency": o.integer("concurrency", 1, 1000, default=64),
            "page_size": o.integer("page_size", 1, 5000, default=5000),
            "poll_interval_seconds": o.number("poll_interval_seconds", above=0, default=15.0),
            "pending_limit_seconds": o.number("pending_limit_seconds", above=0, default=3600.0),
            "parallel_pages": o.integer("parallel_pages", 1, 100, default=4),
            "pages_per_execution": o.integer("pages_per_execution", 1, 1000, default=50),
        }
        poll, limit = values["poll_interval_seconds"], values["pending_limit_seconds"]
        if poll is not None and limit is not None and poll >= limit:
            o.problems.add(o.at("pending_limit_seconds"), "must be longer than poll_interval_seconds",
                           "range")
        if not _unchanged(o.problems, before):
            return None
        return cls(engine=engine, **values)

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._keys()}


@dataclass(frozen=True)
class GuardSettings(_Part):
    """Guard rails on mirrored deletions: above the fraction (and count) a run waits for approval."""

    max_delete_fraction: float = 0.10
    min_count: int = 100
    approval_timeout_hours: float = 24.0

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f for f in cls.__dataclass_fields__)

    @classmethod
    def _read(cls, o: Obj) -> GuardSettings | None:
        before = len(o.problems.items)
        fraction = o.number("max_delete_fraction", low=0.0, high=1.0, default=0.10)
        count = o.integer("min_count", 0, default=100)
        timeout = o.number("approval_timeout_hours", above=0, default=24.0)
        if not _unchanged(o.problems, before):
            return None
        return cls(max_delete_fraction=fraction, min_count=count, approval_timeout_hours=timeout)

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._keys()}


DEFAULT_COPY = CopySettings()
DEFAULT_GUARD = GuardSettings()
