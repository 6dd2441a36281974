"""Activities of a backup run on the protected filer and its catalog entry (see shared/runbook/payloads.py)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities._payload import payload
from shared.avere.records import FilerRecord
from shared.runbook import capture as capture_step
from shared.runbook import flush_remove as filer_steps
from shared.runbook import preflight as checks
from shared.runbook import record as catalog_ops
from shared.runbook import rotate_key as rotation
from shared.runbook.payloads import (
    Attention,
    BackupRequest,
    BackupTarget,
    BeginBackup,
    CompleteBackup,
    FilerRef,
    FilerStep,
    FlushStatus,
    KeyRotation,
    MarkRemoved,
    Preflight,
    ReaddPlan,
    RemoveStatus,
    StartedActivities,
)

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def preflight(request: BackupRequest) -> Preflight:
    return checks.run_preflight(payload(BackupRequest, request))


@bp.activity_trigger(input_name="request")
def begin_backup(request: BeginBackup) -> BackupTarget:
    return catalog_ops.begin_backup(payload(BeginBackup, request))


@bp.activity_trigger(input_name="step")
def rotate_key(step: FilerStep) -> KeyRotation:
    return rotation.rotate_key(payload(FilerStep, step).context)


@bp.activity_trigger(input_name="step")
def capture_filer(step: FilerStep) -> FilerRecord:
    return capture_step.capture(payload(FilerStep, step))


@bp.activity_trigger(input_name="step")
def suspend_and_flush(step: FilerStep) -> StartedActivities:
    return filer_steps.suspend_and_flush(payload(FilerStep, step))


@bp.activity_trigger(input_name="step")
def flush_status(step: FilerStep) -> FlushStatus:
    return filer_steps.flush_status(payload(FilerStep, step))


@bp.activity_trigger(input_name="step")
def unsuspend_clients(step: FilerStep) -> StartedActivities:
    return filer_steps.unsuspend(payload(FilerStep, step))


@bp.activity_trigger(input_name="request")
def mark_removed(request: MarkRemoved) -> None:
    catalog_ops.mark_removed(payload(MarkRemoved, request))


@bp.activity_trigger(input_name="step")
def remove_junctions(step: FilerStep) -> StartedActivities:
    return filer_steps.remove_junctions(payload(FilerStep, step))


@bp.activity_trigger(input_name="step")
def remove_filer(step: FilerStep) -> StartedActivities:
    return filer_steps.remove_filer(payload(FilerStep, step))


@bp.activity_trigger(input_name="step")
def remove_status(step: FilerStep) -> RemoveStatus:
    return filer_steps.remove_status(payload(FilerStep, step))


@bp.activity_trigger(input_name="request")
def complete_backup(request: CompleteBackup) -> dict[str, Any]:
    return catalog_ops.complete_backup(payload(CompleteBackup, request))


@bp.activity_trigger(input_name="request")
def mark_attention(request: Attention) -> None:
    catalog_ops.mark_attention(payload(Attention, request))


@bp.activity_trigger(input_name="request")
def clear_removed(request: Attention) -> None:
    catalog_ops.clear_removed(payload(Attention, request))


@bp.activity_trigger(input_name="ref")
def readd_plan(ref: FilerRef) -> ReaddPlan:
    return catalog_ops.readd_plan(payload(FilerRef, ref))
