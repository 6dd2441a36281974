"""The health probe (`GET /api/health`): the app's door for liveness checks."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from shared.plan.load import PlanError, load_plan_from_env

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness and plan validity for probes. Anonymous, so it names where problems are, not what they are."""
    try:
        load_plan_from_env()
        plan_state = "valid"
    except PlanError as exc:
        # The problems hold no secrets (the plan holds only secret names); operators see them in the logs.
        logging.warning("the DR plan is invalid: %s", "; ".join(exc.problems))
        where = ", ".join(p.path for p in exc.details)
        plan_state = f"invalid: {len(exc.details)} problem(s) at {where}; run `python -m shared.plan validate`"
    return func.HttpResponse(
        json.dumps({"status": "ok", "plan": plan_state}), status_code=200, mimetype="application/json"
    )
