"""The read API: `GET /api/filers` (every protected filer: state, where it serves, RPO, drill, live runs) and
`GET /api/filers/{cluster}/{filer}` (one filer with its recorded runs, backups, drills and failovers, paged).

Anonymous at the function level and guarded by triggers/access.py (Entra ID sign-in, or loopback off Azure):
the status page's fetches use it and a browser holds no function key. Bodies never carry a Durable status URL
(they hold the system key): runs are linked as `/api/runs/{id}`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.plan.load import Filer, Plan
from shared.runbook import report as rep
from shared.runbook import report_history as hist
from shared.runbook import services
from shared.runbook.report_catalog import read_history, read_view
from triggers import access
from triggers.common import RUNNING, Refusal, find_filer, load_plan, refuse, reply

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.read")

PAGE_DEFAULT, PAGE_MAX = 1, 100_000
SIZE_DEFAULT, SIZE_MAX = 20, 100
_DIGITS = re.compile(r"[0-9]{1,6}")


def denied(req: func.HttpRequest) -> func.HttpResponse | None:
    """The refusal of a caller the access rules do not admit (logged without any header value)."""
    refusal = access.check(req.url, dict(req.headers))
    if refusal is None:
        return None
    log.warning("read API refused %s: %s", req.url.split("?", 1)[0][:200], refusal.reason)
    return reply(refusal.status, {"error": refusal.reason})


def _bounded(req: func.HttpRequest, name: str, default: int, high: int) -> int:
    value = req.params.get(name)
    if value is None:
        return default
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= high:
        raise Refusal(400, f"query parameter {name}: expected a whole number from 1 to {high}, got {value[:40]!r}")
    return int(value)


def now() -> datetime:
    return datetime.fromtimestamp(services.now(), UTC)


async def live_runs(client: df.DurableOrchestrationClient, ids: dict[str, str]) -> list[rep.RunInfo]:
    """The runs among ids that Durable reports in progress, with their custom status."""
    statuses = await asyncio.gather(*(client.get_status(i) for i in ids))
    return [
        rep.RunInfo(i, kind, status.runtime_status.value, status.custom_status)
        for (i, kind), status in zip(ids.items(), statuses, strict=True)
        if status and status.runtime_status in RUNNING
    ]


async def _summary(client: df.DurableOrchestrationClient, plan: Plan, filer: Filer, moment: datetime) -> dict[str, Any]:
    view = await asyncio.to_thread(read_view, plan, filer)
    runs = await live_runs(client, {**rep.run_ids(filer, view.state), **rep.drill_ids(view.drills)})
    facts = rep.FilerFacts(filer, view.state, view.backup_entry, view.drills, runs, view.problem, view.reprotect)
    return rep.report(plan, facts, moment)


@bp.route(route="filers", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def list_filers(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Every filer of the plan as the status page shows it."""
    refused = denied(req)
    if refused is not None:
        return refused
    try:
        plan = await asyncio.to_thread(load_plan)
    except Refusal as err:
        return refuse(err)
    moment = now()
    filers = await asyncio.gather(*(_summary(client, plan, f, moment) for f in plan.filers))
    return reply(
        200,
        {
            "generated_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "rpo_hours": plan.rpo_hours,
            "amber_factor": rep.AMBER_FACTOR,
            "filers": list(filers),
        },
    )


@bp.route(route="filers/{cluster}/{filer}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
async def get_filer(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One filer: its report, and its recorded runs, backups, drills and failovers, newest first, paged."""
    refused = denied(req)
    if refused is not None:
        return refused
    try:
        page = _bounded(req, "page", PAGE_DEFAULT, PAGE_MAX)
        size = _bounded(req, "pageSize", SIZE_DEFAULT, SIZE_MAX)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, req.route_params["cluster"], req.route_params["filer"])
        body = await _detail(client, plan, filer, page, size)
    except Refusal as err:
        return refuse(err)
    return reply(200, body)


async def _detail(
    client: df.DurableOrchestrationClient, plan: Plan, filer: Filer, page: int, size: int
) -> dict[str, Any]:
    try:
        history = await asyncio.to_thread(read_history, plan, filer)
    except Exception as err:  # the catalog is unreachable: say so (a 503, not a report of a good state)
        log.warning(
            "read API: the catalog of %s could not be read: %s: %s",
            filer.key,
            type(err).__name__,
            str(err).split("\n", 1)[0][:300],
        )
        raise Refusal(
            503, f"the catalog of {filer.key} could not be read ({type(err).__name__}); see the app's log"
        ) from None
    state = history.state
    found = rep.newest_verified(history.reprotect if history.reprotect is not None else state)
    entry = next((b for b in history.backups if found and b.get("backup_id") == found[1].backup_id), None)
    runs = await live_runs(client, {**rep.run_ids(filer, state), **rep.drill_ids(history.drills)})
    facts = rep.FilerFacts(filer, state, entry, history.drills, runs, reprotect=history.reprotect)
    summary = rep.report(plan, facts, now())
    backups = hist.newest_first([hist.backup_view(b, state) for b in history.backups], "started_at", "finished_at")
    drills = hist.newest_first([rep.drill_view(d) for d in history.drills], "started_at", "finished_at")
    failovers = hist.newest_first([hist.failover_view(f) for f in history.failovers], "at")
    return {
        "filer": summary,
        "runs": hist.paged(hist.timeline(backups, failovers, drills), page, size),
        "backups": hist.paged(backups, page, size),
        "drills": hist.paged(drills, page, size),
        "failovers": hist.paged(failovers, page, size),
    }
