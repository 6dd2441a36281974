"""Activities of a backup run on the protected filer and its catalog entry (see shared/runbook/payloads.py)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared.avere.records import FilerRecord
from shared.core.codec import decode
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
    return checks.run_preflight(decode(BackupRequest, request))


@bp.activity_trigger(input_name="request")
def begin_backup(request: BeginBackup) -> BackupTarget:
    return catalog_ops.begin_backup(decode(BeginBackup, request))


@bp.activity_trigger(input_name="step")
def rotate_key(step: FilerStep) -> KeyRotation:
    return rotation.rotate_key(decode(FilerStep, step).context)


@bp.activity_trigger(input_name="step")
def capture_filer(step: FilerStep) -> FilerRecord:
    return capture_step.capture(decode(FilerStep, step))


@bp.activity_trigger(input_name="step")
def suspend_and_flush(step: FilerStep) -> StartedActivities:
    return filer_steps.suspend_and_flush(decode(FilerStep, step))


@bp.activity_trigger(input_name="step")
def flush_status(step: FilerStep) -> FlushStatus:
    return filer_steps.flush_status(decode(FilerStep, step))


@bp.activity_trigger(input_name="step")
def unsuspend_clients(step: FilerStep) -> StartedActivities:
    return filer_steps.unsuspend(decode(FilerStep, step))


@bp.activity_trigger(input_name="request")
def mark_removed(request: MarkRemoved) -> None:
    catalog_ops.mark_removed(decode(MarkRemoved, request))


@bp.activity_trigger(input_name="step")
def remove_junctions(step: FilerStep) -> StartedActivities:
    return filer_steps.remove_junctions(decode(FilerStep, step))


@bp.activity_trigger(input_name="step")
def remove_filer(step: FilerStep) -> StartedActivities:
    return filer_steps.remove_filer(decode(FilerStep, step))


@bp.activity_trigger(input_name="step")
def remove_status(step: FilerStep) -> RemoveStatus:
    return filer_steps.remove_status(decode(FilerStep, step))


@bp.activity_trigger(input_name="request")
def complete_backup(request: CompleteBackup) -> dict[str, Any]:
    return catalog_ops.complete_backup(decode(CompleteBackup, request))


@bp.activity_trigger(input_name="request")
def mark_attention(request: Attention) -> None:
    catalog_ops.mark_attention(decode(Attention, request))


@bp.activity_trigger(input_name="request")
def clear_removed(request: Attention) -> None:
    catalog_ops.clear_removed(decode(Attention, request))


@bp.activity_trigger(input_name="ref")
def readd_plan(ref: FilerRef) -> ReaddPlan:
    return catalog_ops.readd_plan(decode(FilerRef, ref))
