"""Retention on the local stack: four generations over six scheduled-size runs (the runner's virtual clock, small
files), the recovery points route, lowering the count (nothing deleted), and a failover to a generation beyond
a and b, even one outside retention."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.fuzz.spec import load_spec, operations, schema_problems
from tests.integration.workflow.test_workflow_backup import blobs
from tests.integration.workflow.test_workflow_compensation import start


@pytest.fixture
def four_env(make_app_env: Callable[..., AppEnv]) -> AppEnv:
    def keep_four(plan: dict[str, Any]) -> None:
        plan["filers"][0]["backup"]["generations"] = 4

    return make_app_env(edit_plan=keep_four)


def newest(env: AppEnv) -> str | None:
    with env.catalog() as catalog:
        return catalog.load(env.filer).newest_verified()


def backup(runner: Any, env: AppEnv, run: int) -> dict[str, Any]:
    env.write(f"/data/run-{run}.txt", f"written before run {run}".encode())
    status = runner.wait_for(start(runner, env), timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:2000]
    assert status["output"]["status"] == "verified", status["output"]
    return status["output"]


def recovery_points(runner: Any, env: AppEnv) -> dict[str, Any]:
    reply = http_call("GET", f"{runner.base_url}/api/filers/primary/{env.filer_name}/recovery-points")
    assert reply.status == 200, reply.body
    body = reply.json()
    op = next(o for o in operations() if o.operation_id == "list_recovery_points")
    assert schema_problems(load_spec(), op.response_schema(200), body) == []
    return body


def inventories(env: AppEnv, generations: str) -> dict[str, dict[str, tuple]]:
    return {g: blobs(env.backup_container(g)) for g in generations}


def test_four_generations_six_runs_then_lowered_to_two(
    four_env: AppEnv, durable_runner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = four_env
    runner = durable_runner(function_app.app, clock=env.clock)
    assert env.filer.generation_containers() == tuple(f"{env.filer_name}-{g}" for g in "abcd")
    outputs = []
    for run in range(6):
        before = newest(env)
        out = backup(runner, env, run)
        assert out["generation"] != before  # never the newest verified
        outputs.append(out)
        env.clock.advance(3600)  # an hour between runs
    # Written in order, then the oldest verified again.
    assert [o["generation"] for o in outputs] == ["a", "b", "c", "d", "a", "b"]
    assert [o["container"] for o in outputs] == [f"{env.filer_name}-{g}" for g in "abcdab"]
    for g in "cd":  # the app created the containers beyond a and b
        assert env.backup_container(g).exists()

    points = recovery_points(runner, env)
    listed = points["recovery_points"]
    # Newest first: runs 6, 5, 4, 3 (runs 1 and 2 were overwritten by 5 and 6).
    assert [p["backup_id"] for p in listed] == [o["backup_id"] for o in reversed(outputs[2:])]
    assert [p["generation"] for p in listed] == ["b", "a", "d", "c"]
    assert points["newest"] == outputs[5]["backup_id"] and points["outside_retention"] == []
    consistent = [p["consistent_point"] for p in listed]
    assert all(consistent) and consistent == sorted(consistent, reverse=True)
    for point, out in zip(listed, reversed(outputs[2:]), strict=True):
        held = blobs(env.backup_container(point["generation"]))
        assert point["consistent_point"] < point["verified_at"]
        assert point["size_bytes"] == sum(b[0] for b in held.values()) and point["blobs"] == len(held)
        assert point["key_version"] == out["key_secret_version"] and point["key_version"]
        assert point["verification"] == {
            "result": "verified",
            "blobs": out["listed"],
            "copied": out["copied"],
            "mismatches": 0,
            "extras": 0,
        }
        assert point["manifest"] == "complete" and point["outside_retention"] is False

    # Lower to two: c and d fall outside retention, listed and kept, never written or deleted.
    kept = inventories(env, "cd")
    lowered = json.loads(json.dumps(env.plan_json))
    lowered["filers"][0]["backup"]["generations"] = 2
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(lowered))
    points = recovery_points(runner, env)
    assert points["generations"] == 2 and points["outside_retention"] == ["c", "d"]
    assert [(p["generation"], p["outside_retention"]) for p in points["recovery_points"]] == [
        ("b", False),
        ("a", False),
        ("d", True),
        ("c", True),
    ]
    with caplog.at_level(logging.WARNING, logger="vfxtdr.catalog"):
        seventh = backup(runner, env, 6)
    assert seventh["generation"] == "a"  # the older of a (run 5) and b (run 6); c and d are not candidates
    assert any("generations c, d are outside retention" in r.getMessage() for r in caplog.records)
    assert inventories(env, "cd") == kept
    after = recovery_points(runner, env)
    assert [p["generation"] for p in after["recovery_points"]] == ["a", "b", "d", "c"]
    assert after["outside_retention"] == ["c", "d"]

    # A failover takes any of them: here generation d, outside retention (run 4's files, not run 5's).
    fourth = outputs[3]
    reply = http_call(
        "POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}?backupId={fourth['backup_id']}"
    )
    assert reply.status == 202, reply.body
    failover = runner.wait_for(reply.json()["id"], timeout=240)
    assert failover["runtimeStatus"] == "Completed", json.dumps(failover, indent=1)[:2000]
    assert failover["output"]["backup_id"] == fourth["backup_id"]
    assert failover["output"]["container"] == f"{env.filer_name}-d"
    for run in range(4):
        assert env.read(f"/data/run-{run}.txt", cluster="dr") == f"written before run {run}".encode()
    assert {f["path"] for f in env.listing("/data", cluster="dr")} == {f"/data/run-{run}.txt" for run in range(4)}
