"""What the drill orchestrations and their activities say to each other: references and small results.

Inputs name plan entities and run state only (cluster, filer, backup id, drill id, activity ids, a page): every
activity resolves accounts, containers, clusters and secret names from the plan and the catalog's drill record,
so a crafted input can point a drill at nothing the plan and the catalog do not already say. Secret-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from shared.blobcopy.model import PageCursor
from shared.core.codec import JsonRecord, RecordError
from shared.runbook.payloads import CopyTotals

# Orchestrator names (function names registered by orchestrators/drill*.py).
DRILL = "drill_orchestrator"
DRILL_COPY = "drill_copy_orchestrator"
DRILL_CLUSTER = "drill_cluster_orchestrator"

# The one log event name an alert rule matches when a drill fails.
DRILL_FAILED = "VFXTDR_DRILL_FAILED"

REASONS = ("manual", "schedule", "cluster", "reconcile")  # reconcile: clear what a stopped drill left
_DRILL_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


def drill_instance_id(cluster: str, filer: str) -> str:
    return f"drill-{cluster}-{filer}"


def drill_cluster_instance_id(cluster: str) -> str:
    return f"drills-{cluster}"


class _Refs(JsonRecord):
    """Drill payloads refuse keys they do not know: a typo or a smuggled field is an error, never ignored."""

    UNKNOWN_KEYS: ClassVar[str] = "refuse"


@dataclass(frozen=True)
class DrillRequest(_Refs):
    """Input of the drill orchestration: which filer, and optionally which backup and DR cluster."""

    cluster: str
    filer: str
    backup_id: str | None = None
    target: str | None = None
    reason: str = "manual"  # manual | schedule | cluster | reconcile

    def _checked(self) -> DrillRequest:
        if self.reason not in REASONS:
            raise RecordError(f"DrillRequest.reason must be one of {', '.join(REASONS)}, not {self.reason!r}")
        return self


@dataclass(frozen=True)
class DrillRef(_Refs):
    """One drill of one filer: what most drill activities take (the catalog's drill record says the rest)."""

    cluster: str
    filer: str
    drill_id: str

    def _checked(self) -> DrillRef:
        if not _DRILL_ID.match(self.drill_id):
            raise RecordError(f"drill_id {self.drill_id[:40]!r} is not a drill id (20270115T080000Z-1a2b3c4d)")
        return self

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.filer}"


@dataclass(frozen=True)
class DrillBegin(_Refs):
    """Activity `drill_begin`: choose the backup, pin its generation, write the drill record."""

    ref: DrillRef
    instance_id: str
    started_at: str
    backup_id: str | None = None
    target: str | None = None
    reason: str = "manual"


@dataclass(frozen=True)
class DrillChoice(JsonRecord):
    """What `drill_begin` chose (names, no secrets) and the cadences the orchestrator waits with."""

    drill_id: str
    backup_id: str
    generation: str
    container: str
    scratch: str
    target_cluster: str
    drill_filer: str
    junction_prefix: str
    probe: bool
    rpo_s: float
    cluster_poll_seconds: float
    copy_poll_seconds: float
    parallel_pages: int
    pages_per_execution: int


@dataclass(frozen=True)
class DrillStep(_Refs):
    """Activities `drill_attach_step` / `drill_cleanup_step`: the drill and the cluster activities to wait for."""

    ref: DrillRef
    activity_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CleanupStep(JsonRecord):
    """Where a clean-up stands: phase junctions|filer|policies|scratch|state|done; activities to wait for."""

    phase: str
    done: bool
    activity_ids: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class DrillCopyInput(_Refs):
    """Input of the scratch copy sub-orchestration (and of each of its continue_as_new executions)."""

    ref: DrillRef
    cursor: PageCursor | None = None
    totals: CopyTotals = field(default_factory=CopyTotals)
    executions: int = 0
    poll_interval_seconds: float = 15.0
    parallel_pages: int = 4
    pages_per_execution: int = 50


@dataclass(frozen=True)
class DrillPage(_Refs):
    """The scratch copy's page activities: plan (cursor), start/poll/verify (page); checks (page)."""

    ref: DrillRef
    page: int = 0
    cursor: PageCursor | None = None


@dataclass(frozen=True)
class DrillCopyReport(_Refs):
    """Activity `drill_copy_report`: the scratch copy's totals; the answer says whether it was cancelled."""

    ref: DrillRef
    totals: CopyTotals
    finished: bool = False


@dataclass(frozen=True)
class ProbedFile(JsonRecord):
    path: str
    ok: bool
    bytes: int
    error: str = ""


@dataclass(frozen=True)
class Readback(JsonRecord):
    """Files read back through the DR cluster by the probe: passed, failed or skipped (no probe: never passed)."""

    status: str  # passed | failed | skipped
    files_checked: int = 0
    files_ok: int = 0
    bytes_read: int = 0
    detail: str = ""
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrillFinish(_Refs):
    """Activity `drill_finish`: the drill's outcome, RTO and phases into its catalog record."""

    ref: DrillRef
    instance_id: str
    status: str  # passed | unverified | failed | cancelled
    at: str
    phases: tuple[tuple[str, float], ...] = ()
    rto_s: float | None = None
    readback: Readback | None = None
    error: str = ""


@dataclass(frozen=True)
class DrillCleaned(_Refs):
    """Activity `drill_cleaned`: the clean-up's outcome; the generation is unpinned."""

    ref: DrillRef
    instance_id: str
    ok: bool
    at: str
    cleanup_s: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class DrillClusterRequest(_Refs):
    """Input of the whole-cluster drill: the filers to drill, and those refused at the request (with why)."""

    cluster: str
    filers: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DrillClusterPlan(JsonRecord):
    """Activity `drill_cluster_filers`: the request's filers, each checked against the plan; how many at a time."""

    filers: tuple[str, ...]
    parallel: int


@dataclass(frozen=True)
class StaleDrill(JsonRecord):
    """Activity `drill_stale`: the drill whose pin outlived it (None: no pin), and how often to poll its cluster."""

    drill_id: str | None
    poll_seconds: float
