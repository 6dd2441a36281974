"""Drill activities: begin (choose, pin, record), the scratch copy's page steps, its check against the manifest,
the attach steps, the read-back, the record, the clean-up. Thin adapters over shared/runbook/drill*.py."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared.blobcopy.model import PagePlan, PageProgress, PageVerify, Summary
from shared.core.codec import decode
from shared.runbook import drill, drill_probe, drill_steps
from shared.runbook.drill_payloads import (
    CleanupStep,
    DrillBegin,
    DrillChoice,
    DrillCleaned,
    DrillClusterPlan,
    DrillClusterRequest,
    DrillCopyReport,
    DrillFinish,
    DrillPage,
    DrillRef,
    DrillRequest,
    DrillStep,
    Readback,
    StaleDrill,
)
from shared.runbook.failover_payloads import BackupPageCheck
from shared.runbook.payloads import AttachStep, CopyProgress

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def drill_begin(request: DrillBegin) -> DrillChoice:
    return drill.begin(decode(DrillBegin, request))


@bp.activity_trigger(input_name="request")
def drill_copy_plan_page(request: DrillPage) -> PagePlan:
    return drill_steps.plan_page(decode(DrillPage, request))


@bp.activity_trigger(input_name="request")
def drill_copy_start_page(request: DrillPage) -> PageProgress:
    return drill_steps.start_page(decode(DrillPage, request))


@bp.activity_trigger(input_name="request")
def drill_copy_poll_page(request: DrillPage) -> PageProgress:
    return drill_steps.poll_page(decode(DrillPage, request))


@bp.activity_trigger(input_name="request")
def drill_copy_verify_page(request: DrillPage) -> PageVerify:
    return drill_steps.verify_page(decode(DrillPage, request))


@bp.activity_trigger(input_name="request")
def drill_copy_finish(request: DrillRef) -> Summary:
    return drill_steps.finish_copy(decode(DrillRef, request))


@bp.activity_trigger(input_name="request")
def drill_copy_report(request: DrillCopyReport) -> CopyProgress:
    return drill_steps.report(decode(DrillCopyReport, request))


@bp.activity_trigger(input_name="request")
def drill_copy_progress(request: DrillRef) -> CopyProgress:
    return drill_steps.progress(decode(DrillRef, request))


@bp.activity_trigger(input_name="request")
def drill_copy_cancel(request: DrillRef) -> None:
    drill_steps.cancel_copy(decode(DrillRef, request))


@bp.activity_trigger(input_name="request")
def drill_check_page(request: DrillPage) -> BackupPageCheck:
    return drill_steps.check_page(decode(DrillPage, request))


@bp.activity_trigger(input_name="request")
def drill_attach_step(request: DrillStep) -> AttachStep:
    return drill_steps.attach_step(decode(DrillStep, request))


@bp.activity_trigger(input_name="request")
def drill_readback(request: DrillRef) -> Readback:
    return drill_probe.readback(decode(DrillRef, request))


@bp.activity_trigger(input_name="request")
def drill_finish(request: DrillFinish) -> dict[str, Any] | None:
    return drill.finish(decode(DrillFinish, request))


@bp.activity_trigger(input_name="request")
def drill_cleanup_step(request: DrillStep) -> CleanupStep:
    return drill_steps.cleanup_step(decode(DrillStep, request))


@bp.activity_trigger(input_name="request")
def drill_cleaned(request: DrillCleaned) -> dict[str, Any] | None:
    return drill.cleaned(decode(DrillCleaned, request))


@bp.activity_trigger(input_name="request")
def drill_cluster_filers(request: DrillClusterRequest) -> DrillClusterPlan:
    return drill.cluster_plan(decode(DrillClusterRequest, request))


@bp.activity_trigger(input_name="request")
def drill_stale(request: DrillRequest) -> StaleDrill:
    return drill.stale_pin(decode(DrillRequest, request))
