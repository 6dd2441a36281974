"""The full check of a backup before a failover attaches it: every manifest page against the container.

A sub-orchestration of the failover run (instance `<failover instance>-verify`), checking VERIFY_BATCH pages at
a time and continuing as new every PAGES_PER_EXECUTION pages, so its history stays bounded however many pages
the manifest has. Any missing or different blob stops it with FailoverFailed naming the page and the blobs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import azure.durable_functions as df

from activities import failover as failover_acts
from orchestrators.durable_helpers import Gen, activity, run_input
from shared.core.codec import plain
from shared.core.errors import FailoverFailed, InputRefused
from shared.runbook.failover_payloads import BackupPageCheck, BackupPageRef, FullVerify

bp = df.Blueprint()

FULL_VERIFY = "failover_verify_orchestrator"
VERIFY_BATCH = 4  # pages checked at once (one activity each)
PAGES_PER_EXECUTION = 40  # then continue as new: a history of at most this many page checks


def verify_instance_id(parent: str) -> str:
    return f"{parent}-verify"


@bp.orchestration_trigger(context_name="context")
def failover_verify_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    state = run_input(context, FullVerify)
    parent = state.run.instance_id
    expected = verify_instance_id(parent)
    if context.parent_instance_id != parent or context.instance_id != expected:
        raise InputRefused(
            f"a full check runs only as the sub-orchestration {expected[:200]!r} of its failover "
            f"run {parent[:200]!r}; this is {context.instance_id[:200]!r}, started by "
            f"{context.parent_instance_id or 'no orchestration'}",
            filer=state.run.key,
        )
    page, checked = state.page, state.checked
    while page < state.page + PAGES_PER_EXECUTION:
        batch: list[BackupPageCheck] = yield context.task_all(
            [
                activity(context, failover_acts.verify_backup_page, BackupPageRef(state.run, state.backup_id, page + i))
                for i in range(VERIFY_BATCH)
            ]
        )
        for check in batch:
            checked += check.checked
            if check.mismatches or check.missing:
                raise FailoverFailed(
                    f"backup {state.backup_id} does not match its manifest on page {check.page}: "
                    f"{check.mismatches} different, {check.missing} missing ({'; '.join(check.problems[:3])})",
                    filer=state.run.key,
                    state="nothing attached; the catalog is unchanged",
                    action="fail over to the other generation (backupId) or investigate the backup account",
                )
            if check.last:  # pages past the manifest's last one answer empty: ignored
                return {"checked": checked, "pages": check.page + 1, "executions": state.executions + 1}
        page += VERIFY_BATCH
    context.continue_as_new(plain(replace(state, page=page, checked=checked, executions=state.executions + 1)))
    return None
