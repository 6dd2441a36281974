"""The Functions app: one DFApp that registers every blueprint (workflows, activities, routes, timer, health)."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

import activities
from orchestrators import (
    backup,
    copy,
    drill,
    drill_cluster,
    failback,
    failover,
    failover_cluster,
    failover_verify,
    readd,
)
from shared.core.codec import alias_modules
from shared.runbook.payloads import FORMER_MODULES
from triggers import drills, failbacks, health, http_api, read_api, recovery_points, runs, status_page, timer
from triggers import failover_cluster as cluster_routes

# The Azure SDKs log every HTTP request at INFO; during a copy that would flood Application Insights.
logging.getLogger("azure").setLevel(logging.WARNING)

# Runs started before the payload modules moved replay history whose envelopes name the old module paths.
alias_modules(FORMER_MODULES)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

# --- Blueprints -------------------------------------------------------------------------------------------
# One Blueprint per orchestrator/activity/trigger module, registered here so the worker indexes them.
for blueprint in (
    backup.bp,
    copy.bp,
    readd.bp,
    failover.bp,
    failback.bp,
    failover_verify.bp,
    failover_cluster.bp,
    drill.bp,
    drill_cluster.bp,
    http_api.bp,
    runs.bp,
    cluster_routes.bp,
    drills.bp,
    failbacks.bp,
    read_api.bp,
    recovery_points.bp,
    status_page.bp,
    timer.bp,
    health.bp,
    *activities.blueprints(),
):
    app.register_functions(blueprint)
