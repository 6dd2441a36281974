"""Whole-cluster failover (`POST /api/failovers/{cluster}`): every protected filer fails over as its own run; one
filer's failure does not stop the others and is named in the result."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.runbook.payloads import failover_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_failover import FILES, backup_now, write_files


def _second_filer(plan: dict[str, Any]) -> None:
    """A second filer of the cluster, never backed up: its failover has nothing to attach."""
    first = plan["filers"][0]
    plan["filers"].append(
        {
            **json.loads(json.dumps(first)),
            "name": f"{first['name']}-two",
            "source": {**first["source"], "container": f"{first['source']['container']}-two"},
        }
    )


def test_cluster_failover_serves_every_filer_it_can_and_names_the_one_it_cannot(
    make_app_env: Callable[..., AppEnv], durable_runner
) -> None:
    import function_app

    env = make_app_env(edit_plan=_second_filer)
    two = env.plan.filers[1].name
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)

    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary")
    assert reply.status == 202, reply.body
    assert reply.json()["id"] == "cluster-failover~primary"
    status = runner.wait_for(reply.json()["id"], timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["status"] == "partial" and out["failed"] == [two]
    by_filer = {r["filer"]: r for r in out["filers"]}
    assert set(by_filer) == {env.filer_name, two}
    assert by_filer[env.filer_name]["status"] == "serving"
    assert by_filer[env.filer_name]["backup_id"] == backup["backup_id"]
    assert by_filer[env.filer_name]["rpo_s"] >= 0 and by_filer[env.filer_name]["rto_s"] > 0
    assert by_filer[two]["status"] == "failed" and "no verified backup" in by_filer[two]["error"]
    assert out["rto_s"] >= by_filer[env.filer_name]["rto_s"]

    # Each filer's failover ran under its own instance id (the one-run-per-filer rules hold).
    for name in (env.filer_name, two):
        assert runner.status(failover_instance_id("primary", name)) is not None
    for path, data in FILES.items():
        assert env.read(path, cluster="dr") == data, path
    assert two not in env.client("dr").list_core_filers()
    catalog = env.catalog()
    assert catalog.load(env.filer).failed_over["backup_id"] == backup["backup_id"]
    assert not catalog.load(env.plan.filers[1]).failed_over


def test_cluster_failover_requests_that_cannot_succeed_are_refused(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    for path, code, words in (
        ("failovers/nowhere", 404, "no protected cluster 'nowhere'"),
        ("failovers/primary?target=primary", 404, "is not one of the plan's dr_clusters"),
        ("failovers/primary?verify=most", 400, "expected sample, full or none"),
    ):
        answer = http_call("POST", f"{runner.base_url}/api/{path}")
        assert answer.status == code and words in answer.json()["error"], (path, answer.body)
    assert runner.statuses() == []
