"""Failover activities: choose a verified backup, mark it attached, check it (a sample, or page by page), record.

Each input names the failover run and the backup; the DR cluster is the one the run's snapshot resolved."""

from __future__ import annotations

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import failover as failover_steps
from shared.runbook.failover_payloads import (
    BackupPageCheck,
    BackupPageRef,
    BackupRef,
    ChooseBackup,
    ClusterName,
    FailoverChoice,
    FailoverRecordRef,
    FailoverTimes,
    FilerNames,
    SampleCheck,
)

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def choose_backup(request: ChooseBackup) -> FailoverChoice:
    return failover_steps.choose_backup(decode(ChooseBackup, request))


@bp.activity_trigger(input_name="request")
def cluster_filers(request: ClusterName) -> FilerNames:
    return failover_steps.cluster_filers(decode(ClusterName, request))


@bp.activity_trigger(input_name="request")
def mark_attached(request: BackupRef) -> None:
    failover_steps.mark_attached(decode(BackupRef, request))


@bp.activity_trigger(input_name="request")
def verify_backup_page(request: BackupPageRef) -> BackupPageCheck:
    return failover_steps.verify_backup_page(decode(BackupPageRef, request))


@bp.activity_trigger(input_name="request")
def verify_backup_sample(request: BackupRef) -> SampleCheck:
    return failover_steps.verify_backup_sample(decode(BackupRef, request))


@bp.activity_trigger(input_name="request")
def record_failover(request: FailoverRecordRef) -> FailoverTimes:
    return failover_steps.record_failover(decode(FailoverRecordRef, request))
