"""The attach activity: one idempotent step of a re-add or failover attach (see shared/attach.py)."""

from __future__ import annotations

import azure.durable_functions as df

from activities._payload import payload
from shared import attach
from shared.workflow import AttachRequest, AttachStep

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def attach_step(request: AttachRequest) -> AttachStep:
    return attach.attach_step(payload(AttachRequest, request))
