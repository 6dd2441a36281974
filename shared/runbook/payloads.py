"""What orchestrators and activities say to each other: activity names and small, secret-free payloads.

Every payload here is stored in orchestration history and shown in the portal: none may hold a password,
passphrase, recovery file, account key or SAS. Activities receive names of Key Vault secrets (in the plan
or as SecretRef) and read the values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.avere.records import FilerRecord, MountPoint
from shared.azure.keyvault import SecretRef
from shared.blobcopy.model import CopyJob, PageCursor, Summary
from shared.core.codec import JsonRecord, json_options
from shared.plan.load import Cluster, CopySettings, Filer, GuardSettings, Plan
from shared.runbook.run_ids import BACKUP as BACKUP_RUN
from shared.runbook.run_ids import FAILOVER as FAILOVER_RUN
from shared.runbook.run_ids import READD as READD_RUN
from shared.runbook.run_ids import run_id

# Orchestrator names (function names registered by the orchestrator blueprints).
BACKUP = "backup_orchestrator"
COPY = "copy_orchestrator"
READD = "readd_orchestrator"
FAILOVER = "failover_orchestrator"

# External events.
CANCEL_EVENT = "cancel"
APPROVE_DELETES_EVENT = "approve_deletes"

# The one log event name an alert rule matches when a filer is left removed and needs a person.
NEEDS_ATTENTION = "VFXTDR_NEEDS_ATTENTION"

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


@dataclass(frozen=True)
class RunContext(JsonRecord):
    """The plan as one run sees it, frozen at preflight so a plan edit mid-run cannot change its course."""

    filer: Filer
    cluster: Cluster
    keyvault_url: str
    storage_auth: str
    catalog_container: str
    copy: CopySettings
    guard: GuardSettings
    short_offline_window: bool
    failover_cluster: Cluster | None = None

    @classmethod
    def from_plan(cls, plan: Plan, cluster: str, filer: str) -> RunContext:
        part = plan.filer(cluster, filer)
        target = plan.dr_cluster(part.failover_cluster) if part.failover_cluster else None
        return cls(filer=part, cluster=plan.cluster(cluster), keyvault_url=plan.keyvault_url,
                   storage_auth=plan.storage_auth, catalog_container=plan.catalog_container, copy=plan.copy,
                   guard=plan.guard, short_offline_window=plan.short_offline_window, failover_cluster=target)


@dataclass(frozen=True)
class FilerRef(JsonRecord):
    """Input of the re-add run and its `readd_plan`. `lift_fence`: an operator asked (readd route,
    ?override=failed-over) to bring back a filer fenced after a failover; `readd_plan` lifts the fence only
    when the catalog also holds that operator's authorisation for this run."""

    cluster: str
    filer: str
    lift_fence: bool = field(default=False, metadata=json_options(omit=False))


# --- backup ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupRequest(JsonRecord):
    """Input of the backup orchestration (HTTP or timer)."""

    cluster: str
    filer: str
    dry_run: bool = False
    reason: str = "manual"  # manual | schedule


@dataclass(frozen=True)
class Finding(JsonRecord):
    check: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Preflight(JsonRecord):
    """Activity `preflight(BackupRequest)`: every check of the run's start, and the frozen context."""

    ok: bool
    findings: tuple[Finding, ...]
    context: RunContext | None = None
    encrypted: bool = False


@dataclass(frozen=True)
class BeginBackup(JsonRecord):
    """Activity `begin_backup`: pick the generation, mark it `writing` in the catalog, make sure it exists."""

    context: RunContext
    backup_id: str
    instance_id: str
    started_at: str


@dataclass(frozen=True)
class BackupTarget(JsonRecord):
    backup_id: str
    generation: str  # "a" | "b"
    container: str
    previous_manifest: str | None  # job id of the manifest this container last received (incremental)
    precopy_job: str
    final_job: str


@dataclass(frozen=True)
class KeyRotation(JsonRecord):
    """Activity `rotate_key(FilerStep)`: the new key is stored in Key Vault before it is activated."""

    secret: SecretRef
    key_id: str
    value_bytes: int
    near_limit: bool


@dataclass(frozen=True)
class FilerStep(JsonRecord):
    """Input of the cluster-side activities of a run: capture, suspend/flush, unsuspend, remove, status."""

    context: RunContext
    backup_id: str = ""
    activity_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StartedActivities(JsonRecord):
    """A long cluster operation was started: the Avere activity ids to poll ("success" means already done).
    `fenced` (unsuspend_clients only): nothing was done because a failover fenced the filer, and how."""

    activity_ids: tuple[str, ...]
    fenced: str = field(default="", metadata=json_options(omit=""))


@dataclass(frozen=True)
class FlushStatus(JsonRecord):
    """Activity `flush_status(FilerStep)`: the flush activities and the filer's dirty data."""

    done: bool
    failed: bool
    percent: int
    dirty_files: int
    oldest_age: float
    detail: str = ""


@dataclass(frozen=True)
class RemoveStatus(JsonRecord):
    """Activity `remove_status(FilerStep)`: whether the junctions / the filer are gone."""

    done: bool
    failed: bool
    admin_state: str  # online | removing | removed | ...
    junctions: int  # junctions of this filer still on the cluster
    percent: int
    detail: str = ""


@dataclass(frozen=True)
class MarkRemoved(JsonRecord):
    """Activity `mark_removed`: before the remove, the catalog records what this app is about to remove."""

    context: RunContext
    backup_id: str
    instance_id: str
    record: FilerRecord
    key: SecretRef | None
    at: str


@dataclass(frozen=True)
class AttachRequest(JsonRecord):
    """Activity `attach_step`: one idempotent step towards `record` attached and serving on `cluster`.

    Re-add: the original cluster, bucket and credential. Failover/drill: a DR cluster, the backup container
    and a credential for the backup account whose key is read from `storage_key_secret`. The recovery file
    and passphrase come from `key` (a Key Vault secret version), read inside the activity.
    """

    cluster: Cluster
    keyvault_url: str
    record: FilerRecord
    bucket: str
    server_name: str
    credential: str
    key: SecretRef | None = None
    storage_account: str = ""
    storage_key_secret: str | None = None
    activity_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachStep(JsonRecord):
    """Where an attach stands: phase creating|keys|junctions|unsuspending|health|done; ids to wait for."""

    phase: str
    done: bool
    activity_ids: tuple[str, ...] = ()
    detail: str = ""
    mounts: tuple[MountPoint, ...] = ()


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
class CopyInput(JsonRecord):
    """Input of the copy sub-orchestration (and of each of its continue_as_new executions)."""

    job: CopyJob
    filer: str  # "cluster/filer", for errors and status
    cursor: PageCursor | None = None
    totals: CopyTotals = CopyTotals()
    executions: int = 0
    poll_interval_seconds: float = 15.0
    parallel_pages: int = 4
    pages_per_execution: int = 50


@dataclass(frozen=True)
class CopyPageRequest(JsonRecord):
    """Input of the per-page copy activities: copy_plan_page (cursor), copy_start/poll/verify_page (page)."""

    job: CopyJob
    page: int = 0
    cursor: PageCursor | None = None


@dataclass(frozen=True)
class CopyReport(JsonRecord):
    """Activity `copy_report`: the copy orchestration records its totals (in the catalog, next to the job)."""

    job: CopyJob
    totals: CopyTotals
    finished: bool = False


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


@dataclass(frozen=True)
class CopyFinish(JsonRecord):
    """Input of `copy_finish`, `copy_apply_deletes` (with approval_ref), `copy_progress`, `copy_cancel`."""

    job: CopyJob
    approval_ref: str | None = None


@dataclass(frozen=True)
class CompleteBackup(JsonRecord):
    """Activity `complete_backup`: the catalog entry; the generation becomes `verified` (or `failed`)."""

    context: RunContext
    target: BackupTarget
    instance_id: str
    status: str  # verified | verified_with_extras | failed | cancelled
    started_at: str
    finished_at: str
    key: KeyRotation | None = None
    record: FilerRecord | None = None
    summary: Summary | None = None
    precopy: Summary | None = None
    timings: tuple[tuple[str, float], ...] = ()
    error: str = ""
    # the mass-delete decision: decision, by (the approving caller), reason, approval_ref
    approval: tuple[tuple[str, str], ...] = field(default=(), metadata=json_options(omit=()))


@dataclass(frozen=True)
class Attention(JsonRecord):
    """Activity `mark_attention` / `clear_removed`: the filer's removed / needs-attention marks."""

    context: RunContext
    instance_id: str
    error: str = ""
    record: FilerRecord | None = None


@dataclass(frozen=True)
class ReaddPlan(JsonRecord):
    """Activity `readd_plan(FilerRef)`: what the catalog says was removed by this app, to replay."""

    context: RunContext
    record: FilerRecord | None
    key: SecretRef | None
    needs_attention: bool
    removed_by_app: bool
    fenced: str = field(default="", metadata=json_options(omit=""))  # fenced after a failover: nothing to do
    fence_lifted: bool = field(default=False, metadata=json_options(omit=False))  # lifted for this run
