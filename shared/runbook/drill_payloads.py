"""What the drill orchestrations and their activities say to each other: references and small results.

Inputs are references (shared/runbook/refs.py): the drill run (cluster, filer, instance id, run id), the drill id,
activity ids, a page. Every activity resolves accounts, containers, clusters and secret names from the run's plan
snapshot (recorded by `begin_run`) and the catalog's drill record, so a crafted input can point a drill at nothing
the snapshot and the catalog do not already say. Secret-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.core.codec import JsonRecord
from shared.core.errors import InputRefused
from shared.runbook import signals
from shared.runbook.refs import INPUT_FORMAT, Ref, RunRef, StartInput, checked_id, checked_name
from shared.runbook.run_ids import CLUSTER_DRILL, cluster_run_id, run_id
from shared.runbook.run_ids import DRILL as DRILL_RUN

# Orchestrator names (function names registered by orchestrators/drill*.py).
DRILL = "drill_orchestrator"
DRILL_CLUSTER = "drill_cluster_orchestrator"

# The one log event name an alert rule matches when a drill fails (defined with every signal).
DRILL_FAILED = signals.DRILL_FAILED

REASONS = ("manual", "schedule", "cluster", "reconcile")  # reconcile: clear what a stopped drill left
_DRILL_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")


def drill_instance_id(cluster: str, filer: str) -> str:
    """`drill~{cluster}~{filer}` (shared/runbook/run_ids.py; earlier versions: `drill-{cluster}-{filer}`)."""
    return run_id(DRILL_RUN, cluster, filer)


def drill_cluster_instance_id(cluster: str) -> str:
    """`cluster-drill~{cluster}` (earlier versions: `drills-{cluster}`)."""
    return cluster_run_id(CLUSTER_DRILL, cluster)


def scratch_job_id(drill_id: str) -> str:
    """The copy pass of a drill's scratch copy (run by the copy orchestration as the drill's sub-orchestration)."""
    return f"{drill_id}-scratch"


@dataclass(frozen=True)
class DrillRequest(StartInput):
    """Input of the drill orchestration: which filer, and optionally which backup and DR cluster."""

    cluster: str
    filer: str
    backup_id: str | None = None
    target: str | None = None
    reason: str = "manual"  # manual | schedule | cluster | reconcile
    format: int = INPUT_FORMAT

    def _checked(self) -> DrillRequest:
        checked_name("cluster", self.cluster)
        checked_name("filer", self.filer)
        if self.backup_id is not None:
            checked_id("backup id", self.backup_id)
        if self.target is not None:
            checked_name("target cluster", self.target)
        if self.reason not in REASONS:
            raise InputRefused(f"drill reason {self.reason[:40]!r} is not one of {', '.join(REASONS)}")
        return self


@dataclass(frozen=True)
class DrillRef(Ref):
    """One drill of one filer, as its run names it: what most drill activities take (the run's snapshot and the
    catalog's drill record say the rest). drill_id is the run's own id, except for the clean-up a reconcile run
    does after a drill that stopped without one."""

    run: RunRef
    drill_id: str

    def _checked(self) -> DrillRef:
        if not _DRILL_ID.fullmatch(self.drill_id):
            raise InputRefused(
                f"drill id {self.drill_id[:40]!r} is not a drill id (20270115T080000Z-1a2b3c4d)", filer=self.run.key
            )
        return self

    @property
    def cluster(self) -> str:
        return self.run.cluster

    @property
    def filer(self) -> str:
        return self.run.filer

    @property
    def key(self) -> str:
        return self.run.key


@dataclass(frozen=True)
class DrillBegin(Ref):
    """Activity `drill_begin`: choose the backup (backup_id, or the newest verified), pin its generation, write the
    drill record. The DR cluster, reason and start are the run snapshot's."""

    ref: DrillRef
    backup_id: str | None = None

    def _checked(self) -> DrillBegin:
        if self.backup_id is not None:
            checked_id("backup id", self.backup_id)
        return self


@dataclass(frozen=True)
class DrillChoice(JsonRecord):
    """What `drill_begin` chose (names, no secrets) and the cadence the orchestrator waits with."""

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


@dataclass(frozen=True)
class DrillStep(Ref):
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
class DrillPage(Ref):
    """Activity `drill_check_page`: one page of the backup's manifest, checked against the scratch copy."""

    ref: DrillRef
    page: int = 0


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
class DrillFinish(Ref):
    """Activity `drill_finish`: the drill's outcome, RTO and phases into its catalog record (whether it passed is
    the record's read-back, which `drill_readback` wrote there, never this input)."""

    ref: DrillRef
    status: str  # passed | unverified | failed | cancelled
    phases: tuple[tuple[str, float], ...] = ()
    rto_s: float | None = None
    error: str = ""


@dataclass(frozen=True)
class DrillCleaned(Ref):
    """Activity `drill_cleaned`: the clean-up's outcome; the generation is unpinned."""

    ref: DrillRef
    ok: bool
    cleanup_s: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class DrillClusterRequest(StartInput):
    """Input of the whole-cluster drill: the filers to drill, and those refused at the request (with why)."""

    cluster: str
    filers: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    format: int = INPUT_FORMAT

    def _checked(self) -> DrillClusterRequest:
        checked_name("cluster", self.cluster)
        for name in self.filers:
            checked_name("filer", name)
        return self


@dataclass(frozen=True)
class DrillFilers(Ref):
    """Activity `drill_cluster_filers`: the whole-cluster drill's filers, to be checked against the plan."""

    cluster: str
    filers: tuple[str, ...]

    def _checked(self) -> DrillFilers:
        checked_name("cluster", self.cluster)
        for name in self.filers:
            checked_name("filer", name)
        return self


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
