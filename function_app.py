"""The Functions app: one DFApp that registers each workflow's blueprint, plus a health probe."""

from __future__ import annotations

import json
import logging

import azure.durable_functions as df
import azure.functions as func

import activities
from orchestrators import backup, copy, failover, readd
from shared.core.codec import alias_modules
from shared.plan.load import PlanError, load_plan_from_env
from shared.runbook.payloads import FORMER_MODULES
from triggers import http_api, timer

# The Azure SDKs log every HTTP request at INFO; during a copy that would flood Application Insights.
logging.getLogger("azure").setLevel(logging.WARNING)

# Runs started before the payload modules moved replay history whose envelopes name the old module paths.
alias_modules(FORMER_MODULES)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

# --- Blueprints -------------------------------------------------------------------------------------------
# One df.Blueprint per orchestrator/activity module, registered here so the worker indexes them.
for blueprint in (backup.bp, copy.bp, readd.bp, failover.bp, http_api.bp, timer.bp, *activities.blueprints()):
    app.register_functions(blueprint)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness and plan validity for probes. Anonymous, so it names where problems are, not what they are."""
    try:
        load_plan_from_env()
        plan_state = "valid"
    except PlanError as exc:
        # The problems hold no secrets (the plan holds only secret names); operators see them in the logs.
        logging.warning("the DR plan is invalid: %s", "; ".join(exc.problems))
        where = ", ".join(p.path for p in exc.details)
        plan_state = (f"invalid: {len(exc.details)} problem(s) at {where}; "
                      "run `python -m shared.plan validate`")
    return func.HttpResponse(json.dumps({"status": "ok", "plan": plan_state}), status_code=200,
                             mimetype="application/json")
