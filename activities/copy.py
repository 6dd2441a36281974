"""Copy activities: the copy engine's page steps for a backup run, plus progress and cancellation.

Each input names the backup run and the pass (job id); the job is rebuilt from the run's snapshot and the
generation the catalog reserved for it (shared/runbook/copy.py: resolve)."""

from __future__ import annotations

import azure.durable_functions as df

from shared.blobcopy.model import ChangeCheck, DeleteReport, PagePlan, PageProgress, PageVerify, Summary
from shared.core.codec import decode
from shared.runbook import copy_passes as copysteps
from shared.runbook.payloads import CopyPageRef, CopyPass, CopyProgress, CopyRef, CopyReport

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def copy_describe(request: CopyRef) -> CopyPass:
    return copysteps.describe(decode(CopyRef, request))


@bp.activity_trigger(input_name="request")
def copy_plan_page(request: CopyPageRef) -> PagePlan:
    return copysteps.plan_page(decode(CopyPageRef, request))


@bp.activity_trigger(input_name="request")
def copy_start_page(request: CopyPageRef) -> PageProgress:
    return copysteps.start_page(decode(CopyPageRef, request))


@bp.activity_trigger(input_name="request")
def copy_poll_page(request: CopyPageRef) -> PageProgress:
    return copysteps.poll_page(decode(CopyPageRef, request))


@bp.activity_trigger(input_name="request")
def copy_verify_page(request: CopyPageRef) -> PageVerify:
    return copysteps.verify_page(decode(CopyPageRef, request))


@bp.activity_trigger(input_name="request")
def copy_finish(request: CopyRef) -> Summary:
    return copysteps.finish(decode(CopyRef, request))


@bp.activity_trigger(input_name="request")
def copy_check_changes(request: CopyRef) -> ChangeCheck:
    return copysteps.check_changes(decode(CopyRef, request))


@bp.activity_trigger(input_name="request")
def copy_approve_changes(request: CopyRef) -> ChangeCheck:
    return copysteps.approve_changes(decode(CopyRef, request))


@bp.activity_trigger(input_name="request")
def copy_apply_deletes(request: CopyRef) -> DeleteReport:
    return copysteps.apply_deletes(decode(CopyRef, request))


@bp.activity_trigger(input_name="request")
def copy_report(request: CopyReport) -> CopyProgress:
    return copysteps.report(decode(CopyReport, request))


@bp.activity_trigger(input_name="request")
def copy_progress(request: CopyRef) -> CopyProgress:
    return copysteps.progress(decode(CopyRef, request))


@bp.activity_trigger(input_name="request")
def copy_cancel(request: CopyRef) -> None:
    copysteps.cancel(decode(CopyRef, request))
