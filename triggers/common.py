"""What the HTTP routes and the timer share: plan lookup, running runs, starting one (a start the engine refuses
is a conflict), catalog states, JSON replies with the app's own run URLs, the caller's identity, and the HTTP
status of each reason the domain gives for refusing a request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import AzureError

from shared.azure.keyvault import KeyVaultError
from shared.azure.storage import StorageConfigError
from shared.blobcopy.errors import describe_http_error
from shared.catalog.store import FilerState
from shared.plan.load import ENV_PLAN, ENV_PLAN_FILE, Filer, Plan, PlanError
from shared.runbook import record as catalog_ops
from shared.runbook import services
from shared.runbook.blockers import Blocker, Reason
from triggers.access import AUTH_ENABLED, on_platform

log = logging.getLogger("vfxtdr.triggers")

# A suspended run still owns its filer (it may have removed it): it counts as running for every decision.
RUNNING = {
    df.OrchestrationRuntimeStatus.Running,
    df.OrchestrationRuntimeStatus.Pending,
    df.OrchestrationRuntimeStatus.ContinuedAsNew,
    df.OrchestrationRuntimeStatus.Suspended,
}
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
    Reason.FENCED: 409,
    Reason.NOT_FAILED_OVER: 409,
    Reason.NO_REPROTECT_BACKUP: 409,
    Reason.PRIMARY_UNREACHABLE: 409,
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
    503 naming the filer and its backup account: nothing may start without the catalog's say (fail closed)."""
    return (await filer_states(plan, [filer]))[filer.key]


async def filer_states(plan: Plan, filers: list[Filer]) -> dict[str, FilerState]:
    """Each filer's catalog state, by key; the first catalog that cannot be read is the 503 of `filer_state`."""
    out: dict[str, FilerState] = {}
    for filer in filers:
        states = await catalog_io(filer, catalog_ops.load_states, plan, [filer])
        out[filer.key] = states[filer.key]
    return out


async def reprotect_state(plan: Plan, filer: Filer, state: FilerState) -> FilerState | None:
    """The re-protect side's state of a filer serving at DR (its re-protect runs' removal and attention marks), or
    None when it does not serve at DR; unreadable: the 503 of `filer_state`."""
    states = await catalog_io(filer, catalog_ops.load_reprotect_states, plan, {filer.key: state})
    return states.get(filer.key)


async def catalog_io(filer: Filer, work: Any, *args: Any, what: str = "read") -> Any:
    """work(*args) in a thread; a catalog that cannot be read (or written) is a 503 naming the filer and its backup
    account: nothing may start without the catalog's say (fail closed)."""
    try:
        return await asyncio.to_thread(work, *args)
    except (AzureError, KeyVaultError, StorageConfigError, OSError) as err:
        log.warning("the catalog of %s cannot be %s: %s", filer.key, what, type(err).__name__)
        raise Refusal(
            503,
            f"the catalog of filer {filer.key} in backup account {filer.backup.account} cannot be "
            f"{what}: {describe_http_error(err)}; nothing was started. The dry run (?dryRun=true on the "
            "backup route) checks every credential",
        ) from None


async def running_blocker(client: df.DurableOrchestrationClient, ids: tuple[str, ...], wait: str) -> None:
    """Refuse (409) while any of these runs is in progress; `wait` says what the operator can do."""
    busy = sorted(await running_ids(client, list(ids)))
    if busy:
        raise refusal(Blocker(Reason.RUNNING, f"{busy[0]} is running; {wait}"))


# The message of the host's refusal to start an id whose instance is still live (overridableExistingInstanceStates
# NonRunningStates): an HTTP 500 whose JSON body `start_new` raises as a bare Exception, args[0] the dict.
_ALREADY_EXISTS = "already exists"


def is_start_conflict(exc: BaseException) -> bool:
    """Whether `start_new` failed because an instance with that id is live (another start won the race)."""
    body = exc.args[0] if exc.args else None
    if not isinstance(body, dict):
        return False
    kind = str(body.get("ExceptionType", ""))
    return kind.endswith("OrchestrationAlreadyExistsException") or _ALREADY_EXISTS in str(
        body.get("ExceptionMessage", "")
    )


async def start_run(client: df.DurableOrchestrationClient, name: str, instance_id: str, payload: Any) -> None:
    """Start a run; the engine allows one live instance per id, so a start that lost a race is a 409."""
    try:
        await client.start_new(name, instance_id, payload)
    except Exception as exc:
        if is_start_conflict(exc):
            raise refusal(
                Blocker(Reason.RUNNING, f"{instance_id} is running (started meanwhile); one run per filer at a time")
            ) from None
        raise


# --- the app's own run URLs: never the Durable webhooks (their query string carries the system key) ----------
ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix


def caller(req: func.HttpRequest) -> str:
    """Who asked, where the platform says: App Service authentication sets X-MS-CLIENT-PRINCIPAL-NAME (for a
    caller that presented a token) and drops any copy a client sends. Without it (locally, or on App Service
    with its authentication off) a client could write that header: then nobody is named ("")."""
    env = os.environ
    if not (on_platform(env) and env.get(AUTH_ENABLED, "").strip().lower() == "true"):
        return ""
    return (req.headers.get("X-MS-CLIENT-PRINCIPAL-NAME") or "").strip()[:200]


def run_url(req: func.HttpRequest, instance_id: str, action: str = "") -> str:
    """The absolute URL of /api/runs/{id}[/action] on the host this request came to."""
    origin = urlsplit(req.url)
    path = f"/{ROUTE_PREFIX}/runs/{quote(instance_id, safe='~')}" + (f"/{action}" if action else "")
    return f"{origin.scheme}://{origin.netloc}{path}"


def started(req: func.HttpRequest, instance_id: str, *, cancellable: bool) -> func.HttpResponse:
    """202 for a run a route started: its id and the app's URLs to follow it (cancelUri is null for runs that
    take no cancel: a re-add or a failover does not stop half-way)."""
    status_uri = run_url(req, instance_id)
    body = {
        "id": instance_id,
        "statusUri": status_uri,
        "cancelUri": run_url(req, instance_id, "cancel") if cancellable else None,
    }
    return func.HttpResponse(
        json.dumps(body, indent=2),
        status_code=202,
        mimetype="application/json",
        headers={"Location": status_uri, "Retry-After": "10"},
    )
