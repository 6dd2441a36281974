"""Activities of a failback run beyond the backup runbook's own (see shared/runbook/failback.py)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import failback
from shared.runbook.failover_payloads import FailbackStep
from shared.runbook.payloads import AttachStep
from shared.runbook.refs import RunRef

bp = df.Blueprint()


@bp.activity_trigger(input_name="run")
def failback_check(run: RunRef) -> None:
    failback.check(decode(RunRef, run))


@bp.activity_trigger(input_name="step")
def failback_retire_step(step: FailbackStep) -> AttachStep:
    return failback.retire_step(decode(FailbackStep, step))


@bp.activity_trigger(input_name="run")
def failback_mark_attached(run: RunRef) -> None:
    failback.mark_attached(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def failback_undo_primary(run: RunRef) -> str:
    return failback.undo_primary(decode(RunRef, run))


@bp.activity_trigger(input_name="run")
def record_failback(run: RunRef) -> dict[str, Any]:
    return failback.record_failback(decode(RunRef, run))
