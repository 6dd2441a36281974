"""Activities of a backup run on the protected filer and its catalog entry (see shared/runbook/payloads.py).

Each input names the run (RunRef and friends): the activity resolves everything else from the run's snapshot
and the catalog (shared/runbook/runs.py)."""

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
    AttentionRef,
    BackupTarget,
    CompleteBackup,
    FlushStatus,
    KeyRotation,
    Preflight,
    ReaddPlan,
    RemoveStatus,
    RunStep,
    StartedActivities,
)
from shared.runbook.refs import RunRef

bp = df.Blueprint()


@bp.activity_trigger(input_name="run")
def preflight(run: RunRef) -> Preflight:
    return checks.preflight(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def begin_backup(run: RunRef) -> BackupTarget:
    return catalog_ops.begin_backup(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def rotate_key(run: RunRef) -> KeyRotation:
    return rotation.rotate_key(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def capture_filer(run: RunRef) -> FilerRecord:
    return capture_step.capture(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def suspend_and_flush(run: RunRef) -> StartedActivities:
    return filer_steps.suspend_and_flush(decode(RunRef, run))


@bp.activity_trigger(input_name="step")
def flush_status(step: RunStep) -> FlushStatus:
    return filer_steps.flush_status(decode(RunStep, step))


@bp.activity_trigger(input_name="run")
def unsuspend_clients(run: RunRef) -> StartedActivities:
    return filer_steps.unsuspend(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def mark_removed(run: RunRef) -> None:
    catalog_ops.mark_removed(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def remove_junctions(run: RunRef) -> StartedActivities:
    return filer_steps.remove_junctions(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def remove_filer(run: RunRef) -> StartedActivities:
    return filer_steps.remove_filer(decode(RunRef, run))


@bp.activity_trigger(input_name="step")
def remove_status(step: RunStep) -> RemoveStatus:
    return filer_steps.remove_status(decode(RunStep, step))


@bp.activity_trigger(input_name="request")
def complete_backup(request: CompleteBackup) -> dict[str, Any]:
    return catalog_ops.complete_backup(decode(CompleteBackup, request))


@bp.activity_trigger(input_name="request")
def mark_attention(request: AttentionRef) -> None:
    catalog_ops.mark_attention(decode(AttentionRef, request))


@bp.activity_trigger(input_name="run")
def clear_removed(run: RunRef) -> None:
    catalog_ops.clear_removed(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def readd_plan(run: RunRef) -> ReaddPlan:
    return catalog_ops.readd_plan(decode(RunRef, run))
