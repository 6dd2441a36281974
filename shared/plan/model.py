"""The DR plan's parts as frozen dataclasses: clusters, filers and their storage, copy and guard settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from shared.core.codec import json_options
from shared.core.netutil import is_loopback_host
from shared.plan import validate as chk
from shared.plan.drill import DrillSettings, read_drill, schedule_problem
from shared.plan.part import _clean, _nonblank, _Part, present
from shared.plan.validate import Obj

DEFAULT_RPC_PATH = "/cgi-bin/rpc2.py"
ENGINES = ("copy", "blocks")

# What `tls.acknowledge_insecure` must say, word for word, before verification may be off for a cluster that
# is not on this machine: a person typed it, knowing what it means.
INSECURE_ACK = "I accept that the admin password is sent to a server whose identity is not checked"


@dataclass(frozen=True)
class TlsTrust(_Part):
    """How the cluster's management certificate is trusted: a CA file, a pinned fingerprint, or not at all
    (`verify: false`, which for a host other than loopback also needs `acknowledge_insecure`)."""

    ca_file: str | None = field(default=None, metadata=json_options(omit=None))
    # upper-case, colon-separated
    fingerprint_sha256: str | None = field(default=None, metadata=json_options(omit=None))
    verify: bool = field(default=True, metadata=json_options(omit=True))
    # exactly INSECURE_ACK when the plan accepts verify: false for a host other than loopback
    acknowledge_insecure: str | None = field(default=None, repr=False, metadata=json_options(omit=None))

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("ca_file", "fingerprint_sha256", "verify", "acknowledge_insecure")

    @classmethod
    def _read(cls, o: Obj) -> TlsTrust | None:
        before = len(o.problems.items)
        given = [k for k in ("ca_file", "fingerprint_sha256", "verify") if o.data.get(k) is not None]
        if o.ok and len(given) != 1:
            o.problems.add(
                o.path,
                f"give exactly one of ca_file, fingerprint_sha256, or verify: false (got {', '.join(given) or 'none'})",
                "tls",
            )
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
        if not _clean(o, before):
            return None
        return cls(
            ca_file=ca,
            fingerprint_sha256=chk.normal_fingerprint(fp) if fp else None,
            verify=bool(verify),
            acknowledge_insecure=ack,
        )

    @property
    def insecure_acknowledged(self) -> bool:
        return self.acknowledge_insecure == INSECURE_ACK

    def client_kwargs(self) -> dict[str, Any]:
        """The trust arguments shared.avere.client's client takes."""
        return {
            "ca_file": self.ca_file,
            "fingerprint_sha256": self.fingerprint_sha256,
            "insecure": not self.verify,
            "insecure_acknowledged": self.insecure_acknowledged,
        }


def unverified_tls_problem(address: str, tls: TlsTrust) -> str | None:
    """Why verification may not be off for this management address, or None when it may (or is on)."""
    if tls.verify or tls.insecure_acknowledged or is_loopback_host(urlsplit(f"https://{address}").hostname):
        return None
    return (
        f"required with verify: false, because {address} is not a loopback address: the admin password "
        f"would go to a server whose identity is not checked; to accept that, set it to exactly "
        f"{INSECURE_ACK!r}"
    )


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
        return (
            "name",
            "management_address",
            "rpc_path",
            "region",
            "admin_user",
            "admin_password_secret",
            "tls",
            "poll_seconds",
        )

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
        if not _clean(o, before):
            return None
        return cls(
            name=present(name),
            management_address=present(address),
            region=present(region),
            admin_password_secret=present(secret),
            tls=present(tls),
            admin_user=present(user),
            rpc_path=present(rpc),
            poll_seconds=float(present(poll)),
        )


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
        return cls(
            account=present(account),
            container=present(container),
            blob_endpoint=present(endpoint),
            region=present(region),
            key_secret=key_secret,
        )


# Backup generations are named by one letter each, a..z: "a" and "b" are the two containers plans have always
# named, "c" onwards come from a naming rule. 26 is the most a filer can keep (one full copy of its data each).
GENERATION_IDS = tuple("abcdefghijklmnopqrstuvwxyz")
MIN_GENERATIONS, DEFAULT_GENERATIONS, MAX_GENERATIONS = 2, 2, len(GENERATION_IDS)


def container_base(filer_name: str) -> str:
    """The filer name made container-safe (lower-cased, other characters turned into hyphens), at most 61
    characters so that `<base>-<letter>` is a valid container name."""
    return re.sub(r"[^a-z0-9]+", "-", filer_name.lower()).strip("-")[:61].rstrip("-") or "filer"


def default_containers(filer_name: str) -> tuple[str, str]:
    """Two backup generations named after the filer: `<name>-a`, `<name>-b` (made container-safe)."""
    base = container_base(filer_name)
    return f"{base}-a", f"{base}-b"


def _prefix_problem(prefix: str) -> str | None:
    """A prefix works when `<prefix>-a` .. `<prefix>-z` are all valid container names."""
    if chk.container_name(f"{prefix}-a"):
        return (
            "must make valid container names as <prefix>-<letter>: 1-61 lowercase letters, digits and "
            "single hyphens, not starting or ending with a hyphen"
        )
    return None


@dataclass(frozen=True)
class BackupStorage(_Part):
    """Where a filer's backups go: an account in another region, its generations' containers.

    `containers` names generations a and b (plans have always named those two); generation c onwards is
    `<container_prefix>-<letter>`, the prefix defaulting to the filer's name (Filer.generation_containers)."""

    account: str
    blob_endpoint: str
    region: str
    containers: tuple[str, str]
    storage_key_secret: str  # the key the cluster's azure-storage credential needs to mount a backup
    # Left out of JSON at their defaults and out of repr, so plans and payloads written before retention
    # existed read and write back exactly as they were.
    generations: int = field(default=DEFAULT_GENERATIONS, repr=False, metadata=json_options(omit=DEFAULT_GENERATIONS))
    container_prefix: str | None = field(default=None, repr=False, metadata=json_options(omit=None))

    @property
    def account_url(self) -> str:
        return self.blob_endpoint.rstrip("/")

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return (
            "account",
            "blob_endpoint",
            "region",
            "containers",
            "storage_key_secret",
            "generations",
            "container_prefix",
        )

    @classmethod
    def _read(cls, o: Obj, filer_name: str | None = None) -> BackupStorage | None:
        before = len(o.problems.items)
        account, endpoint, region = _read_account(o)
        secret = o.text("storage_key_secret", chk.secret_name, rule="secret-name")
        generations = o.integer("generations", MIN_GENERATIONS, MAX_GENERATIONS, default=DEFAULT_GENERATIONS)
        prefix = o.text("container_prefix", _prefix_problem, default=None, rule="container-name")
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
                o.problems.add(
                    o.at("containers"),
                    "must name exactly two distinct containers "
                    "(generations a and b; later ones are named <container_prefix>-<letter>)",
                    "generations",
                )
        elif filer_name:
            containers = list(default_containers(filer_name))
        elif o.ok:
            o.problems.add(o.at("containers"), "required", "required")
        if not _clean(o, before):
            return None
        return cls(
            account=present(account),
            blob_endpoint=present(endpoint),
            region=present(region),
            containers=(containers[0], containers[1]),
            storage_key_secret=present(secret),
            generations=present(generations),
            container_prefix=prefix,
        )


def generation_containers(backup: BackupStorage, filer_name: str) -> tuple[str, ...]:
    """The container of each generation the plan keeps, in order a, b, c, ...: a and b as listed,
    the others `<prefix>-<letter>` (the prefix: container_prefix, else the filer's name made container-safe)."""
    prefix = backup.container_prefix or container_base(filer_name)
    later = tuple(f"{prefix}-{g}" for g in GENERATION_IDS[2 : backup.generations])
    return (*backup.containers, *later)


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
    # Added after the captured payload formats: left out of JSON and repr when unset, so payloads of runs
    # started before them read (and print) the same.
    drill_schedule: str | None = field(default=None, repr=False, metadata=json_options(omit=None))
    drill: DrillSettings | None = field(default=None, repr=False, metadata=json_options(omit=None))

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.name}"

    def generation_containers(self) -> tuple[str, ...]:
        """The container of each generation the plan keeps (a, b, c, ...; backup.generations of them)."""
        return generation_containers(self.backup, self.name)

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return (
            "cluster",
            "name",
            "enabled",
            "max_offline_minutes",
            "source",
            "backup",
            "failover_cluster",
            "drill_schedule",
            "drill",
        )

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
        drill_schedule = o.text("drill_schedule", schedule_problem, default=None, rule="schedule")
        drill = read_drill(o, "drill", filer_level=True)
        if not _clean(o, before):
            return None
        return cls(
            cluster=present(cluster),
            name=present(name),
            source=present(source),
            backup=present(backup),
            enabled=present(enabled),
            max_offline_minutes=present(max_offline),
            failover_cluster=failover,
            drill_schedule=drill_schedule,
            drill=drill,
        )


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
        engine = o.text(
            "engine",
            lambda v: None if v in ENGINES else f"must be one of {', '.join(ENGINES)}",
            default="copy",
            rule="enum",
        )
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
            o.problems.add(o.at("pending_limit_seconds"), "must be longer than poll_interval_seconds", "range")
        if not _clean(o, before):
            return None
        return cls(
            engine=present(engine),
            concurrency=int(present(values["concurrency"])),
            page_size=int(present(values["page_size"])),
            poll_interval_seconds=float(present(values["poll_interval_seconds"])),
            pending_limit_seconds=float(present(values["pending_limit_seconds"])),
            parallel_pages=int(present(values["parallel_pages"])),
            pages_per_execution=int(present(values["pages_per_execution"])),
        )


@dataclass(frozen=True)
class GuardSettings(_Part):
    """Guard rails on mass deletions and mass overwrites: above the fraction (and count) a run waits for an
    approval."""

    max_delete_fraction: float = 0.10
    min_count: int = 100
    approval_timeout_hours: float = 24.0
    # Left out of JSON at its default and out of repr: plans and payloads written before it read the same.
    max_change_fraction: float = field(default=0.5, repr=False, metadata=json_options(omit=0.5))

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f for f in cls.__dataclass_fields__)

    @classmethod
    def _read(cls, o: Obj) -> GuardSettings | None:
        before = len(o.problems.items)
        fraction = o.number("max_delete_fraction", low=0.0, high=1.0, default=0.10)
        changes = o.number("max_change_fraction", low=0.0, high=1.0, default=0.5)
        count = o.integer("min_count", 0, default=100)
        timeout = o.number("approval_timeout_hours", above=0, default=24.0)
        if not _clean(o, before):
            return None
        return cls(
            max_delete_fraction=present(fraction),
            min_count=present(count),
            approval_timeout_hours=present(timeout),
            max_change_fraction=present(changes),
        )


DEFAULT_COPY = CopySettings()
DEFAULT_GUARD = GuardSettings()
