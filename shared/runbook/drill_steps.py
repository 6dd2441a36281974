"""Drills' storage and cluster steps: the scratch copy's job, its check against the backup's manifest, attaching it
to the DR cluster under drill names, and the clean-up. Each resolves what it acts on from the run's plan snapshot
and the drill record."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.avere import answers
from shared.avere.client import AvereClient
from shared.avere.errors import AvereConflict
from shared.blobcopy.model import CatalogRef, ContainerRef, CopyJob, Guard
from shared.core.errors import CatalogConflict, InputRefused
from shared.runbook import attach, services
from shared.runbook import copy as copysteps
from shared.runbook.drill import (
    PREFIX,
    DrillRecord,
    Where,
    copy_state_prefix,
    drill_policy,
    drill_record_of,
    drills_prefix,
    load_record,
    own_run,
    resolve,
    scratch_prefix,
)
from shared.runbook.drill_payloads import CleanupStep, DrillPage, DrillRef, DrillStep, scratch_job_id
from shared.runbook.failover_payloads import BackupPageCheck
from shared.runbook.payloads import AttachStep, RunContext
from shared.runbook.refs import RunRef

log = logging.getLogger("vfxtdr.drill")


@dataclass(frozen=True)
class Drill:
    """A drill as its steps see it: the plan parts and the catalog's record."""

    where: Where
    record: DrillRecord

    @property
    def label(self) -> str:
        return f"{self.record.cluster}/{self.record.filer}"


def load(ref: DrillRef) -> Drill:
    """The drill run's snapshot and the drill's record: the run's own drill (a reconcile run: the one it cleans up
    after), written by this very instance."""
    where = resolve(ref.run)
    own_run(where, ref)
    with where.catalog() as catalog:
        record = load_record(catalog, ref)
    if record.instance_id != ref.run.instance_id or (record.cluster, record.filer) != (ref.cluster, ref.filer):
        raise InputRefused(f"drill {ref.drill_id} was not started by {ref.run.instance_id}", filer=ref.key)
    return Drill(where, record)


def _refuse(drill: Drill, what: str) -> CatalogConflict:
    return CatalogConflict(
        what,
        filer=drill.label,
        state="the drill did not act on it",
        action="check the plan and the drill record; start a new drill",
    )


def _plan_containers(drill: Drill) -> set[str]:
    """Every container the plan names in the drill's backup account (none may be a scratch container)."""
    account = drill.record.backup_account
    names = {drill.where.plan.catalog_container}
    for f in drill.where.plan.filers:
        if f.backup.account == account:
            names.update(f.backup.containers)
        if f.source.account == account:
            names.add(f.source.container)
    return names


def _checked_scratch(drill: Drill) -> str:
    """The record's scratch container, after making sure it is one: drill-prefixed, of this filer, not the plan's."""
    rec = drill.record
    if not rec.scratch.startswith(scratch_prefix(rec.cluster, rec.filer)) or rec.scratch in _plan_containers(drill):
        raise _refuse(drill, f"container {rec.scratch!r} is not a scratch container of this filer's drills")
    filer = drill.where.filer
    if rec.backup_account != filer.backup.account or rec.container not in filer.backup.containers:
        raise _refuse(
            drill,
            f"the record's backup {rec.backup_account}/{rec.container} is not one of the plan's "
            "backup containers of the filer",
        )
    return rec.scratch


# --- the scratch copy ------------------------------------------------------------------------------------------
def copy_job(drill: Drill) -> CopyJob:
    """A full copy of the drilled backup container into the scratch container, inside the backup account."""
    ctx, rec = drill.where.context, drill.record
    scratch = _checked_scratch(drill)
    account = copysteps.backup_ref(ctx)
    settings = ctx.copy
    catalog = CatalogRef(
        account=account, container=ctx.catalog_container, prefix=copy_state_prefix(rec.cluster, rec.filer, rec.drill_id)
    )
    job = CopyJob(
        job_id=scratch_job_id(rec.drill_id),
        source=ContainerRef(account, rec.container),
        dest=ContainerRef(account, scratch),
        catalog=catalog,
        mode="full",
        engine=settings.engine,
        concurrency=settings.concurrency,
        page_size=settings.page_size,
        pending_limit_seconds=settings.pending_limit_seconds,
        guard=Guard(0.0, 0),
    )
    return job.validate()


def scratch_job(run: RunRef, job_id: str) -> tuple[RunContext, CopyJob]:
    """The copy pass `job_id` of drill run `run` (shared/runbook/copy.py resolves a drill run's passes here): its
    scratch copy only, rebuilt from the run's snapshot and its drill record."""
    drill = load(DrillRef(run, run.run_id))
    if job_id != scratch_job_id(run.run_id):
        raise InputRefused(
            f"copy job {job_id[:100]!r} is not a pass of drill {run.run_id} (its pass: {scratch_job_id(run.run_id)})",
            filer=run.key,
        )
    return drill.where.context, copy_job(drill)


def check_page(request: DrillPage) -> BackupPageCheck:
    """One page of the backup's manifest against the scratch copy: the copy holds exactly what was backed up."""
    drill = load(request.ref)
    rec = drill.record
    check, pages = copysteps.check_backup_page(drill.where.context, _checked_scratch(drill), rec.manifest, request.page)
    extra = 0 if rec.extras else check.extra
    return BackupPageCheck(
        page=request.page,
        checked=check.checked,
        mismatches=check.mismatched + extra,
        missing=check.missing,
        last=request.page >= pages - 1,
        problems=tuple(check.problems),
    )


# --- attaching the copy -------------------------------------------------------------------------------------------
def attach_request(drill: Drill, activity_ids: tuple[str, ...] = ()) -> attach.AttachRequest:
    """The backup's captured record as the drill attaches it: its scratch copy, drill junctions and policies, the
    backup's key from Key Vault, the backup account's credential (as a failover would)."""
    where, rec = drill.where, drill.record
    with where.catalog() as catalog:
        captured = catalog.record(where.filer, rec.backup_id)
    if captured is None:
        raise _refuse(drill, f"the catalog holds no filer record for backup {rec.backup_id}")
    request = attach.failover_request(
        where.context,
        where.plan.dr_cluster(rec.target_cluster),
        drill_record_of(captured, where.filer.name),
        _checked_scratch(drill),
        rec.key,
    )
    return replace(request, activity_ids=activity_ids)


def attach_step(step: DrillStep) -> AttachStep:
    """One idempotent step towards the drill filer serving on the DR cluster (shared/runbook/attach.py)."""
    drill = load(step.ref)
    return attach.attach_step(attach_request(drill, step.activity_ids), name=drill.record.drill_filer)


# --- clean-up ---------------------------------------------------------------------------------------------------
@contextmanager
def _target(drill: Drill) -> Iterator[AvereClient]:
    plan = drill.where.plan
    with services.avere_client(plan.dr_cluster(drill.record.target_cluster), plan.keyvault_url) as client:
        yield client


def cleanup_step(step: DrillStep) -> CleanupStep:
    """The next thing the drill left: its junctions, its filer, its export policies on the DR cluster, then its
    scratch containers and copy state. Earlier drills' leftovers of the same filer go too. Touches nothing else:
    a `drill-<filer>` on a container that is not a scratch copy of this filer is refused, left as it is."""
    drill = load(step.ref)
    with _target(drill) as client:
        cluster_step = _cluster_cleanup(drill, client, step.activity_ids)
    if cluster_step is not None:
        return cluster_step
    gone = _delete_scratch(drill)
    states = _delete_copy_state(drill)
    log.info(
        "drill %s of %s: cleaned up (%d scratch container(s), %d state blob(s) deleted)",
        drill.record.drill_id,
        drill.label,
        len(gone),
        states,
    )
    return CleanupStep(phase="done", done=True, detail=f"deleted {', '.join(gone) or 'no scratch container'}")


def _cluster_cleanup(drill: Drill, client: AvereClient, activity_ids: tuple[str, ...]) -> CleanupStep | None:
    rec = drill.record
    name = rec.drill_filer
    # Only whether they ended matters: what a failed one left (or did not) is read from the cluster below.
    running = [s.id for s in (client.activity_status(i) for i in activity_ids) if not s.done]
    # An attach the drill was stopped in may still be creating the filer (it appears only once created), or
    # adding a junction: whatever the cluster still does for the drill filer is waited for first.
    running += [i for i in _busy(client, name) if i not in running]
    if running:
        return CleanupStep(
            phase="waiting", done=False, activity_ids=tuple(running), detail=f"waiting for {len(running)} activity(ies)"
        )
    state = client.filer_state(name)
    if state != "removed":
        bucket = str(client.filer_info(name)["bucket"])  # read strictly: never assumed
        mine = f"{rec.backup_account}/{scratch_prefix(rec.cluster, rec.filer)}"
        if not bucket.startswith(mine):
            raise AvereConflict(
                f"core filer {name!r} on cluster {rec.target_cluster} is on {bucket!r}, not a "
                f"scratch copy of {drill.label}'s drills: it was left untouched"
            )
        removing = [i for i in client.remove_junctions(name) if i != "success"]
        if removing:
            return CleanupStep(
                phase="junctions",
                done=False,
                activity_ids=tuple(removing),
                detail=f"removing {len(removing)} junction(s) of {name}",
            )
        if state == "removing":
            return CleanupStep(phase="filer", done=False, detail=f"{name} is being removed")
        activity = client.remove_core_filer(name)
        return CleanupStep(
            phase="filer",
            done=False,
            activity_ids=(activity,) if activity != "success" else (),
            detail=f"removing core filer {name}",
        )
    mark = drill_policy(rec.filer, "")
    for vserver in answers.names(client.call("vserver.list"), "vserver.list"):
        for policy in answers.array(client.call("nfs.listPolicies", vserver), "nfs.listPolicies"):
            if str(policy).startswith(mark):
                client.call("nfs.removePolicy", vserver, policy)
                return CleanupStep(phase="policies", done=False, detail=f"removed export policy {policy}")
    return None


def _busy(client: AvereClient, name: str) -> list[str]:
    """Activities the cluster has not finished for the named filer (any state but success or failure counts)."""
    listed = answers.array(client.call("cluster.listActivities"), "cluster.listActivities")
    entries = [answers.struct(a, "cluster.listActivities") for a in listed]
    return [
        str(a.get("id"))
        for a in entries
        if a.get("state") not in ("success", "failure") and f"'{name}'" in str(a.get("status", ""))
    ]


def _delete_scratch(drill: Drill) -> list[str]:
    """Every scratch container of this filer's drills in its backup account (this one and earlier leftovers)."""
    rec, ctx = drill.record, drill.where.context
    prefix = scratch_prefix(rec.cluster, rec.filer)
    keep = _plan_containers(drill)
    gone = []
    with services.backup_account(ctx.filer, ctx.storage_auth, ctx.keyvault_url).service_client() as service:
        for item in list(service.list_containers(name_starts_with=prefix)):
            name = str(item.name)
            if not name.startswith(PREFIX) or name in keep:
                continue
            try:
                service.delete_container(name)
            except ResourceNotFoundError:
                continue
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) != "ContainerBeingDeleted":
                    raise
            gone.append(name)
    return gone


def _delete_copy_state(drill: Drill) -> int:
    """The scratch copies' page state and manifests in the catalog (the drill records themselves stay)."""
    rec, ctx = drill.record, drill.where.context
    prefix = drills_prefix(rec.cluster, rec.filer)
    count = 0
    with services.backup_account(ctx.filer, ctx.storage_auth, ctx.keyvault_url).service_client() as service:
        container = service.get_container_client(ctx.catalog_container)
        try:
            names = [b.name for b in container.list_blobs(name_starts_with=prefix) if "/copy/" in b.name[len(prefix) :]]
        except ResourceNotFoundError:
            return 0
        for name in names:
            try:
                container.delete_blob(name)
                count += 1
            except ResourceNotFoundError:
                continue
    return count
