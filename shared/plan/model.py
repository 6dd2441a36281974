"""The DR plan's parts as frozen dataclasses: clusters, filers and their storage, copy and guard settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

from shared.core.codec import JsonRecord, json_options
from shared.plan import validate as chk
from shared.plan.validate import Obj, Problems

T = TypeVar("T")

DEFAULT_RPC_PATH = "/cgi-bin/rpc2.py"
ENGINES = ("copy", "blocks")


def _nonblank(value: str) -> str | None:
    return None if value.strip() and not any(c.isspace() for c in value) else "must be non-empty, no spaces"


class _Part(JsonRecord):
    """A plan part: a record of the one codec (shared.core.codec), held to the plan's rules when it is read.

    `_read` reads a fragment of the plan file, recording every problem; a part decoded from a payload goes
    through the same rules (`_checked`), so a tampered payload is refused as the plan file would be."""

    UNKNOWN_KEYS: ClassVar[str] = "refuse"

    @classmethod
    def _read(cls, o: Obj) -> Self | None:
        raise NotImplementedError

    @classmethod
    def read_plan_part(cls, data: Any, path: str = "") -> Self:
        """The part a plan fragment describes; PlanError naming every problem."""
        problems = Problems()
        part = cls._read(Obj(data, path, problems, cls._keys()))
        problems.raise_if_any()
        return present(part)

    def _checked(self) -> Self:
        return type(self).read_plan_part(self.to_json())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        raise NotImplementedError


def present(value: T | None) -> T:
    """A value a part read without problems always has (the reader returned None on any problem)."""
    if value is None:
        raise AssertionError("a plan part read without problems lacks a required value")
    return value


def _clean(o: Obj, before: int) -> bool:
    """Whether the fragment is an object and reading it added no problem: then every required value is there."""
    return o.ok and len(o.problems.items) == before


@dataclass(frozen=True)
class TlsTrust(_Part):
    """How the cluster's management certificate is trusted: a CA file, a pinned fingerprint, or not at all."""

    ca_file: str | None = field(default=None, metadata=json_options(omit=None))
    # upper-case, colon-separated
    fingerprint_sha256: str | None = field(default=None, metadata=json_options(omit=None))
    verify: bool = field(default=True, metadata=json_options(omit=True))

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("ca_file", "fingerprint_sha256", "verify")

    @classmethod
    def _read(cls, o: Obj) -> TlsTrust | None:
        before = len(o.problems.items)
        given = [k for k in cls._keys() if o.data.get(k) is not None]  # {"ca_file": null} names no trust
        if o.ok and len(given) != 1:
            o.problems.add(o.path, "give exactly one of ca_file, fingerprint_sha256, or verify: false "
                           f"(got {', '.join(given) or 'none'})", "tls")
        ca = o.text("ca_file", _nonblank, default=None)
        fp = o.text("fingerprint_sha256", chk.fingerprint, default=None, rule="fingerprint")
        verify = o.flag("verify", default=True)
        if verify is True and "verify" in o.data:
            o.problems.add(o.at("verify"), "may only be false (to verify against a CA, give ca_file)", "tls")
        if not _clean(o, before):
            return None
        return cls(ca_file=ca, fingerprint_sha256=chk.normal_fingerprint(fp) if fp else None,
                   verify=bool(verify))

    def client_kwargs(self) -> dict[str, Any]:
        """The trust arguments shared.avere.client's client takes."""
        return {"ca_file": self.ca_file, "fingerprint_sha256": self.fingerprint_sha256,
                "insecure": not self.verify}


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
        if not _clean(o, before):
            return None
        return cls(name=present(name), management_address=present(address), region=present(region),
                   admin_password_secret=present(secret), tls=present(tls), admin_user=present(user),
                   rpc_path=present(rpc), poll_seconds=float(present(poll)))


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
    # needed when the plan's storage_auth is "key"
    key_secret: str | None = field(default=None, metadata=json_options(omit=None))

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
        if not _clean(o, before):
            return None
        return cls(account=present(account), container=present(container), blob_endpoint=present(endpoint),
                   region=present(region), key_secret=key_secret)


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
            listed = o.data["containers"]  # compared, not hashed: an item may be any JSON value
            if isinstance(listed, list) and (len(listed) != 2 or listed[0] == listed[1]):
                o.problems.add(o.at("containers"), "must name exactly two distinct containers "
                               "(the A and B backup generations)", "generations")
        elif filer_name:
            containers = list(default_containers(filer_name))
        elif o.ok:
            o.problems.add(o.at("containers"), "required", "required")
        if not _clean(o, before):
            return None
        return cls(account=present(account), blob_endpoint=present(endpoint), region=present(region),
                   containers=(containers[0], containers[1]), storage_key_secret=present(secret))


@dataclass(frozen=True)
class Filer(_Part):
    """A protected cloud core filer of a cluster: its source container and its backup generations."""

    cluster: str
    name: str
    source: SourceStorage
    backup: BackupStorage
    enabled: bool = True
    max_offline_minutes: int = 30
    failover_cluster: str | None = field(default=None, metadata=json_options(omit=None))

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
        if not _clean(o, before):
            return None
        return cls(cluster=present(cluster), name=present(name), source=present(source), backup=present(backup),
                   enabled=present(enabled), max_offline_minutes=present(max_offline), failover_cluster=failover)


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
        if not _clean(o, before):
            return None
        return cls(engine=present(engine), concurrency=int(present(values["concurrency"])),
                   page_size=int(present(values["page_size"])),
                   poll_interval_seconds=float(present(values["poll_interval_seconds"])),
                   pending_limit_seconds=float(present(values["pending_limit_seconds"])),
                   parallel_pages=int(present(values["parallel_pages"])),
                   pages_per_execution=int(present(values["pages_per_execution"])))


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
        if not _clean(o, before):
            return None
        return cls(max_delete_fraction=present(fraction), min_count=present(count),
                   approval_timeout_hours=present(timeout))


DEFAULT_COPY = CopySettings()
DEFAULT_GUARD = GuardSettings()
