"""Mass-delete approval, failing closed: only an explicit JSON `true` for this run's approval reference approves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# The Durable SDK may hand event data over JSON-encoded once or twice (raise_event quirk): decode at most twice.
MAX_DECODES = 2
RECEIVED_LIMIT = 200


@dataclass(frozen=True)
class ApprovalDecision:
    """What the run decided about an `approve_deletes` event, and what it received (for its status and record)."""

    approved: bool
    reason: str
    received: str
    decided_by: str = ""


def _shown(payload: Any) -> str:
    """The payload as the run reports it: JSON, cut short (an approval carries no secret)."""
    try:
        text = json.dumps(payload, sort_keys=True)
    except (TypeError, ValueError):
        text = f"<{type(payload).__name__}>"
    return text if len(text) <= RECEIVED_LIMIT else text[: RECEIVED_LIMIT - 3] + "..."


def _decoded(payload: Any) -> Any:
    """Text is decoded as JSON at most twice; text that is not JSON stays text (and approves nothing)."""
    for _ in range(MAX_DECODES):
        if not isinstance(payload, str):
            break
        try:
            payload = json.loads(payload)
        except ValueError:
            break
    return payload


def decide(payload: Any, approval_ref: str | None) -> ApprovalDecision:
    """Approve only `{"approve": true, "approval_ref": <this run's reference>}` where `approve` is the JSON
    boolean true (not 1, not "true"). A missing, empty, malformed or foreign approval rejects."""
    received = _shown(payload)
    value = _decoded(payload)
    if not approval_ref:
        return ApprovalDecision(False, "the run has no approval reference to match", received)
    if value is True:
        return ApprovalDecision(False, "a bare true does not name the run's approval reference", received)
    if not isinstance(value, dict):
        return ApprovalDecision(False, f"expected an object, got {type(value).__name__}", received)
    if value.get("approve") is not True:
        return ApprovalDecision(False, '"approve" is not the JSON boolean true', received)
    if value.get("approval_ref") != approval_ref:
        return ApprovalDecision(False, "the approval reference does not match this run's", received)
    by = value.get("by")
    return ApprovalDecision(True, "approved", received, by if isinstance(by, str) else "")
