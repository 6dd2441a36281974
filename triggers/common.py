"""What the HTTP routes and the timer share: plan lookup, running instances, catalog states, JSON replies, and
the HTTP status of each reason the domain gives for refusing a request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import AzureError

from shared.azure.keyvault import KeyVaultError
from shared.catalog.store import FilerState
from shared.plan.load import ENV_PLAN, ENV_PLAN_FILE, Filer, Plan, PlanError
from shared.runbook import record as catalog_ops
from shared.runbook import services
from shared.runbook.blockers import Blocker, Reason

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


# Every reason has its status here, so a new reason needs a decision: 404 names something that does not exist.
STATUS: dict[Reason, int] = {
    Reason.RUNNING: 409,
    Reason.FAILED_OVER: 409,
    Reason.NEEDS_ATTENTION: 409,
    Reason.AWAITING_READD: 409,
    Reason.NOTHING_TO_READD: 409,
    Reason.NO_VERIFIED_BACKUP: 409,
    Reason.UNKNOWN_BACKUP: 404,
    Reason.NOT_VERIFIED: 409,
    Reason.ATTACHED_ELSEWHERE: 409,
}


def refusal(blocker: Blocker) -> Refusal:
    """The HTTP answer to a reason the domain gives."""
    return Refusal(STATUS[blocker.reason], blocker.message)


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
    """The plan, or a Refusal naming the app setting to fix. It may read a file: async callers use to_thread."""
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
    """The filer's catalog state (I/O in a thread: the routes are async). A catalog that cannot be read is a
    503 that names the filer: nothing may start without the catalog's say (fail closed), and retrying later helps."""
    try:
        states = await asyncio.to_thread(catalog_ops.load_states, plan, [filer])
    except (AzureError, KeyVaultError, OSError) as err:
        status = getattr(err, "status_code", None) or getattr(err, "status", None)
        problem = f"{type(err).__name__}{f' {status}' if status else ''}"
        log.warning("the catalog of %s cannot be read: %s", filer.key, problem)
        raise Refusal(503, f"the catalog of {filer.key} in account {filer.backup.account} cannot be read "
                           f"({problem}); nothing was started: retry when the backup account answers") from None
    return states[filer.key]

