"""What orchestrators and activities say to each other: small, secret-free payloads.

Every payload here is stored in orchestration history and shown in the portal: none may hold a password,
passphrase, recovery file, account key or SAS. Inputs are references (shared/runbook/refs.py): plan entity names
and run state, never an account, endpoint, container, secret name or setting; activities resolve those from the
run's plan snapshot and the catalog. Results may describe what was resolved (secret names and versions only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.avere.records import FilerRecord, MountPoint
from shared.azure.keyvault import SecretRef
from shared.blobcopy.model import ChangeCheck, PageCursor, Summary
from shared.core.clock import parse_iso
from shared.core.codec import JsonRecord, json_options
from shared.core.errors import InputRefused
from shared.plan.load import BackupStorage, Cluster, CopySettings, Filer, GuardSettings, Plan
from shared.runbook import signals
from shared.runbook.refs import INPUT_FORMAT, Ref, RunRef, StartInput
from shared.runbook.run_ids import BACKUP as BACKUP_RUN
from shared.runbook.run_ids import CLUSTER_FAILOVER as CLUSTER_FAILOVER_RUN
from shared.runbook.run_ids import FAILBACK as FAILBACK_RUN
from shared.runbook.run_ids import FAILOVER as FAILOVER_RUN
from shared.runbook.run_ids import READD as READD_RUN
from shared.runbook.run_ids import cluster_run_id, run_id

# Orchestrator names (function names registered by the orchestrator blueprints).
BACKUP = "backup_orchestrator"
COPY = "copy_orchestrator"
READD = "readd_orchestrator"
FAILOVER = "failover_orchestrator"

# External events.
CANCEL_EVENT = "cancel"
APPROVE_DELETES_EVENT = "approve_deletes"
APPROVE_CHANGES_EVENT = "approve_changes"

# The log event name an alert rule matches when a filer is left removed and needs a person (every event name
# is defined in shared/runbook/signals.py; this name stays importable from here).
NEEDS_ATTENTION = signals.NEEDS_ATTENTION

# Where payload classes lived before shared/ became a package of packages (commit 6233bc6). The Durable codec
# wrote these paths into the history of runs started before that ({"__module__": "shared.workflow", ...}) and
# resolves them in sys.modules on replay: function_app.py aliases each to its module now (codec.alias_modules).
FORMER_MODULES = {
    "shared.workflow": "shared.runbook.payloads",
    "shared.workflow_failover": "shared.runbook.failover_payloads",
    "shared.avere_records": "shared.avere.records",
    "shared.keyvault": "shared.azure.keyvault",
    "shared.plan": "shared.plan.load",  # now a package: it answers Plan's name from shared.plan.load
    "shared.plan_model": "shared.plan.model",
}


# Run ids: `{kind}~{cluster}~{filer}`, unambiguous for every pair of plan names (shared/runbook/run_ids.py).
def backup_instance_id(cluster: str, filer: str) -> str:
    return run_id(BACKUP_RUN, cluster, filer)


def readd_instance_id(cluster: str, filer: str) -> str:
    return run_id(READD_RUN, cluster, filer)


def failover_instance_id(cluster: str, filer: str) -> str:
    return run_id(FAILOVER_RUN, cluster, filer)


def failback_instance_id(cluster: str, filer: str) -> str:
    return run_id(FAILBACK_RUN, cluster, filer)


CLUSTER_FAILOVER = "cluster_failover_orchestrator"


def cluster_failover_instance_id(cluster: str) -> str:
    """`cluster-failover~{cluster}`: the whole-cluster failover of a protected cluster (its filers' runs keep
    their own ids; earlier versions: `failover-cluster-{cluster}`)."""
    return cluster_run_id(CLUSTER_FAILOVER_RUN, cluster)


@dataclass(frozen=True)
class RunContext(JsonRecord):
    """The plan as one run sees it: built from the plan snapshot the run recorded at its start (runs.py), so a
    plan edit mid-run cannot change its course. Activities build it; orchestrators read it from `begin_run`'s
    result for pacing (poll intervals, deadlines) and never send it back."""

    filer: Filer
    cluster: Cluster
    keyvault_url: str
    storage_auth: str
    catalog_container: str
    copy: CopySettings
    guard: GuardSettings
    short_offline_window: bool
    failover_cluster: Cluster | None = None
    # The direction (shared/runbook/home.py): a re-protect run's filer reads from its home at DR and writes into
    # the primary region's account; its catalog stays where the plan puts it (`catalog_storage`), its generations
    # in the catalog's re-protect document (`side`). Left out of JSON when unset: normal runs read as before.
    catalog_storage: BackupStorage | None = field(default=None, repr=False, metadata=json_options(omit=None))
    side: str = field(default="dr", repr=False, metadata=json_options(omit="dr"))

    @property
    def catalog_account(self) -> BackupStorage:
        """The account of the filer's catalog (the plan's backup account, whichever way the run copies)."""
        return self.catalog_storage or self.filer.backup

    @classmethod
    def from_plan(cls, plan: Plan, cluster: str, filer: str) -> RunContext:
        part = plan.filer(cluster, filer)
        target = plan.dr_cluster(part.failover_cluster) if part.failover_cluster else None
        return cls(
            filer=part,
            cluster=plan.cluster(cluster),
            keyvault_url=plan.keyvault_url,
            storage_auth=plan.storage_auth,
            catalog_container=plan.catalog_container,
            copy=plan.copy,
            guard=plan.guard,
            short_offline_window=plan.short_offline_window,
            failover_cluster=target,
        )


@dataclass(frozen=True)
class RunStarted(JsonRecord):
    """Activity `begin_run(RunStart)`: the run's plan snapshot is recorded; what it says, for pacing and status
    (target_cluster: a failover's DR cluster, as the snapshot resolved it)."""

    context: RunContext
    target_cluster: Cluster | None = None


@dataclass(frozen=True)
class RunStep(Ref):
    """Input of the monitor activities (`flush_status`, `remove_status`): the run and the Avere activities to
    watch."""

    run: RunRef
    activity_ids: tuple[str, ...] = ()


# --- orchestration inputs (the doors start these) ----------------------------------------------------------
@dataclass(frozen=True)
class FilerRef(StartInput):
    """Input of the readd orchestration. `lift_fence`: an operator asked (readd route, ?override=failed-over) to
    bring back a filer fenced after a failover; the run records it in its snapshot, and `readd_plan` lifts the
    fence only when the catalog also holds that operator's authorisation for this run."""

    cluster: str
    filer: str
    format: int = INPUT_FORMAT
    lift_fence: bool = field(default=False, metadata=json_options(omit=False))


@dataclass(frozen=True)
class BackupRequest(StartInput):
    """Input of the backup orchestration (HTTP or timer). A dry run is the route's own: it starts nothing."""

    cluster: str
    filer: str
    dry_run: bool = False
    reason: str = "manual"  # manual | schedule
    format: int = INPUT_FORMAT
    # A planned failover (`POST /api/failovers/...?mode=planned`): the DR cluster that attaches this backup
    # instead of the filer being re-added at the primary.
    fail_over_to: str | None = None


# --- backup ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding(JsonRecord):
    check: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Preflight(JsonRecord):
    """Activity `preflight(RunRef)`: every check of the run's start, against the run's plan snapshot."""

    ok: bool
    findings: tuple[Finding, ...]
    encrypted: bool = False


@dataclass(frozen=True)
class BackupTarget(JsonRecord):
    """Activity `begin_backup(RunRef)`: the generation the catalog reserved for this run (`writing`)."""

    backup_id: str
    generation: str  # "a", "b", ... (the plan keeps backup.generations of them)
    container: str
    previous_manifest: str | None  # job id of the manifest this container last received (incremental)
    precopy_job: str
    final_job: str


@dataclass(frozen=True)
class KeyRotation(JsonRecord):
    """Activity `rotate_key(RunRef)`: the new key is stored in Key Vault before it is activated."""

    secret: SecretRef
    key_id: str
    value_bytes: int
    near_limit: bool


@dataclass(frozen=True)
class StartedActivities(JsonRecord):
    """A long cluster operation was started: the Avere activity ids to poll ("success" means already done).
    `fenced` (unsuspend_clients only): nothing was done because a failover fenced the filer, and how."""

    activity_ids: tuple[str, ...]
    fenced: str = field(default="", metadata=json_options(omit=""))


@dataclass(frozen=True)
class FlushStatus(JsonRecord):
    """Activity `flush_status(RunStep)`: the flush activities and the filer's dirty data."""

    done: bool
    failed: bool
    percent: int
    dirty_files: int
    oldest_age: float
    detail: str = ""


@dataclass(frozen=True)
class RemoveStatus(JsonRecord):
    """Activity `remove_status(RunStep)`: whether the junctions / the filer are gone."""

    done: bool
    failed: bool
    admin_state: str  # online | removing | removed | ...
    junctions: int  # junctions of this filer still on the cluster
    percent: int
    detail: str = ""


@dataclass(frozen=True)
class AttachRef(Ref):
    """Activity `attach_step`: one idempotent step of the run's attach. What is attached where follows from the
    run's kind: a backup run re-adds its captured record, a readd run what the catalog says this app removed, a
    failover the verified backup `backup_id` (attached to the run's DR cluster by this run)."""

    run: RunRef
    activity_ids: tuple[str, ...] = ()
    backup_id: str | None = None


@dataclass(frozen=True)
class AttachStep(JsonRecord):
    """Where an attach stands: phase creating|keys|junctions|unsuspending|health|done; ids to wait for."""

    phase: str
    done: bool
    activity_ids: tuple[str, ...] = ()
    detail: str = ""
    mounts: tuple[MountPoint, ...] = ()


@dataclass(frozen=True)
class CompleteBackup(Ref):
    """Activity `complete_backup`: the catalog entry; the generation becomes `verified` (or `failed`).

    status: verified | failed | cancelled | changes_not_approved (verified_with_extras is read as verified).
    Whether the backup is verified, and with extras, is decided from the copy engine's stored summaries, and
    whether a run the change guard stopped left its generation untouched from the engine's records of the run's
    passes: never from the input."""

    run: RunRef
    status: str
    timings: tuple[tuple[str, float], ...] = ()
    error: str = ""
    # the mass-delete decision as the run made it: decision, by (the approving caller), reason, approval_ref
    approval: tuple[tuple[str, str], ...] = field(default=(), metadata=json_options(omit=()))
    consistent_at: str = ""  # when the clients were suspended for the final pass (the backup's recovery point)

    def _checked(self) -> CompleteBackup:
        if self.consistent_at:
            try:
                parse_iso(self.consistent_at)
            except ValueError:
                raise InputRefused(f"consistent_at {self.consistent_at[:40]!r} is not an ISO 8601 time") from None
        return self


@dataclass(frozen=True)
class AttentionRef(Ref):
    """Activity `mark_attention`: the filer is left removed and needs a person; error says why."""

    run: RunRef
    error: str = ""


@dataclass(frozen=True)
class ReaddPlan(JsonRecord):
    """Activity `readd_plan(RunRef)`: what the catalog says was removed by this app, to replay."""

    record: FilerRecord | None
    key: SecretRef | None
    needs_attention: bool
    removed_by_app: bool
    fenced: str = field(default="", metadata=json_options(omit=""))  # fenced after a failover: nothing to do
    fence_lifted: bool = field(default=False, metadata=json_options(omit=False))  # lifted for this run


# --- copy passes -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CopyTotals(JsonRecord):
    """Running totals of a copy pass, carried across continue_as_new. `pending` is the current count."""

    pages: int = 0
    listed: int = 0
    to_copy: int = 0
    bytes_to_copy: int = 0
    copied: int = 0
    bytes_copied: int = 0
    skipped: int = 0
    failed: int = 0
    source_changed: int = 0
    verified_pages: int = 0
    pending: int = 0

    def add(self, **deltas: int) -> CopyTotals:
        data = CopyTotals.to_json(self)
        for key, value in deltas.items():
            data[key] += value
        return CopyTotals.from_json(data)


@dataclass(frozen=True)
class CopyInput(StartInput):
    """Input of the copy sub-orchestration `{backup instance}~{job id}` (and of each continue_as_new execution):
    the backup run it belongs to and which of its passes (job_id: `<backup id>-pre` or `-final`). The job itself
    (source, destination, mode, guard) is resolved by every copy activity from the run's snapshot and the
    generation the catalog reserved for the run."""

    run: RunRef
    job_id: str
    cursor: PageCursor | None = None
    totals: CopyTotals = CopyTotals()
    executions: int = 0
    format: int = INPUT_FORMAT
    # A pass that guards changes plans every page first (`work`: the pages with copies to make), then copies
    # them (`copying`) once the change guard cleared the pass; `attempt` 1 is the pass run again after its
    # overwrites were approved (instance `{backup instance}-{job id}-1`). Out of repr, left out at their
    # defaults: inputs written before the change guard read the same.
    work: tuple[int, ...] = field(default=(), repr=False, metadata=json_options(omit=()))
    copying: bool = field(default=False, repr=False, metadata=json_options(omit=False))
    attempt: int = field(default=0, repr=False, metadata=json_options(omit=0))

    def _checked(self) -> CopyInput:
        if self.attempt not in (0, 1):
            raise InputRefused(f"copy attempt {self.attempt!r} is not 0 or 1")
        if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in self.work):
            raise InputRefused("copy work names pages: non-negative integers")
        return self


@dataclass(frozen=True)
class CopyRef(Ref):
    """Input of `copy_describe`, `copy_finish`, `copy_progress`, `copy_cancel`, `copy_check_changes`, and of
    `copy_apply_deletes` / `copy_approve_changes` (with the approval_ref of the pass's needs_approval list / of its
    held change check)."""

    run: RunRef
    job_id: str
    approval_ref: str | None = None


@dataclass(frozen=True)
class CopyPageRef(Ref):
    """Input of the per-page copy activities: copy_plan_page (cursor), copy_start/poll/verify_page (page)."""

    run: RunRef
    job_id: str
    page: int = 0
    cursor: PageCursor | None = None


@dataclass(frozen=True)
class CopyReport(Ref):
    """Activity `copy_report`: the copy orchestration records its totals (in the catalog, next to the job)."""

    run: RunRef
    job_id: str
    totals: CopyTotals
    finished: bool = False


@dataclass(frozen=True)
class CopyPass(JsonRecord):
    """Activity `copy_describe(CopyRef)`: the pass as resolved (for status and errors) and the plan's pacing."""

    job_id: str
    mode: str
    dest: str  # "<account>/<container>"
    poll_interval_seconds: float
    parallel_pages: int
    pages_per_execution: int
    backstop_seconds: float  # how long a started page may stay pending before the pass gives up
    # the run's snapshot guards changes: plan every page, then copy once the change guard cleared the pass. Left
    # out when False: a description in the history of a run started before the change guard reads the same.
    guards_changes: bool = field(default=False, metadata=json_options(omit=False))


@dataclass(frozen=True)
class CopyProgress(JsonRecord):
    """From `copy_report` and `copy_progress`: a pass's last totals, and whether it is cancelled."""

    totals: CopyTotals
    finished: bool
    cancelled: bool = False


@dataclass(frozen=True)
class CopyOutcome(JsonRecord):
    """What the copy sub-orchestration returns."""

    summary: Summary | None
    totals: CopyTotals
    cancelled: bool = False
    # the change guard held the pass before it overwrote anything (summary None): out of repr, None left out
    changes: ChangeCheck | None = field(default=None, repr=False, metadata=json_options(omit=None))
