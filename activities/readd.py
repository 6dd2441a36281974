"""The attach activity: one idempotent step of a re-add or failover attach (see shared/runbook/attach.py).

Its input names the run (and, for a failover, the backup): what is attached where is resolved from the run's
snapshot and the catalog."""

from __future__ import annotations

from dataclasses import replace

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import attach, failback
from shared.runbook.payloads import AttachRef, AttachStep
from shared.runbook.run_ids import FAILBACK, parse_run_id

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def attach_step(request: AttachRef) -> AttachStep:
    return attach.attach_step(_request(decode(AttachRef, request)))


def _request(ref: AttachRef) -> attach.AttachRequest:
    """A failback's attach at the primary (it names the re-protect backup the run wrote) is the failback's to
    resolve (its snapshot must say failback: shared/runbook/failback.py checks); every other attach is attach's."""
    parsed = parse_run_id(ref.run.instance_id)
    if ref.backup_id is not None and parsed is not None and parsed.kind == FAILBACK:
        return replace(failback.attach_request(ref.run, ref.backup_id), activity_ids=ref.activity_ids)
    return attach.resolve(ref)
