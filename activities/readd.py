"""The attach activity: one idempotent step of a re-add or failover attach (see shared/runbook/attach.py).

Its input names the run (and, for a failover, the backup): what is attached where is resolved from the run's
snapshot and the catalog."""

from __future__ import annotations

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import attach
from shared.runbook.payloads import AttachRef, AttachStep

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def attach_step(request: AttachRef) -> AttachStep:
    return attach.attach_step(attach.resolve(decode(AttachRef, request)))
