"""What the HTTP routes and the timer share: plan lookup, running instances, catalog states, JSON replies."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.catalog.store import FilerState
from shared.plan.load import ENV_PLAN, ENV_PLAN_FILE, Filer, Plan, PlanError
from shared.runbook import record as catalog_ops
from shared.runbook import services

log = logging.getLogger("vfxtdr.triggers")

# A suspended run still owns its filer (it may have removed it): it counts as running for every decision.
RUNNING = {df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending,
           df.OrchestrationRuntimeStatus.ContinuedAsNew, df.OrchestrationRuntimeStatus.Suspended}
# No route reads more than a small JSON body; a bigger one is refused before anything else (docs/openapi.yaml).
MAX_BODY_BYTES = 64 * 1024


class Refusal(Exception):
    """A request this app refuses: an HTTP status and a message that names the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def reply(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, indent=2), status_code=status, mimetype="application/json")


def refuse(err: Refusal) -> func.HttpResponse:
    return reply(err.status, {"error": str(err)})


def check_body_size(req: func.HttpRequest) -> None:
    """Every keyed route calls this first: a body over MAX_BODY_BYTES is a 413, whatever else is wrong."""
    size = len(req.get_body() or b"")
    if size > MAX_BODY_BYTES:
        raise Refusal(413, f"the request body has {size} bytes; the limit is {MAX_BODY_BYTES}")


def load_plan() -> Plan:
    # The operator fixes an app setting: name the one the plan comes from.
    setting = ENV_PLAN_FILE if os.environ.get(ENV_PLAN_FILE, "").strip() else ENV_PLAN
    try:
        return services.load_plan()
    except PlanError as err:
        # Problems name fields and rules only (the plan holds secret names, never secrets).
        raise Refusal(500, f"the DR plan (app setting {setting}) is invalid: " + "; ".join(err.problems)) from None
    except (KeyError, ValueError, OSError) as err:
        raise Refusal(500, f"the DR plan (app setting {setting}) cannot be loaded: {err}") from None


def find_filer(plan: Plan, cluster: str, filer: str) -> Filer:
    try:
        return plan.filer(cluster, filer)
    except LookupError as err:
        raise Refusal(404, str(err).strip("'\"")) from None


async def is_running(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    status = await client.get_status(instance_id)
    return bool(status) and status.runtime_status in RUNNING


async def running_ids(client: df.DurableOrchestrationClient, ids: list[str]) -> set[str]:
    flags = await asyncio.gather(*(is_running(client, i) for i in ids))
    return {i for i, running in zip(ids, flags, strict=True) if running}


async def filer_state(plan: Plan, filer: Filer) -> FilerState:
    """The filer's catalog state (I/O in a thread: the routes are async)."""
    states = await asyncio.to_thread(catalog_ops.load_states, plan, [filer])
    return states[filer.key]


def blocked_by_catalog(state: FilerState) -> str | None:
    """Why the catalog forbids a new backup of this filer now, if it does."""
    if state.failed_over:
        return f"the filer failed over to cluster {state.failed_over.get('target_cluster')}; backups stopped"
    if state.needs_attention:
        return "the filer needs attention (a re-add failed): fix the cluster, then POST .../readd"
    if state.removed_by_app:
        return "the filer is removed and waits for its re-add: POST .../readd"
    return None
