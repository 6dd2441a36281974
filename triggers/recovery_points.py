"""GET /api/filers/{cluster}/{filer}/recovery-points: the verified backups a failover or a drill can take."""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import AzureError

from shared.core.codec import RecordError
from shared.core.errors import DrError
from shared.runbook.recovery_points import list_recovery_points as recovery_points_of
from triggers.common import Refusal, check_body_size, find_filer, load_plan, refuse, reply

bp = df.Blueprint()
log = logging.getLogger("vfxtdr.http")


@bp.route(route="filers/{cluster}/{filer}/recovery-points", methods=["GET"])
async def list_recovery_points(req: func.HttpRequest) -> func.HttpResponse:
    """Every verified backup of the filer, newest first: its consistent point, size, key version and
    verification; generations beyond the plan's count are marked outside retention (kept, never deleted). Serving
    at DR, the re-protect backups apart (`reprotect`)."""
    cluster, name = req.route_params["cluster"], req.route_params["filer"]
    try:
        check_body_size(req)
        plan = await asyncio.to_thread(load_plan)
        filer = find_filer(plan, cluster, name)
        try:
            answer = await asyncio.to_thread(recovery_points_of, plan, filer)
        except AzureError as err:  # the type and status only: a storage error may quote a request URL
            status = getattr(err, "status_code", None)
            raise Refusal(
                503,
                f"the catalog of {filer.key} in backup account {filer.backup.account} cannot be "
                f"read: {type(err).__name__}" + (f" (HTTP {status})" if status else ""),
            ) from None
        except DrError as err:  # the catalog and the plan disagree on where the filer serves
            raise Refusal(503, str(err)) from None
        except RecordError as err:
            raise Refusal(
                503, f"the catalog of {filer.key} in backup account {filer.backup.account} cannot be read: {err}"
            ) from None
    except Refusal as err:
        return refuse(err)
    return reply(200, answer)
