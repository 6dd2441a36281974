"""Copy activities: the copy engine's page steps for a backup run, plus progress and cancellation."""

from __future__ import annotations

import azure.durable_functions as df

from shared.blobcopy.model import ChangeCheck, DeleteReport, PagePlan, PageProgress, PageVerify, Summary
from shared.core.codec import decode
from shared.runbook import copy as copysteps
from shared.runbook.payloads import CopyFinish, CopyPageRequest, CopyProgress, CopyReport

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def copy_plan_page(request: CopyPageRequest) -> PagePlan:
    return copysteps.plan_page(decode(CopyPageRequest, request))


@bp.activity_trigger(input_name="request")
def copy_start_page(request: CopyPageRequest) -> PageProgress:
    return copysteps.start_page(decode(CopyPageRequest, request))


@bp.activity_trigger(input_name="request")
def copy_poll_page(request: CopyPageRequest) -> PageProgress:
    return copysteps.poll_page(decode(CopyPageRequest, request))


@bp.activity_trigger(input_name="request")
def copy_verify_page(request: CopyPageRequest) -> PageVerify:
    return copysteps.verify_page(decode(CopyPageRequest, request))


@bp.activity_trigger(input_name="request")
def copy_finish(request: CopyFinish) -> Summary:
    return copysteps.finish(decode(CopyFinish, request))


@bp.activity_trigger(input_name="request")
def copy_check_changes(request: CopyFinish) -> ChangeCheck:
    return copysteps.check_changes(decode(CopyFinish, request))


@bp.activity_trigger(input_name="request")
def copy_approve_changes(request: CopyFinish) -> ChangeCheck:
    return copysteps.approve_changes(decode(CopyFinish, request))


@bp.activity_trigger(input_name="request")
def copy_apply_deletes(request: CopyFinish) -> DeleteReport:
    return copysteps.apply_deletes(decode(CopyFinish, request))


@bp.activity_trigger(input_name="request")
def copy_report(request: CopyReport) -> CopyProgress:
    return copysteps.report(decode(CopyReport, request))


@bp.activity_trigger(input_name="request")
def copy_progress(request: CopyFinish) -> CopyProgress:
    return copysteps.progress(decode(CopyFinish, request))


@bp.activity_trigger(input_name="request")
def copy_cancel(request: CopyFinish) -> None:
    copysteps.cancel(decode(CopyFinish, request))
