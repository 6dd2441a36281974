"""The attach activity: one idempotent step of a re-add or failover attach (see shared/runbook/attach.py)."""

from __future__ import annotations

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import attach
from shared.runbook.payloads import AttachRequest, AttachStep

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def attach_step(request: AttachRequest) -> AttachStep:
    return attach.attach_step(decode(AttachRequest, request))
