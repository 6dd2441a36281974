"""Failover payloads between the failover orchestrator and its activities (small, secret-free, references in)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.avere.records import MountPoint
from shared.core.codec import JsonRecord
from shared.runbook.refs import INPUT_FORMAT, Ref, RunRef, StartInput


@dataclass(frozen=True)
class FailoverRequest(StartInput):
    """Input of the failover orchestration: the filer, a DR cluster of the plan (None: the filer's
    failover_cluster), a backup id (None: the newest verified), and whether to check the backup against its
    manifest first (the route's `verify`; a check, never a way to attach something unverified)."""

    cluster: str
    filer: str
    target_cluster: str | None = None
    backup_id: str | None = None
    verify: bool = True
    format: int = INPUT_FORMAT


@dataclass(frozen=True)
class ChooseBackup(Ref):
    """Activity `choose_backup`: the requested backup (or None: the newest verified one) of the run's filer."""

    run: RunRef
    backup_id: str | None = None


@dataclass(frozen=True)
class FailoverChoice(JsonRecord):
    """Activity `choose_backup`: the verified backup to attach, as the catalog holds it (for status and result)."""

    backup_id: str
    generation: str
    container: str
    target_cluster: str
    junctions: tuple[str, ...]
    extras: bool = False  # verified with extras: blobs kept because their deletion was not approved


@dataclass(frozen=True)
class BackupRef(Ref):
    """Activity `mark_attached` and `record_failover`: the run and the backup it fails over to."""

    run: RunRef
    backup_id: str


@dataclass(frozen=True)
class BackupPageRef(Ref):
    """Activity `verify_backup_page`: one manifest page of the chosen backup, checked against its container."""

    run: RunRef
    backup_id: str
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
class FailoverResult(JsonRecord):
    cluster: str
    filer: str
    target_cluster: str
    backup_id: str
    container: str
    mounts: tuple[MountPoint, ...]
    junctions: tuple[str, ...]


@dataclass(frozen=True)
class FenceOutcome(JsonRecord):
    """Activity `fence_primary(RunRef)`: how the primary filer is fenced now (shared/catalog/fence.py: pending,
    suspended, removed; "" when it is not fenced) and what the cluster showed."""

    how: str
    detail: str
