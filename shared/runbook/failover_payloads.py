"""Failover payloads between the failover orchestrator and its activities (small and secret-free)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.avere.records import FilerRecord, MountPoint
from shared.azure.keyvault import SecretRef
from shared.core.codec import JsonRecord
from shared.plan.load import Cluster
from shared.runbook.payloads import RunContext


@dataclass(frozen=True)
class FailoverRequest(JsonRecord):
    cluster: str
    filer: str
    target_cluster: str | None = None
    backup_id: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class FailoverChoice(JsonRecord):
    """Activity `choose_backup`: the verified backup to attach and everything attaching it needs."""

    context: RunContext
    target_cluster: Cluster
    backup_id: str
    generation: str
    container: str
    manifest: str
    record: FilerRecord
    key: SecretRef | None
    extras: bool = False  # verified with extras: blobs kept because their deletion was not approved


@dataclass(frozen=True)
class FailoverResult(JsonRecord):
    cluster: str
    filer: str
    target_cluster: str
    backup_id: str
    container: str
    mounts: tuple[MountPoint, ...]
    junctions: tuple[str, ...]


@dataclass(frozen=True)
class MarkAttached(JsonRecord):
    """Activity `mark_attached`: the catalog marks the container attached before anything attaches it."""

    choice: FailoverChoice
    instance_id: str
    at: str


@dataclass(frozen=True)
class VerifyBackupPage(JsonRecord):
    """Activity `verify_backup_page`: one manifest page checked against the backup container (no source)."""

    choice: FailoverChoice
    page: int


@dataclass(frozen=True)
class BackupPageCheck(JsonRecord):
    page: int
    checked: int
    mismatches: int
    missing: int
    last: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordFailover(JsonRecord):
    """Activity `record_failover`: the catalog's record of where the filer now serves from."""

    choice: FailoverChoice
    result: FailoverResult
    instance_id: str
    at: str


@dataclass(frozen=True)
class FenceOutcome(JsonRecord):
    """Activity `fence_primary(FailoverRequest)`: how the primary filer is fenced now (shared/catalog/fence.py:
    pending, suspended, removed; "" when it is not fenced) and what the cluster showed."""

    how: str
    detail: str
