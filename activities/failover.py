"""Failover activities: fence the primary filer, choose a verified backup, mark it attached, verify it, record it."""

from __future__ import annotations

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import failover as failover_steps
from shared.runbook import fence as fencing
from shared.runbook.failover_payloads import (
    BackupPageCheck,
    FailoverChoice,
    FailoverRequest,
    FenceOutcome,
    MarkAttached,
    RecordFailover,
    VerifyBackupPage,
)

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def fence_primary(request: FailoverRequest) -> FenceOutcome:
    return fencing.fence_primary(decode(FailoverRequest, request))


@bp.activity_trigger(input_name="request")
def choose_backup(request: FailoverRequest) -> FailoverChoice:
    return failover_steps.choose_backup(decode(FailoverRequest, request))


@bp.activity_trigger(input_name="request")
def mark_attached(request: MarkAttached) -> None:
    failover_steps.mark_attached(decode(MarkAttached, request))


@bp.activity_trigger(input_name="request")
def verify_backup_page(request: VerifyBackupPage) -> BackupPageCheck:
    return failover_steps.verify_backup_page(decode(VerifyBackupPage, request))


@bp.activity_trigger(input_name="request")
def record_failover(request: RecordFailover) -> None:
    failover_steps.record_failover(decode(RecordFailover, request))
