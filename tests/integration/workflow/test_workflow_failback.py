"""Failback end to end: back up → lose the primary region → fail over → change files at DR → the region returns →
re-protect backup (from the DR cluster into the primary region's account) → fail back → every file reads back
through the primary cluster, the original source container untouched, protection in the normal direction again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.stack.ports import free_port
from shared.catalog.store import ATTACHED, Catalog, FilerState
from shared.runbook.home import REPROTECT, home_of, reprotect_containers, reprotect_filer
from shared.runbook.payloads import failback_instance_id, readd_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import VSERVER, AppEnv
from tests.integration.workflow.test_workflow_failover import DIRTY, FILES, backup_now, snapshot, write_files
from tests.integration.workflow.test_workflow_retention import recovery_points

CHANGED_AT_DR = {
    "/data/nested/deep/file.txt": b"changed while the filer served from the DR cluster",
    "/scratch/new-at-dr.txt": b"written at DR only",
}
DELETED_AT_DR = "/scratch/report.csv"


def _plan_without_primary(env: AppEnv) -> dict[str, Any]:
    """The plan as the app sees it with the primary region gone: the source account and the primary cluster
    answer at dead addresses."""
    plan = json.loads(json.dumps(env.plan_json))
    account = plan["filers"][0]["source"]["account"]
    plan["filers"][0]["source"]["blob_endpoint"] = f"http://127.0.0.1:{free_port()}/{account}"
    plan["clusters"][0]["management_address"] = f"127.0.0.1:{free_port()}"
    return plan


def _step(runner: Any, instance_id: str) -> dict[str, Any]:
    custom = (runner.status(instance_id) or {}).get("customStatus")
    return custom if isinstance(custom, dict) else {}


def _reprotect_state(env: AppEnv) -> FilerState:
    """The re-protect side of the catalog: the marks of the runs that back the filer up from DR."""
    home = home_of(env.catalog().load(env.filer), env.filer)
    with Catalog(env.catalog().account, env.plan.catalog_container, side=REPROTECT) as catalog:
        return catalog.load(reprotect_filer(env.filer, home))


def _run(runner: Any, method: str, path: str, timeout: float = 300) -> dict[str, Any]:
    reply = http_call(method, f"{runner.base_url}/api/{path}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=timeout)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:4000]
    return status["output"]


def _shown(runner: Any, env: AppEnv) -> dict[str, Any]:
    """What the read API says of the filer (the list and the detail agree on its state)."""
    listed = http_call("GET", f"{runner.base_url}/api/filers")
    detail = http_call("GET", f"{runner.base_url}/api/filers/primary/{env.filer_name}")
    assert listed.status == 200 and detail.status == 200, (listed.body, detail.body)
    one = detail.json()["filer"]
    assert [f["state"] for f in listed.json()["filers"] if f["filer"] == env.filer_name] == [one["state"]]
    return one


def _fail_over_and_change(env: AppEnv, runner: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Back up, lose the primary region, fail over, change files through the DR cluster, restore the region."""
    write_files(env)
    backup_now(env, runner)
    env.close()
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(_plan_without_primary(env)))
    source_at_outage = snapshot(env.source_container())
    failover = _run(runner, "POST", f"failovers/primary/{env.filer_name}")
    assert failover["target_cluster"] == "dr"
    for path, data in CHANGED_AT_DR.items():
        env.write(path, data, cluster="dr")
    env.client("dr").call("sim.deleteFile", VSERVER, DELETED_AT_DR)
    env.flush(cluster="dr")
    refused = http_call("POST", f"{runner.base_url}/api/failbacks/primary/{env.filer_name}")
    assert refused.status == 409, refused.body  # not re-protected yet (and the primary does not answer)
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(env.plan_json))  # the region is back
    return {"source": source_at_outage, "failover": failover}


def test_failback_brings_every_change_home_and_protection_back(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    before = _fail_over_and_change(env, runner, monkeypatch)
    expected = {**FILES, **DIRTY, **CHANGED_AT_DR}
    del expected[DELETED_AT_DR]

    shown = _shown(runner, env)  # serving at DR with no backup outside the DR region yet
    assert (shown["state"], shown["serving_cluster"], shown["rpo"]["badge"]) == ("failed_over", "dr", "red")

    # Re-protect: the backup route now copies from the DR cluster into the primary region's account.
    reprotect = _run(runner, "POST", f"backups/primary/{env.filer_name}")
    assert reprotect["status"] == "verified"
    assert reprotect["container"] in reprotect_containers(env.filer)
    assert env.client("dr").filer_state(env.filer_name) == "online"  # re-added at DR after its backup
    shown = _shown(runner, env)
    assert (shown["state"], shown["serving_cluster"], shown["rpo"]["badge"]) == ("reprotected", "dr", "green")
    assert shown["last_backup"]["backup_id"] == reprotect["backup_id"]
    assert shown["last_backup"]["container"] == reprotect["container"]
    # The recovery points list it apart from the DR generations: what the failback takes, where it is.
    points = recovery_points(runner, env)
    attached = {p["backup_id"]: p["attached_to"] for p in points["recovery_points"]}  # the DR side
    assert attached[before["failover"]["backup_id"]] == "dr"  # the backup the failover attached, serving there
    rp = points["reprotect"]
    assert (rp["account"], rp["from_cluster"], rp["newest"]) == (
        env.filer.source.account,
        "dr",
        reprotect["backup_id"],
    )
    assert [(p["backup_id"], p["container"]) for p in rp["recovery_points"]] == [
        (reprotect["backup_id"], reprotect["container"])
    ]
    assert rp["recovery_points"][0]["blobs"] and rp["recovery_points"][0]["manifest"] == "complete"

    # Fail back.
    out = _run(runner, "POST", f"failbacks/primary/{env.filer_name}")
    assert out["status"] == "failed_back", out
    home = out["home"]
    assert home["to_cluster"] == "primary" and home["container"] in reprotect_containers(env.filer)
    assert env.filer_name not in env.client("dr").list_core_filers()  # never two clusters serving
    primary = env.client()
    assert primary.filer_state(env.filer_name) == "online"
    assert primary.capture_core_filer(env.filer_name).bucket == f"{env.filer.source.account}/{home['container']}"
    assert {f["path"] for f in env.listing("/")} >= set(expected)
    assert DELETED_AT_DR not in {f["path"] for f in env.listing("/")}
    for path, data in expected.items():
        assert env.read(path) == data, path
    assert snapshot(env.source_container()) == before["source"]  # the original container as the outage left it

    # Protected in the normal direction again: the next scheduled backup runs from home into the DR account.
    state = env.catalog().load(env.filer)
    assert state.failed_over is None and state.fence is None
    assert state.home["side"] == "primary" and env.filer.source.container in state.home["retired"]
    env.clock.advance(2 * 86400)
    runner.trigger("tick")
    after = runner.wait_for(f"backup~primary~{env.filer_name}", timeout=300)
    assert after["runtimeStatus"] == "Completed", json.dumps(after, indent=1)[:3000]
    assert after["output"]["status"] == "verified"
    assert after["output"]["container"] in env.filer.generation_containers()
    shown = _shown(runner, env)
    assert (shown["state"], shown["serving_cluster"], shown["rpo"]["badge"]) == ("protected", "primary", "green")
    assert shown["last_backup"]["backup_id"] == after["output"]["backup_id"]
    assert recovery_points(runner, env)["reprotect"] is None  # at home again: no re-protect side to list
    assert failback_instance_id("primary", env.filer_name) == f"failback~primary~{env.filer_name}"


def test_a_failback_failing_at_the_primary_leaves_the_filer_serving_at_dr(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    _fail_over_and_change(env, runner, monkeypatch)
    expected = {**FILES, **DIRTY, **CHANGED_AT_DR}
    del expected[DELETED_AT_DR]
    refused = http_call("POST", f"{runner.base_url}/api/failbacks/primary/{env.filer_name}")
    assert refused.status == 409 and "no verified re-protect backup" in refused.json()["error"], refused.body
    _run(runner, "POST", f"backups/primary/{env.filer_name}")
    # The primary answers, but refuses to create the filer: the attach there cannot succeed.
    env.refuse_creation(env.filer_name)
    reply = http_call("POST", f"{runner.base_url}/api/failbacks/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=300)
    assert status["runtimeStatus"] == "Failed", json.dumps(status, indent=1)[:3000]
    assert "re-added at the DR cluster" in json.dumps(status["output"])

    dr = env.client("dr")
    assert dr.filer_state(env.filer_name) == "online"
    assert env.filer_name not in env.client().list_core_filers()  # the fenced primary filer was retired first
    for path, data in expected.items():
        assert env.read(path, cluster="dr") == data, path
    state = env.catalog().load(env.filer)
    assert state.failed_over is not None and state.home["side"] == "dr"  # still failed over: fail back again later


def test_failback_route_refusals(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    for path, code, words in (
        ("failbacks/primary/no-such-filer", 404, "no-such-filer"),
        (f"failbacks/nowhere/{env.filer_name}", 404, "nowhere"),
        (f"failbacks/primary/{env.filer_name}", 409, "has not failed over"),
    ):
        answer = http_call("POST", f"{runner.base_url}/api/{path}")
        assert answer.status == code and words in answer.json()["error"], (path, answer.body)
    assert runner.statuses() == []
    assert env.client().filer_state(env.filer_name) == "online"


@pytest.mark.parametrize("by", ["tick", "route"])
def test_a_filer_a_terminated_reprotect_backup_left_removed_is_re_added_at_dr(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    _fail_over_and_change(env, runner, monkeypatch)
    readd_route = f"{runner.base_url}/api/filers/primary/{env.filer_name}/readd"
    nothing = http_call("POST", readd_route)  # serving at DR, nothing removed there: the route says so
    assert nothing.status == 409 and "nothing to re-add" in nothing.json()["error"], nothing.body
    assert "override=failed-over" in nothing.json()["error"]
    expected = {**FILES, **DIRTY, **CHANGED_AT_DR}
    del expected[DELETED_AT_DR]
    dr = env.client("dr")
    captured = dr.capture_core_filer(env.filer_name)
    primary_before = env.client().list_core_filers()
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    iid = reply.json()["id"]
    # The clock only moves while the condition is false: the re-protect run stops in its final copy, the DR filer
    # removed; an operator terminates it (and its copy), so nothing of it re-adds the filer.
    runner.run_until(lambda: _step(runner, iid).get("step") == "copy", timeout=120)
    child = _step(runner, iid)["copy_instance"]
    runner.terminate(iid, "operator")
    runner.terminate(child, "operator")
    runner.run_until(lambda: all(runner.status(i)["runtimeStatus"] == "Terminated" for i in (iid, child)), timeout=30)
    assert dr.filer_state(env.filer_name) == "removed"
    rp = _reprotect_state(env)
    assert rp.removed_by_app is not None and rp.removed_by_app["instance_id"] == iid

    readd = readd_instance_id("primary", env.filer_name)
    if by == "tick":
        runner.trigger("tick")
    else:  # the operator's re-add replays the re-protect run's record at the DR cluster, not at the primary
        reply = http_call("POST", readd_route)
        assert reply.status == 202 and reply.json()["id"] == readd, reply.body
    status = runner.wait_for(readd, timeout=120)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["status"] == "readded", status["output"]
    assert runner.status(iid)["runtimeStatus"] == "Terminated"  # no re-protect backup while the filer was removed

    assert dr.filer_state(env.filer_name) == "online"
    assert dr.capture_core_filer(env.filer_name).junctions == captured.junctions
    for path, data in expected.items():
        assert env.read(path, cluster="dr") == data, path
    assert env.client().list_core_filers() == primary_before  # nothing was re-added at the primary
    rp = _reprotect_state(env)
    assert rp.removed_by_app is None and rp.needs_attention is None
    assert "writing" not in {g.status for g in rp.generations.values()}
    state = env.catalog().load(env.filer)
    assert state.failed_over is not None and home_of(state, env.filer).side == "dr"  # still failed over
    again = http_call("POST", readd_route)  # re-added: nothing left to re-add
    assert again.status == 409 and "nothing to re-add" in again.json()["error"], again.body
    runner.trigger("tick")  # reconciled once: no second re-add
    assert runner.status(readd)["createdTime"] == status["createdTime"]


def test_a_reprotect_backup_while_the_primary_region_is_down_fails_fast_and_changes_nothing(
    app_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    write_files(env)
    backup_now(env, runner)
    env.close()
    down = _plan_without_primary(env)
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(down))
    _run(runner, "POST", f"failovers/primary/{env.filer_name}")
    rp_before = _reprotect_state(env).to_json()
    iid = f"backup~primary~{env.filer_name}"

    # The scheduled re-protect backup starts, and its preflight names what does not answer within seconds: the
    # storage probes no longer ride out minutes of connection backoff (wall-clock bound, far below it).
    runner.trigger("tick")
    status = runner.wait_for(iid, timeout=60)
    assert status["runtimeStatus"] == "Failed", json.dumps(status, indent=1)[:3000]
    error = json.dumps(status["output"])
    account = down["filers"][0]["source"]["account"]
    assert "preflight failed" in error and f"backup account {account}" in error, error
    assert "cluster primary" in error and "nothing was suspended, removed or written" in error, error
    assert env.client("dr").filer_state(env.filer_name) == "online"
    assert _reprotect_state(env).to_json() == rp_before  # no generation reserved, no mark
    # The occurrence is taken: the next tick starts no second run while the region is still down.
    created = status["createdTime"]
    runner.trigger("tick")
    runner.run_until_idle(timeout=30)
    assert runner.status(iid)["createdTime"] == created
    assert [s["instanceId"] for s in runner.statuses()].count(iid) == 1


def test_recovery_points_of_a_filer_serving_at_a_cluster_the_plan_dropped_is_a_503_naming_it(
    app_env: AppEnv, durable_runner
) -> None:
    """The catalog says the filer serves at DR cluster `gone`, which the plan no longer lists: the re-protect side
    cannot be placed, and the route says so (it read nothing of it, and changed nothing)."""
    import function_app

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)

    def served_at_a_dropped_cluster(state: FilerState) -> None:
        gen = state.generations["a"]
        gen.status, gen.backup_id = ATTACHED, "20270101T000000Z-00000000"
        state.failed_over = {"generation": "a", "target_cluster": "gone"}
        state.home = {"side": "dr", "cluster": "gone", "container": gen.container, "generation": "a"}

    with env.catalog() as catalog:
        catalog.update(env.filer, served_at_a_dropped_cluster)
        before = catalog.load(env.filer).to_json()
    reply = http_call("GET", f"{runner.base_url}/api/filers/primary/{env.filer_name}/recovery-points")
    assert reply.status == 503, reply.body
    error = reply.json()["error"]
    assert "cluster gone" in error and "dr_clusters" in error and env.filer.key in error, error
    with env.catalog() as catalog:
        assert catalog.load(env.filer).to_json() == before
