"""A whole-cluster drill: every protected filer its own drill under its usual instance id, a bounded number at a
time, one result per filer; one filer failing does not stop the others and is named; refusals are listed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.runbook.drill_payloads import drill_cluster_instance_id
from tests.fixtures.cluster import add_junction, create_filer, new_container
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.drill_support import backup_now, scratch_containers, write_files


def second_filer(env: AppEnv, monkeypatch: pytest.MonkeyPatch, name: str) -> dict[str, Any]:
    """An unencrypted filer `name` on the primary with junction /<name>, plus a plan entry for it and for a filer
    that was never backed up (`never`); the app's plan setting now lists all three."""
    client = env.client()
    made = create_filer(client, env.azurite, name=name, encrypted=False, bucket=new_container(env.azurite, "source"))
    add_junction(client, "vserver", f"/{name}", name)
    client.call("sim.writeFile", "vserver", f"/{name}/file.txt", "c2Vjb25k")  # "second"
    plan = json.loads(json.dumps(env.plan_json))
    template = plan["filers"][0]
    container = made.bucket.split("/")[1]
    for filer, source in ((name, container), ("never", f"never-{env.filer_name}")):
        entry = json.loads(json.dumps(template))
        entry["name"] = filer
        entry["source"]["container"] = source
        entry["backup"]["containers"] = [f"{filer}-{env.filer_name}-a", f"{filer}-{env.filer_name}-b"]
        plan["filers"].append(entry)
    plan["drill"] = {"max_parallel": 1}
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(plan))
    return plan


def test_a_cluster_drill_rehearses_every_filer_one_at_a_time_and_names_the_one_that_failed(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = app_env
    other = f"two-{env.filer_name[3:]}"
    second_filer(env, monkeypatch, other)
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{other}")
    assert reply.status == 202, reply.body
    assert runner.wait_for(reply.json()["id"], timeout=240)["output"]["status"] == "verified"
    # The second filer's drill cannot create its filer on the DR cluster; the first one's can.
    env.refuse_creation(f"drill-{other}", "dr")

    reply = http_call("POST", f"{runner.base_url}/api/drills/primary")
    assert reply.status == 202, reply.body
    run_id = reply.json()["id"]
    assert run_id == drill_cluster_instance_id("primary")
    status = runner.wait_for(run_id, timeout=480)
    env.client("dr").call("sim.clearFaults")
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    rows = {r["filer"]: r for r in out["filers"]}
    assert set(rows) == {env.filer_name, other, "never"}
    assert rows[env.filer_name]["status"] == "unverified" and rows[env.filer_name]["rto_s"] > 0
    assert rows[env.filer_name]["instance_id"] == f"drill~primary~{env.filer_name}"
    assert rows[other]["status"] == "failed" and "injected: full" in rows[other]["error"]
    assert rows[other]["instance_id"] == f"drill~primary~{other}"
    assert rows["never"] == {"filer": "never", "status": "skipped", "error": "the filer has no verified backup"}
    assert out["counts"] == {"failed": 1, "skipped": 1, "unverified": 1} and out["overall_s"] > 0

    # Each filer ran as its own drill, under its usual id, never two at once (max_parallel 1).
    drills = [runner.status(f"drill~primary~{f}", show_history=True) for f in (env.filer_name, other)]
    spans = sorted((d["createdTime"], d["lastUpdatedTime"]) for d in drills)
    assert spans[0][1] <= spans[1][0], spans
    assert [d["runtimeStatus"] for d in drills] == ["Completed", "Failed"]
    history = runner.status(run_id, show_history=True)["historyEvents"]
    ended = sorted(e["EventType"] for e in history if e.get("FunctionName") == "drill_orchestrator")
    assert ended == ["SubOrchestrationInstanceCompleted", "SubOrchestrationInstanceFailed"]
    assert scratch_containers(env) == []
    assert not [f for f in env.client("dr").list_core_filers() if f.startswith("drill-")]
