"""Secret-free records of Avere cluster state (captured filer, activities, key status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.core.codec import JsonRecord, RecordError


@dataclass(frozen=True)
class CachePolicyRecord(JsonRecord):
    """A cache policy definition, enough to re-create a custom one on another cluster."""

    name: str
    cache_mode: str  # 'read-write' | 'read' | ...
    writeback_delay: int
    check_attr_period: int
    check_dir_attr_period: int
    local_directories: bool
    description: str = ""
    builtin: bool = False


@dataclass(frozen=True)
class ExportRule(JsonRecord):
    """One nfs.addRule rule of an export policy."""

    scope: str
    filter: str
    permission: str
    squash: str
    anonuid: str
    suid: bool
    subdir: str
    auth_sys: bool
    auth_krb: bool


@dataclass(frozen=True)
class ExportPolicyRecord(JsonRecord):
    """An export policy on a vserver, with its rules in order."""

    vserver: str
    name: str
    rules: tuple[ExportRule, ...]


@dataclass(frozen=True)
class JunctionRecord(JsonRecord):
    """A namespace junction with every field vserver.addJunction needs (policy in its short form)."""

    vserver: str
    path: str
    export: str
    subdir: str
    inherit_policy: bool
    policy: str
    access: str
    sharename: str
    sharesubdir: str
    permissions: str


@dataclass(frozen=True)
class FilerRecord(JsonRecord):
    """A captured cloud core filer: settings, credential name/type, cache policy, junctions, export policies.

    It holds no secrets: the storage key, passphrase and recovery file live in Key Vault.
    """

    FORMAT: ClassVar[str] = "avere-filer-record/1"

    name: str
    cloud_type: str
    bucket: str
    server_name: str
    credential_name: str
    credential_type: str
    crypto_mode: str
    compress_mode: str
    ssl_verify_mode: str
    https: str
    port: str
    proxy: str
    nearline: str
    network: str
    cache_policy: CachePolicyRecord
    junctions: tuple[JunctionRecord, ...]
    export_policies: tuple[ExportPolicyRecord, ...]
    active_key_id: str = ""
    format: str = field(default=FORMAT)

    @property
    def encrypted(self) -> bool:
        return self.crypto_mode.upper() != "DISABLED"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilerRecord:
        if isinstance(data, dict) and data.get("format", cls.FORMAT) != cls.FORMAT:
            raise RecordError(f"FilerRecord format {data.get('format')!r} is not {cls.FORMAT!r}")
        return super().from_json(data)


@dataclass(frozen=True)
class ActivityStatus(JsonRecord):
    """cluster.getActivity: state 'inprogress' | 'success' | 'failure', percent and the status text."""

    id: str
    state: str
    percent: int
    status: str
    process: str = ""

    @property
    def done(self) -> bool:
        return self.state in ("success", "failure")

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


@dataclass(frozen=True)
class MasterKeyStatus(JsonRecord):
    """corefiler.masterKeyStatus, with the cluster's 'NO ...' placeholders turned into empty values."""

    active_key_id: str
    ready_to_activate: str
    recovery_file_signature: str
    activation_time: float | None
    nodes_without_latest_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyInfo(JsonRecord):
    """The public half of a generated master key: id and signature (safe in orchestration history)."""

    key_id: str
    signature: str


@dataclass(frozen=True)
class MasterKey:
    """corefiler.generateMasterKey's answer. Holds the recovery file: deliberately not JSON-serialisable."""

    key_id: str
    signature: str
    recovery_file: str = field(repr=False)

    @property
    def info(self) -> KeyInfo:
        return KeyInfo(self.key_id, self.signature)


MAX_PASSPHRASE = 49  # the Ops guide: the passphrase must be fewer than 50 characters


@dataclass(frozen=True)
class Recovery:
    """Passphrase + recovery file for uploadKeyRecoveryFile, passed in memory only (never serialised)."""

    passphrase: str = field(repr=False)
    recovery_file: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.passphrase or len(self.passphrase) > MAX_PASSPHRASE:
            raise ValueError(f"passphrase must have 1 to {MAX_PASSPHRASE} characters")
        if not self.recovery_file or not self.recovery_file.strip():
            raise ValueError("recovery file is empty")


@dataclass(frozen=True)
class DirtyInfo(JsonRecord):
    """corefiler.modifiedFilesInfo: files changed in the cache and not yet written back."""

    num_files: int
    oldest_age: float


@dataclass(frozen=True)
class Health(JsonRecord):
    """Whether a filer is ready for clients, and if not, why (readable reasons)."""

    healthy: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class MountPoint(JsonRecord):
    """Where clients mount a filer's junctions: a vserver's client-facing addresses and the paths."""

    vserver: str
    addresses: tuple[str, ...]
    paths: tuple[str, ...]
