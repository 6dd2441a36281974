"""The app's own run URLs and one run per filer, through the local runner: every 202 points at /api/runs/{id}
(never at a Durable webhook, whose URL carries the system key), the run routes serve only this app's runs,
cancel only a running backup, and two starts racing past the app's own running check end in one run and a 409."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.runbook.payloads import backup_instance_id, readd_instance_id
from tests.fixtures.durable import HttpReply, http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_compensation import at_rest_in

OPERATOR = {"X-MS-CLIENT-PRINCIPAL-NAME": "ops@example.com"}


@pytest.fixture(autouse=True)
def _on_app_service(platform_auth: dict[str, str]) -> None:
    """As on App Service with its authentication on: the operator the platform names is recorded."""


@pytest.fixture
def app_runner(app_env: AppEnv, durable_runner) -> Any:
    import function_app

    return durable_runner(function_app.app, clock=app_env.clock)


def call(runner: Any, method: str, path: str, body: Any = None) -> HttpReply:
    """One request to the app; no answer of the app may carry the system key or point at a Durable webhook."""
    reply = http_call(method, f"{runner.base_url}/api/{path}", body, headers=OPERATOR)
    text = reply.body.decode(errors="replace") + json.dumps(reply.headers)
    assert runner.system_key not in text, (path, text[:500])
    assert "code=" not in text and "/runtime/webhooks/" not in text and "/durabletask/" not in text, text[:500]
    return reply


def test_a_started_run_is_followed_and_cancelled_through_the_apps_own_urls(
    app_env: AppEnv, app_runner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    env, runner = app_env, app_runner
    caplog.set_level(logging.INFO)
    env.write("/data/file.txt", b"running")
    started = call(runner, "POST", f"backups/primary/{env.filer_name}")
    assert started.status == 202, started.body
    links = started.json()
    iid = backup_instance_id("primary", env.filer_name)
    assert links == {
        "id": iid,
        "statusUri": f"{runner.base_url}/api/runs/{iid}",
        "cancelUri": f"{runner.base_url}/api/runs/{iid}/cancel",
    }
    assert started.headers["Location"] == links["statusUri"]

    runner.run_until(at_rest_in(runner, iid, "precopy", "flush", "copy"), timeout=60)
    status = http_call("GET", links["statusUri"])
    body = status.json()
    assert status.status == 200 and body["runtimeStatus"] == "Running" and body["kind"] == "backup"
    assert (body["cluster"], body["filer"]) == ("primary", env.filer_name)
    assert body["customStatus"]["step"] in ("precopy", "flush", "copy") and body["createdTime"].endswith("Z")
    assert body["cancelUri"] == links["cancelUri"] and "approveDeletesUri" not in body
    assert "input" not in body  # what the run was started with is not the status route's business

    cancelled = call(runner, "POST", f"runs/{iid}/cancel")
    assert cancelled.status == 202, cancelled.body
    done = runner.wait_for(iid, timeout=240)
    assert done["output"]["status"] == "cancelled", done["output"]
    raised = [e for e in done["historyEvents"] if e["EventType"] == "EventRaised"]
    assert [e["Name"] for e in raised] == ["cancel"]
    assert any("cancel of" in r.getMessage() and "ops@example.com" in r.getMessage() for r in caplog.records)
    # Nothing fenced it: the filer serves its clients again (a flush it started may still be writing back).
    assert env.client().filer_state(env.filer_name) in ("online", "flushing")
    assert env.client().call("corefiler.get", env.filer_name)[env.filer_name]["clientSuspend"] == "no"

    final = call(runner, "GET", f"runs/{iid}").json()
    assert final["runtimeStatus"] == "Completed" and final["output"]["status"] == "cancelled"
    assert final["cancelUri"] is None
    again = call(runner, "POST", f"runs/{iid}/cancel")
    assert again.status == 409 and "not running" in again.json()["error"]


def test_the_run_routes_serve_only_this_apps_runs(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    # A run this app never makes, even when it exists in the task hub, is 404 as if it did not.
    runner.start_new("readd_orchestrator", "someone-elses-run", {"cluster": "primary", "filer": "nope"})
    runner.run_until_idle(timeout=60)
    for path in (
        "runs/someone-elses-run",
        "runs/backup~primary~no-such-filer",
        "runs/backup~a~b~c",
        f"runs/readd~primary~{env.filer_name}",
    ):
        reply = call(runner, "GET", path)
        assert reply.status == 404 and "no run" in reply.json()["error"], (path, reply.body)
        assert call(runner, "POST", f"{path}/cancel").status == 404
        assert call(runner, "POST", f"{path}/approve-deletes", {"approval_ref": "x"}).status == 404


def test_only_a_backup_takes_a_cancel_and_a_copy_pass_names_its_backup(app_env: AppEnv, app_runner: Any) -> None:
    env, runner = app_env, app_runner
    iid = readd_instance_id("primary", env.filer_name)
    runner.start_new("readd_orchestrator", iid, {"cluster": "primary", "filer": env.filer_name, "format": 2})
    runner.run_until(lambda: (runner.status(iid) or {}).get("runtimeStatus") == "Completed", timeout=60)
    body = call(runner, "GET", f"runs/{iid}").json()
    assert body["kind"] == "readd" and body["output"]["status"] == "nothing_to_do" and body["cancelUri"] is None
    refused = call(runner, "POST", f"runs/{iid}/cancel")
    assert refused.status == 409 and "takes no cancel" in refused.json()["error"]
    env.write("/data/file.txt", b"copied")
    backup = call(runner, "POST", f"backups/primary/{env.filer_name}").json()["id"]
    runner.run_until(lambda: ((runner.status(backup) or {}).get("customStatus") or {}).get("copy_instance"), timeout=60)
    child = runner.status(backup)["customStatus"]["copy_instance"]
    assert child.startswith(f"{backup}~")
    seen = call(runner, "GET", f"runs/{child}").json()
    assert (seen["kind"], seen["parent"]) == ("copy", backup)
    refused = call(runner, "POST", f"runs/{child}/cancel")
    assert refused.status == 409 and "cancel that run" in refused.json()["error"] and backup in refused.json()["error"]
    assert runner.wait_for(backup, timeout=240)["output"]["status"] == "verified"


def test_two_starts_racing_past_the_running_check_make_one_run_and_a_409(
    app_env: AppEnv, app_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app checks for a running run before it starts one, but two requests can both pass that check: the
    engine refuses the second start on the live id (host.json NonRunningStates) and the route answers 409."""
    from triggers import http_api

    env, runner = app_env, app_runner
    checked = threading.Barrier(2, timeout=30)
    real = http_api.running_blocker

    async def both_pass(client: Any, ids: tuple[str, ...], wait: str) -> None:
        await real(client, ids, wait)  # nothing runs yet: both requests pass the app's own check
        await asyncio.to_thread(checked.wait)  # and neither starts before the other has checked

    monkeypatch.setattr(http_api, "running_blocker", both_pass)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: call(runner, "POST", f"backups/primary/{env.filer_name}"), range(2)))
    assert sorted(r.status for r in replies) == [202, 409], [r.body for r in replies]
    refused = next(r for r in replies if r.status == 409).json()["error"]
    assert "started meanwhile" in refused and backup_instance_id("primary", env.filer_name) in refused
    assert [s["instanceId"] for s in runner.statuses()] == [backup_instance_id("primary", env.filer_name)]
    assert (
        runner.wait_for(replies[0].json().get("id") or replies[1].json()["id"], timeout=240)["output"]["status"]
        == "verified"
    )


def test_a_tick_whose_start_is_refused_skips_the_filer_and_keeps_it_due(
    app_env: AppEnv, app_runner: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from triggers import timer

    env, runner = app_env, app_runner
    caplog.set_level(logging.INFO)
    started = call(runner, "POST", f"backups/primary/{env.filer_name}")
    assert started.status == 202
    iid = started.json()["id"]
    created = runner.status(iid)["createdTime"]

    async def nothing_running(client: Any, ids: list[str]) -> set[str]:
        return set()  # as if the run started between the tick's check and its start

    monkeypatch.setattr(timer, "running_ids", nothing_running)
    runner.trigger("tick")  # the start is refused by the engine: a logged skip, not a failed tick
    assert runner.status(iid)["createdTime"] == created
    assert any(
        "schedule:" in r.getMessage() and "skipped" in r.getMessage() and "started meanwhile" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert env.catalog().load(env.filer).last_scheduled is None  # not taken: still due
    assert runner.wait_for(iid, timeout=240)["output"]["status"] == "verified"


def test_a_backup_running_under_the_id_an_earlier_version_gave_still_holds_its_filer(
    app_env: AppEnv, app_runner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """After the upgrade a run started by the previous version (id backup-{cluster}-{filer}) may still be live
    until its next step, which refuses it: meanwhile no new run of the filer starts beside it, from a route or
    the tick, and the run routes still serve it."""
    from shared.runbook.refs import INPUT_FORMAT
    from shared.runbook.run_ids import legacy_run_id

    env, runner = app_env, app_runner
    caplog.set_level(logging.INFO)
    old = legacy_run_id("backup", "primary", env.filer_name)
    # Live under the old id: its first step refuses an id that is not this version's, and the run waits on the
    # retry timer of that step (the virtual clock stands still).
    runner.start_new(
        "backup_orchestrator", old, {"cluster": "primary", "filer": env.filer_name, "format": INPUT_FORMAT}
    )
    runner.run_until_idle(timeout=60)
    assert runner.status(old)["runtimeStatus"] == "Running"
    for path in (f"backups/primary/{env.filer_name}", f"filers/primary/{env.filer_name}/readd"):
        reply = call(runner, "POST", path)
        assert reply.status == 409 and old in reply.json()["error"], (path, reply.body)
    runner.trigger("tick")
    assert [s["instanceId"] for s in runner.statuses()] == [old]
    assert any("already running" in r.getMessage() for r in caplog.records)
    seen = call(runner, "GET", f"runs/{old}").json()
    assert seen["kind"] == "backup" and seen["runtimeStatus"] == "Running" and seen["filer"] is None
    done = runner.wait_for(old, timeout=240)
    assert done["runtimeStatus"] == "Failed" and "is not the backup run" in json.dumps(done["output"])
