"""Failover payloads between the failover orchestrator and its activities (small, secret-free, references in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from shared.avere.records import MountPoint
from shared.core.clock import parse_iso
from shared.core.codec import JsonRecord
from shared.core.errors import InputRefused
from shared.runbook.refs import INPUT_FORMAT, Ref, RunRef, StartInput, checked_name

FAILOVER_MODES = ("unplanned", "planned")
VERIFY_MODES = ("sample", "full", "none")
# `verify` was a flag before it was a mode: true checked every blob, false none.
VERIFY_FLAGS = {True: "full", False: "none"}


@dataclass(frozen=True)
class FailoverRequest(StartInput):
    """Input of the failover orchestration: the filer, a DR cluster of the plan (None: the filer's
    failover_cluster), a backup id (None: the newest verified), and how to check the backup before attaching
    it (the route's `verify`: sample | full | none; a check, never a way to attach something unverified)."""

    cluster: str
    filer: str
    target_cluster: str | None = None
    backup_id: str | None = None
    verify: str = "sample"
    format: int = INPUT_FORMAT

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if isinstance(data, dict) and isinstance(data.get("verify"), bool):  # a run started before modes
            data = {**data, "verify": VERIFY_FLAGS[data["verify"]]}
        return super().from_json(data)

    def _checked(self) -> FailoverRequest:
        if self.verify not in VERIFY_MODES:
            raise InputRefused(f"verify {self.verify[:40]!r} is not one of {', '.join(VERIFY_MODES)}")
        return self


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
    digest: bool = False  # the catalog recorded a digest of its manifest (a sample check can rely on it)


@dataclass(frozen=True)
class BackupRef(Ref):
    """Activity `mark_attached` and `record_failover`: the run and the backup it fails over to."""

    run: RunRef
    backup_id: str


@dataclass(frozen=True)
class SampleCheck(JsonRecord):
    """Activity `verify_backup_sample`: the manifest against its recorded digest, then a sample of blobs."""

    checked: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class FullVerify(StartInput):
    """Input of the full check (a sub-orchestration of the failover run): the run, its backup, where it got to
    (it continues as new every few pages, so its history stays bounded however large the manifest)."""

    run: RunRef
    backup_id: str
    page: int = 0
    checked: int = 0
    executions: int = 0
    format: int = INPUT_FORMAT


@dataclass(frozen=True)
class FailoverRecordRef(Ref):
    """Activity `record_failover`: the run, the backup it attached, and the run's times (request, serving,
    each phase's seconds) for its RTO; the RPO comes from the backup's entry in the catalog."""

    run: RunRef
    backup_id: str
    requested_at: str = ""
    serving_at: str = ""
    phases: tuple[tuple[str, float], ...] = ()

    def _checked(self) -> FailoverRecordRef:
        for moment in (self.requested_at, self.serving_at):
            if moment:
                try:
                    parse_iso(moment)
                except ValueError:
                    raise InputRefused(f"{moment[:40]!r} is not an ISO 8601 time") from None
        return self


@dataclass(frozen=True)
class FailoverTimes(JsonRecord):
    """What `record_failover` recorded: RPO (seconds of writes the backup does not hold; 0 for a planned
    failover) and RTO (request to serving), with the recovery point and each phase's seconds."""

    rpo_s: float | None
    rto_s: float | None
    consistent_at: str | None
    phases: tuple[tuple[str, float], ...] = ()


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
    mode: str = "unplanned"
    verify: str = "sample"
    blobs_checked: int = 0
    rpo_s: float | None = None
    rto_s: float | None = None
    consistent_at: str | None = None
    phases: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ClusterFailoverRequest(StartInput):
    """Input of the whole-cluster failover (a regional outage): the protected cluster, a DR cluster of the plan
    (None: each filer's failover_cluster) and the check each filer's failover makes (sample | full | none)."""

    cluster: str
    target_cluster: str | None = None
    verify: str = "sample"
    format: int = INPUT_FORMAT

    def _checked(self) -> ClusterFailoverRequest:
        checked_name("cluster", self.cluster)
        if self.target_cluster is not None:
            checked_name("target cluster", self.target_cluster)
        if self.verify not in VERIFY_MODES:
            raise InputRefused(f"verify {self.verify[:40]!r} is not one of {', '.join(VERIFY_MODES)}")
        return self


@dataclass(frozen=True)
class ClusterName(Ref):
    """Activity `cluster_filers`: a protected cluster of the plan."""

    cluster: str

    def _checked(self) -> ClusterName:
        checked_name("cluster", self.cluster)
        return self


@dataclass(frozen=True)
class FilerNames(JsonRecord):
    """Activity `cluster_filers`: the plan's filers of the cluster."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class FenceOutcome(JsonRecord):
    """Activity `fence_primary(RunRef)`: how the primary filer is fenced now (shared/catalog/fence.py: pending,
    suspended, removed; "" when it is not fenced) and what the cluster showed."""

    how: str
    detail: str


FAILBACK = "failback_orchestrator"


@dataclass(frozen=True)
class FailbackRequest(StartInput):
    """Input of the failback orchestration: the filer (as the plan names it on its primary cluster). Everything
    else (where it serves now, the re-protect generation, the primary cluster) comes from the catalog and the
    run's plan snapshot."""

    cluster: str
    filer: str
    format: int = INPUT_FORMAT

    def _checked(self) -> FailbackRequest:
        checked_name("cluster", self.cluster)
        checked_name("filer", self.filer)
        return self


@dataclass(frozen=True)
class FailbackStep(Ref):
    """Activity `failback_retire_step`: the failback run and the primary cluster's activities it waits for."""

    run: RunRef
    activity_ids: tuple[str, ...] = ()
