"""The app's own run URLs: a run's status, cancelling a backup, approving its mass deletes or overwrites.

The Durable webhooks' URLs carry the system key, and that key can raise any event, terminate, purge, rewind
and start any orchestrator with any input. So the app never hands them out: its routes answer with these
instead, which need a function key, serve only the runs this app makes (shared/runbook/run_ids.py; any other
id is 404, as if it did not exist) and do one thing each.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.core.clock import to_iso
from shared.runbook.payloads import APPROVE_CHANGES_EVENT, APPROVE_DELETES_EVENT, CANCEL_EVENT
from shared.runbook.run_ids import BACKUP, COPY, DRILL, RunId, parse_run_id
from triggers.common import RUNNING, Refusal, caller, check_body_size, refuse, reply, run_url

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.runs")

AWAITING_APPROVAL = "awaiting_approval"  # the backup run's step while it waits for approve_deletes
AWAITING_CHANGE_APPROVAL = "awaiting_change_approval"  # ... and for approve_changes (orchestrators/change_guard.py)


async def _run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> tuple[RunId, Any]:
    """The run the route names and its status; 404 for an id this app does not make or no such run."""
    text = req.route_params.get("id", "")
    run = parse_run_id(text)
    status = await client.get_status(text) if run is not None else None
    if run is None or not status:
        raise Refusal(404, f"no run {text[:120]!r} of this app")
    return run, status


def _custom(status: Any) -> dict[str, Any]:
    custom = status.custom_status
    if isinstance(custom, str):
        try:
            custom = json.loads(custom)
        except ValueError:
            return {}
    return custom if isinstance(custom, dict) else {}


def _iso(moment: Any) -> str | None:
    return to_iso(moment) if moment is not None else None


@bp.route(route="runs/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def run_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """A run's status and progress: runtime status, custom status (step, progress), output, times."""
    try:
        check_body_size(req)
        run, status = await _run(req, client)
    except Refusal as err:
        return refuse(err)
    custom = _custom(status)
    live = status.runtime_status in RUNNING
    body: dict[str, Any] = {
        "id": run.id,
        "kind": run.kind,
        "cluster": run.cluster,
        "filer": run.filer,
        "parent": run.parent,
        "runtimeStatus": status.runtime_status.name if status.runtime_status else None,
        "customStatus": status.custom_status,
        "output": status.output,
        "createdTime": _iso(status.created_time),
        "lastUpdatedTime": _iso(status.last_updated_time),
        "statusUri": run_url(req, run.id),
        "cancelUri": run_url(req, run.id, "cancel") if live and run.kind in (BACKUP, DRILL) else None,
    }
    if live and run.kind == BACKUP and custom.get("step") == AWAITING_APPROVAL:
        body["approveDeletesUri"] = run_url(req, run.id, "approve-deletes")
        body["approvalRef"] = custom.get("approval_ref")
    if live and run.kind == BACKUP and custom.get("step") == AWAITING_CHANGE_APPROVAL:
        body["approveChangesUri"] = run_url(req, run.id, "approve-changes")
        body["approvalRef"] = custom.get("approval_ref")
    return reply(200, body)


@bp.route(route="runs/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def cancel_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Stop a running backup at its next wait: it re-adds what it removed (unless a failover fenced it)."""
    who = caller(req)
    try:
        check_body_size(req)
        run, status = await _run(req, client)
        if run.kind == COPY:
            raise Refusal(409, f"{run.id} is a copy pass of backup {run.parent}: cancel that run")
        if run.kind not in (BACKUP, DRILL):
            raise Refusal(409, f"a {run.kind} run takes no cancel: it does not stop half-way; wait for it to end")
        if status.runtime_status not in RUNNING:
            raise Refusal(409, f"{run.id} is not running ({status.runtime_status.name}): nothing to cancel")
        await client.raise_event(run.id, CANCEL_EVENT, {"reason": "operator", "by": who})
    except Refusal as err:
        return refuse(err)
    log.warning("cancel of %s raised by %s", run.id, who or "an unnamed caller")
    return reply(
        202, {"id": run.id, "cancel": "raised: the run stops at its next wait", "statusUri": run_url(req, run.id)}
    )


def _approval_ref(req: func.HttpRequest) -> str:
    """The body `{"approval_ref": "..."}`, exactly; anything else is a 400 naming what is wrong."""
    try:
        body = json.loads(req.get_body() or b"")
    except ValueError:
        raise Refusal(
            400, 'the body must be JSON: {"approval_ref": "<the approval_ref in the run\'s status>"}'
        ) from None
    if not isinstance(body, dict) or set(body) != {"approval_ref"}:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise Refusal(400, f'the body must be exactly {{"approval_ref": "..."}}, got {keys}')
    ref = body["approval_ref"]
    if not isinstance(ref, str) or not ref.strip():
        raise Refusal(400, "approval_ref must be a non-empty string (the approval_ref in the run's status)")
    return ref


async def _approve(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, step: str, event: str, what: str
) -> func.HttpResponse:
    """Raise `event` on a backup run waiting at `step`; the body echoes the run's current approval reference."""
    who = caller(req)
    try:
        check_body_size(req)
        run, status = await _run(req, client)
        ref = _approval_ref(req)
        custom = _custom(status)
        if run.kind != BACKUP or status.runtime_status not in RUNNING or custom.get("step") != step:
            at = custom.get("step") or status.runtime_status.name
            raise Refusal(409, f"{run.id} is not awaiting a {what} approval (it is at {at})")
        if ref != custom.get("approval_ref"):
            raise Refusal(400, f"approval_ref does not match {run.id}'s current one (read it from its status)")
        await client.raise_event(run.id, event, {"approve": True, "approval_ref": ref, "by": who})
    except Refusal as err:
        return refuse(err)
    log.warning("%s of %s (approval %s) approved by %s", what, run.id, ref, who or "an unnamed caller")
    return reply(202, {"id": run.id, "approval_ref": ref, "by": who or None, "statusUri": run_url(req, run.id)})


@bp.route(route="runs/{id}/approve-deletes", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def approve_deletes(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve the mass deletes a backup run waits for: the body echoes the run's current approval reference."""
    return await _approve(req, client, AWAITING_APPROVAL, APPROVE_DELETES_EVENT, "mass-delete")


@bp.route(route="runs/{id}/approve-changes", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def approve_changes(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve the mass overwrites a backup run's change guard holds: the body echoes its approval reference."""
    return await _approve(req, client, AWAITING_CHANGE_APPROVAL, APPROVE_CHANGES_EVENT, "mass-overwrite")
