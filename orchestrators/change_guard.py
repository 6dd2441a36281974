"""The change guard in a backup run: a pass that would overwrite too much of its generation waits for approval.

The copy engine refuses to overwrite past the limit on its own (shared/blobcopy/changes.py); the run then waits
for the `approve_changes` event with the filer online (a held precopy never removed it; a held final pass is
re-added first), exactly as it waits for `approve_deletes`. Approved, the pass runs again and overwrites; not
approved (refused, timed out, cancelled), nothing of it is overwritten and the run ends `changes_not_approved`.
"""

from __future__ import annotations

from datetime import timedelta

from activities import copy as copy_acts
from orchestrators.backup_steps import ChangesHeld, Run, run_copy
from orchestrators.durable_helpers import Gen, activity, now, wait_for_approval
from shared.catalog.store import NOT_APPROVED
from shared.core.clock import to_iso
from shared.core.errors import DrError
from shared.runbook.payloads import APPROVE_CHANGES_EVENT, CopyOutcome, CopyRef

__all__ = ["NOT_APPROVED", "ChangesNotApproved", "approved", "guarded_copy"]


class ChangesNotApproved(DrError):
    """The held overwrites were not approved: the run stops, its generation not overwritten by the pass."""


def approved(run: Run, held: ChangesHeld) -> Gen[bool]:
    """Wait for `approve_changes` (deadline: guard.approval_timeout_hours; a cancel ends the wait); when it
    approves, tell the engine, which then lets the pass overwrite what it planned."""
    context, check = run.context, held.check
    deadline = now(context) + timedelta(hours=run.ctx.guard.approval_timeout_hours)
    run.status.step(
        "awaiting_change_approval",
        copy_pass=held.step,
        changes=check.changes,
        change_base=check.base,
        change_limit=check.limit,
        approval_ref=check.approval_ref,
        approval_event=APPROVE_CHANGES_EVENT,
        approval_deadline=to_iso(deadline),
    )
    decision = yield from wait_for_approval(context, APPROVE_CHANGES_EVENT, check.approval_ref, deadline, run.cancel)
    if not decision.approved:
        run.status.step(
            "changes_not_approved", copy_pass=held.step, reason=decision.reason, received=decision.received or None
        )
        return False
    yield activity(
        context, copy_acts.copy_approve_changes, CopyRef(run.ref, held.job_id, approval_ref=check.approval_ref)
    )
    run.status.step("changes_approved", copy_pass=held.step, approved_by=decision.decided_by or "unknown")
    return True


def guarded_copy(run: Run, job_id: str, step: str) -> Gen[CopyOutcome]:
    """A pass while the filer is online (the precopy): held, it waits for approval, then runs again;
    not approved, ChangesNotApproved (nothing of the pass overwritten)."""
    try:
        return (yield from run_copy(run, job_id, step))
    except ChangesHeld as err:
        held = err
    if not (yield from approved(run, held)):
        raise ChangesNotApproved(
            f"{held.what}: not approved",
            filer=run.ref.key,
            state="online; nothing of the pass overwritten",
            action="back up again, approving the overwrites if they are expected",
        ) from None
    return (yield from run_copy(run, job_id, step, attempt=1))
