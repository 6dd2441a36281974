"""The run's plan snapshot: recorded from the app's own plan setting when a backup, readd, failover or drill run
starts, found by the run's instance id in the filer's catalog, and read back by every later activity of the run.

An input never carries plan parts (shared/runbook/refs.py): an activity names its run (cluster, filer, instance
id, run id), finds that run's snapshot, and resolves accounts, endpoints, containers, secret names and limits
from it. A plan edited mid-run therefore cannot switch a run's accounts part-way. The current plan only says
where the filer's catalog is: a run whose snapshot is not found there (an instance this version never started,
an input naming another filer's or a later run, a plan that moved the filer's catalog meanwhile) stops with an
error naming the problem, and nothing falls back to what an input says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from azure.core.exceptions import AzureError

from shared.azure.keyvault import KeyVaultError
from shared.azure.storage import StorageConfigError
from shared.catalog.store import WRITING, Catalog, FilerState, run_path
from shared.core.codec import JsonRecord, RecordError, json_options, schema_of
from shared.core.errors import CatalogConflict, DrError, InputRefused
from shared.plan.load import Filer, Plan, UnknownClusterError, UnknownFilerError
from shared.runbook import services
from shared.runbook.drill_payloads import drill_instance_id
from shared.runbook.home import DR, Home, directed, home_of
from shared.runbook.payloads import (
    BackupTarget,
    RunContext,
    RunStarted,
    backup_instance_id,
    failback_instance_id,
    failover_instance_id,
    readd_instance_id,
)
from shared.runbook.refs import BACKUP_KINDS, LIFT_FENCE, RunRef, RunStart

log = logging.getLogger("vfxtdr.runs")

SNAPSHOT_SCHEMA = 1
MAX_ATTEMPTS = 10
# The instance id of each workflow for a filer: one run per filer and workflow at a time (the host refuses to
# start an instance id that is running), so a run is only ever started under its workflow's id.
INSTANCE_IDS = {
    "backup": backup_instance_id,
    "readd": readd_instance_id,
    "failover": failover_instance_id,
    "drill": drill_instance_id,
    "failback": failback_instance_id,
}


@dataclass(frozen=True)
class RunSnapshot(JsonRecord):
    """`runs/<instance id>.json`: which run of the instance this is, and the plan it started with."""

    SCHEMA: ClassVar[int | None] = SNAPSHOT_SCHEMA

    instance_id: str
    run_id: str
    kind: str
    cluster: str
    filer: str
    started_at: str
    plan: Plan
    reason: str = "manual"
    target_cluster: str | None = None  # a failover's or drill's DR cluster, resolved when it started
    # A backup's or failback's home, from the catalog when it started: which way it copies (shared/runbook/home.py);
    # a readd's when it is at DR (it re-adds the filer there).
    # Left out when absent: snapshots of earlier versions and of other runs read as before.
    home: Home | None = field(default=None, repr=False, metadata=json_options(omit=None))

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.filer}"

    def context(self) -> RunContext:
        return directed(RunContext.from_plan(self.plan, self.cluster, self.filer), self.plan, self.home)


def _filer(plan: Plan, cluster: str, name: str) -> Filer:
    try:
        return plan.filer(cluster, name)
    except (UnknownClusterError, UnknownFilerError) as exc:
        raise InputRefused(str(exc).strip("'\""), filer=f"{cluster}/{name}") from None


def catalog_of(plan: Plan, filer: Filer) -> Catalog:
    """The catalog of a filer as a plan places it: its backup account's catalog container."""
    return Catalog(services.backup_account(filer, plan.storage_auth, plan.keyvault_url), plan.catalog_container)


def _target(plan: Plan, filer: Filer, requested: str | None) -> str:
    name = requested or filer.failover_cluster
    if not name:
        raise CatalogConflict(
            "no target cluster: the request names none and the plan gives the filer no failover_cluster",
            filer=filer.key,
            state="nothing changed",
            action="pass target_cluster or set failover_cluster in the plan",
        )
    try:
        plan.dr_cluster(name)
    except UnknownClusterError as exc:
        raise InputRefused(str(exc).strip("'\""), filer=filer.key) from None
    return name


def _decoded(data: Any, path: str) -> RunSnapshot | None:
    """The snapshot stored at path; None when it is not one this version can read (a damaged document)."""
    schema_of(data if isinstance(data, dict) else {}, SNAPSHOT_SCHEMA, path)  # a newer schema is refused
    try:
        return RunSnapshot.from_json(data)
    except (RecordError, ValueError, TypeError):
        return None


def begin_run(start: RunStart) -> RunStarted:
    """Record the run's plan snapshot (idempotent per run id: a redelivered call returns what was recorded)."""
    ref = start.run
    plan = services.load_plan()
    filer = _filer(plan, ref.cluster, ref.filer)
    expected = INSTANCE_IDS[start.kind](ref.cluster, ref.filer)
    if ref.instance_id != expected:
        raise InputRefused(
            f"instance {ref.instance_id!r} is not the {start.kind} run of {filer.key}: that is "
            f"{expected!r} (one run per filer and workflow)",
            filer=filer.key,
        )
    # A failover's or drill's DR cluster (a reconcile only cleans up: its drill record names the cluster); a
    # planned failover's backup run names it too: checked before anything is removed.
    resolves = (
        start.kind == "failover"
        or bool(start.target_cluster)
        or (start.kind == "drill" and start.reason != "reconcile")
    )
    target = _target(plan, filer, start.target_cluster) if resolves else None
    snapshot = RunSnapshot(
        instance_id=ref.instance_id,
        run_id=ref.run_id,
        kind=start.kind,
        cluster=ref.cluster,
        filer=ref.filer,
        started_at=services.now_iso(),
        plan=plan,
        reason=start.reason,
        target_cluster=target,
    )
    try:
        snapshot = _record(plan, filer, snapshot)
    except (AzureError, StorageConfigError, KeyVaultError) as exc:
        raise DrError(
            f"recording the run's plan snapshot in the catalog of {filer.key} (account "
            f"{filer.backup.account} at {filer.backup.blob_endpoint}) failed: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else ''}",
            filer=filer.key,
            state="nothing changed: the run stopped before its first step",
            action="check the backup account and its key secret, then start the run again",
        ) from None
    target_cluster = snapshot.plan.dr_cluster(snapshot.target_cluster) if snapshot.target_cluster else None
    return RunStarted(context=snapshot.context(), target_cluster=target_cluster)


def _record(plan: Plan, filer: Filer, snapshot: RunSnapshot) -> RunSnapshot:
    """Store the snapshot, unless this run's is already stored (then that one); replace an earlier run's."""
    path = run_path(snapshot.cluster, snapshot.filer, snapshot.instance_id)
    with catalog_of(plan, filer) as catalog:
        catalog.ensure_container()
        if snapshot.kind in BACKUP_KINDS:
            home = home_of(catalog.load(filer), filer)
            if snapshot.kind == "failback" and home.side != DR:
                raise CatalogConflict(
                    f"{filer.key} lives on cluster {home.cluster} ({home.side} side): only a filer that failed "
                    "over is failed back",
                    filer=filer.key,
                    state="nothing changed",
                    action="none needed: the filer is home",
                )
            snapshot = replace(snapshot, home=home)
        elif snapshot.kind == "readd" and snapshot.reason != LIFT_FENCE:
            # A filer serving at DR is re-added there (its re-protect runs' marks); lifting the failover fence
            # brings back the primary copy, on the filer's own cluster.
            home = home_of(catalog.load(filer), filer)
            if home.side == DR:
                snapshot = replace(snapshot, home=home)
        for _ in range(MAX_ATTEMPTS):
            data, etag = catalog.read_json(path)
            recorded = _decoded(data, path) if data is not None else None
            if recorded is not None and (recorded.run_id, recorded.kind, recorded.reason) == (
                snapshot.run_id,
                snapshot.kind,
                snapshot.reason,
            ):
                return recorded  # delivered again: the snapshot recorded first stands
            # Absent, an earlier run of this instance id (it has ended: the host starts an id only then), or one
            # whose id this run's repeats (ids derive from the start time: a run started in the same second).
            if catalog.create_or_replace_json(path, snapshot.to_json(), etag):
                log.info(
                    "run %s of %s (%s) recorded its plan snapshot", snapshot.run_id, filer.key, snapshot.instance_id
                )
                return snapshot
    raise CatalogConflict(
        f"the snapshot of {snapshot.instance_id} changed {MAX_ATTEMPTS} times while being recorded",
        filer=filer.key,
        state="nothing changed",
        action="start the run again",
    )


def load_run(ref: RunRef, *kinds: str) -> RunSnapshot:
    """The snapshot of the run `ref` names, of one of `kinds`; InputRefused naming what does not match."""
    plan = services.load_plan()
    filer = _filer(plan, ref.cluster, ref.filer)
    path = run_path(ref.cluster, ref.filer, ref.instance_id)
    with catalog_of(plan, filer) as catalog:
        data, _ = catalog.read_json(path)
    snapshot = _decoded(data, path) if data is not None else None
    if snapshot is None:
        raise InputRefused(
            f"no run {ref.instance_id!r} is recorded for {filer.key}: every run records its plan "
            "snapshot when it starts, and this one has none (an instance this version did not "
            "start, a run of another filer, or a plan that moved the filer's catalog since)",
            filer=filer.key,
        )
    if snapshot.run_id != ref.run_id:
        raise InputRefused(
            f"run {ref.run_id!r} is not the run of {ref.instance_id} on record ({snapshot.run_id}): "
            "a later run of that instance replaced it, or the input names a run that never was",
            filer=filer.key,
        )
    if (snapshot.instance_id, snapshot.cluster, snapshot.filer) != (ref.instance_id, ref.cluster, ref.filer):
        raise InputRefused(
            f"the snapshot at {path} names another run ({snapshot.instance_id} of {snapshot.key})", filer=filer.key
        )
    if kinds and snapshot.kind not in kinds:
        raise InputRefused(
            f"{ref.instance_id} is a {snapshot.kind} run, not a {' or '.join(kinds)} run", filer=filer.key
        )
    then = snapshot.plan.filer(snapshot.cluster, snapshot.filer)
    if (then.backup.account, then.backup.account_url, snapshot.plan.catalog_container) != (
        filer.backup.account,
        filer.backup.account_url,
        plan.catalog_container,
    ):
        raise InputRefused(
            f"the plan moved {filer.key}'s catalog since run {ref.run_id} started",
            filer=filer.key,
            action="let the run end before moving a filer's backup account",
        )
    return snapshot


def open_run_catalog(snapshot: RunSnapshot) -> Catalog:
    """The run's catalog, as its snapshot places it."""
    return catalog_of(snapshot.plan, snapshot.plan.filer(snapshot.cluster, snapshot.filer))


def reserved_target(state: FilerState, backup_id: str, filer: str) -> BackupTarget:
    """The generation the catalog reserved (`writing`) for backup `backup_id`: the only one its run writes to."""
    g = state.generation_of(backup_id)
    if g is None:
        raise InputRefused(
            f"no backup generation of {filer} is reserved for backup {backup_id}: the catalog "
            "reserves one when a backup run begins",
            filer=filer,
        )
    gen = state.generations[g]
    if gen.status != WRITING:
        raise InputRefused(
            f"generation {g} ({gen.container}) holds backup {backup_id} as {gen.status}, not "
            f"writing: a run writes only into the generation reserved for it while it runs",
            filer=filer,
        )
    pre, final = job_ids(backup_id)
    return BackupTarget(
        backup_id=backup_id,
        generation=g,
        container=gen.container,
        previous_manifest=gen.previous_manifest,
        precopy_job=pre,
        final_job=final,
    )


def job_ids(backup_id: str) -> tuple[str, str]:
    """The copy job ids of a backup: its online pre-copy pass and its final pass."""
    return f"{backup_id}-pre", f"{backup_id}-final"
