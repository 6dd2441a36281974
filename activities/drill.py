"""Drill activities: begin (choose, pin, record), the scratch copy's check against the manifest, the attach steps,
the read-back, the record, the clean-up. Thin adapters over shared/runbook/drill*.py; the scratch copy itself runs
through the copy activities (activities/copy.py), which resolve a drill run's pass from its drill record."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import drill, drill_probe, drill_steps
from shared.runbook.drill_payloads import (
    CleanupStep,
    DrillBegin,
    DrillChoice,
    DrillCleaned,
    DrillClusterPlan,
    DrillFilers,
    DrillFinish,
    DrillPage,
    DrillRef,
    DrillStep,
    Readback,
    StaleDrill,
)
from shared.runbook.failover_payloads import BackupPageCheck
from shared.runbook.payloads import AttachStep
from shared.runbook.refs import RunRef

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def drill_begin(request: DrillBegin) -> DrillChoice:
    return drill.begin(decode(DrillBegin, request))


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
def drill_cluster_filers(request: DrillFilers) -> DrillClusterPlan:
    return drill.cluster_plan(decode(DrillFilers, request))


@bp.activity_trigger(input_name="request")
def drill_stale(request: RunRef) -> StaleDrill:
    return drill.stale_pin(decode(RunRef, request))
