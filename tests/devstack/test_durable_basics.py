"""The local Durable runner: sequences, fan-out, failures, the HTTP host, the client, singleton, query."""

from __future__ import annotations

import datetime as dt
import threading

import azure.durable_functions as df
import pytest

from tests.devstack.durable_apps import basics
from tests.fixtures.durable import VIRTUAL_EPOCH, http_call


@pytest.fixture
def runner(durable_runner):
    basics.reset()
    return durable_runner(basics)


def test_sequence_passes_each_result_on(runner):
    iid = runner.start_new("sequence", client_input="Ada")
    status = runner.wait_for(iid, timeout=30)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "HELLO HELLO ADA!"
    assert basics.CALLS == [("greet", "Ada"), ("greet", "Hello Ada"), ("async_shout", "Hello Hello Ada")]
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == ["ExecutionStarted", "TaskCompleted", "TaskCompleted", "TaskCompleted", "ExecutionCompleted"]
    assert [e["FunctionName"] for e in status["historyEvents"][1:4]] == ["greet", "greet", "async_shout"]


def test_fan_out_runs_activities_concurrently(runner):
    basics.reset(threading.Barrier(4, timeout=20))  # only passes if four squares run at once
    iid = runner.start_new("fan_out", client_input=4)
    status = runner.wait_for(iid, timeout=30)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == {"squares": [0, 1, 4, 9], "total": 14}
    assert basics.peak_concurrency() == 4


def test_activity_concurrency_is_bounded(durable_runner):
    basics.reset(threading.Barrier(2, timeout=20))
    runner = durable_runner(basics, max_activities=2)
    status = runner.wait_for(runner.start_new("fan_out", client_input=6), timeout=30)
    assert status["output"]["total"] == sum(n * n for n in range(6))
    assert basics.peak_concurrency() == 2


def test_orchestrator_failure_text(runner):
    status = runner.wait_for(runner.start_new("boom"), timeout=30)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'boom' failed: orchestrator exploded"
    assert status["historyEvents"][-1]["OrchestrationStatus"] == "Failed"


def test_activity_failure_reaches_the_orchestrator(runner):
    status = runner.wait_for(runner.start_new("catches_activity_failure"), timeout=30)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"].startswith("Activity function 'fails' failed: RuntimeError: cannot handle bad input")
    failed = [e for e in status["historyEvents"] if e["EventType"] == "TaskFailed"]
    assert len(failed) == 1 and failed[0]["FunctionName"] == "fails"
    assert failed[0]["Reason"] == "Activity function 'fails' failed: RuntimeError: cannot handle bad input"


def test_unknown_activity_fails_the_instance_clearly(runner):
    status = runner.wait_for(runner.start_new("calls_missing"), timeout=30)
    assert status["runtimeStatus"] == "Failed"
    assert "The function 'no_such_activity' doesn't exist" in status["output"]
    assert "'greet'" in status["output"]  # names the functions that do exist


def test_http_starter_and_status_polling(runner):
    reply = http_call("POST", f"{runner.base_url}/api/orchestrators/sequence", "Bob")
    assert reply.status == 202
    links = reply.json()
    assert reply.headers["Location"] == links["statusQueryGetUri"]
    assert reply.headers["Retry-After"] == "10"
    assert set(links) == {
        "id",
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "rewindPostUri",
        "purgeHistoryDeleteUri",
        "restartPostUri",
        "suspendPostUri",
        "resumePostUri",
    }
    assert links["statusQueryGetUri"].startswith(
        f"{runner.base_url}/runtime/webhooks/durabletask/instances/"
        f"{links['id']}?taskHub=TestHubName&connection=Storage&code="
    )
    runner.run_until(lambda: http_call("GET", links["statusQueryGetUri"]).status == 200, timeout=30)
    final = http_call("GET", links["statusQueryGetUri"] + "&showHistory=true&showHistoryOutput=true")
    body = final.json()
    assert body["runtimeStatus"] == "Completed" and body["output"] == "HELLO HELLO BOB!"
    assert body["input"] == '"Bob"'  # start_new's input comes back as JSON text, as on the host
    assert body["historyEvents"][1]["Result"] == "Hello Bob"
    assert http_call("GET", links["statusQueryGetUri"].split("code=")[0]).status == 401


def test_status_while_running_is_202_with_location(runner):
    iid = runner.start_new("wait_for_go")
    runner.run_until_idle()
    url = f"{runner.base_url}/durabletask/instances/{iid}"
    reply = http_call("GET", url)
    assert reply.status == 202 and reply.headers["Location"] == url and reply.headers["Retry-After"] == "5"
    assert reply.json()["runtimeStatus"] == "Running"
    assert http_call("GET", f"{runner.base_url}/durabletask/instances/nobody").status == 404
    assert http_call("GET", f"{runner.base_url}/durabletask/instances/nobody").body == b""


def test_route_mapping_into_http_request(runner):
    reply = http_call(
        "POST", f"{runner.base_url}/api/echo/alpha/7?x=1&y=two", raw=b"payload", headers={"X-Probe": "probe-value"}
    )
    assert reply.status == 201 and reply.headers["X-Echo"] == "yes"
    seen = reply.json()
    assert seen["method"] == "POST" and seen["route"] == {"name": "alpha", "count": "7"}
    assert seen["query"] == {"x": "1", "y": "two"} and seen["body"] == "payload"
    assert seen["header"] == "probe-value" and seen["url"].startswith(f"{runner.base_url}/api/echo/alpha/7")
    assert seen["function"] == "echo" and len(seen["invocation"]) == 36  # the worker's `context` argument
    assert http_call("GET", f"{runner.base_url}/api/echo/beta").json()["route"] == {"name": "beta"}
    assert http_call("GET", f"{runner.base_url}/api/echo/beta/notanint").status == 404
    assert http_call("DELETE", f"{runner.base_url}/api/echo/beta").status == 405
    assert http_call("GET", f"{runner.base_url}/api/explode").status == 500


def test_client_start_status_and_errors_through_the_real_client(runner):
    client = runner.client()
    iid = runner.call(client.start_new("sequence", "client-1", "Cy"))
    assert iid == "client-1"
    runner.wait_for(iid)
    status = runner.call(client.get_status(iid, show_history=True))
    assert status.runtime_status == df.OrchestrationRuntimeStatus.Completed
    assert status.output == "HELLO HELLO CY!"
    assert status.historyEvents[0]["EventType"] == "ExecutionStarted"
    assert not runner.call(client.get_status("missing-instance"))
    with pytest.raises(Exception, match="The function 'nope' doesn't exist"):
        runner.call(client.start_new("nope"))
    assert runner.status("nope") is None


def test_host_refuses_to_start_a_running_instance_id(runner):
    client = runner.client()
    runner.call(client.start_new("wait_for_go", "only-one"))
    with pytest.raises(Exception, match="already exists"):
        runner.call(client.start_new("wait_for_go", "only-one"))
    runner.raise_event("only-one", "go", 1)
    assert runner.wait_for("only-one")["output"] == 1
    runner.call(client.start_new("wait_for_go", "only-one"))  # a finished id may be reused
    assert runner.status("only-one")["runtimeStatus"] in ("Pending", "Running")


def test_singleton_http_starter_answers_409_while_running(runner):
    first = http_call("POST", f"{runner.base_url}/api/singleton/solo")
    assert first.status == 202
    second = http_call("POST", f"{runner.base_url}/api/singleton/solo")
    assert second.status == 409 and b"solo is" in second.body


def test_terminate_stops_an_instance_and_later_calls_are_gone(runner):
    client = runner.client()
    iid = runner.call(client.start_new("wait_for_go"))
    runner.run_until_idle()
    runner.call(client.terminate(iid, "operator said stop"))
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Terminated" and status["output"] == "operator said stop"
    assert status["historyEvents"][-1]["EventType"] == "ExecutionCompleted"
    terminate_url = f"{runner.base_url}/durabletask/instances/{iid}/terminate?reason=x"
    assert http_call("POST", terminate_url).status == 410
    with pytest.raises(Exception, match="is gone"):
        runner.call(client.raise_event(iid, "go", 1))
    with pytest.raises(Exception, match="No instance with ID 'ghost' found"):
        runner.call(client.terminate("ghost", "x"))


def test_suspend_holds_events_until_resume(runner):
    client = runner.client()
    iid = runner.call(client.start_new("wait_for_go"))
    runner.run_until_idle()
    runner.call(client.suspend(iid, "hold on"))
    runner.run_until(lambda: runner.status(iid)["runtimeStatus"] == "Suspended")
    runner.call(client.raise_event(iid, "go", "later"))
    runner.run_until_idle()
    assert runner.status(iid)["runtimeStatus"] == "Suspended"
    runner.call(client.resume(iid, "carry on"))
    assert runner.wait_for(iid)["output"] == '"later"'  # the client's raise_event encodes twice (#295)


def test_purge_and_query(runner):
    client = runner.client()
    done = runner.call(client.start_new("sequence", "q-done", "Q"))
    runner.wait_for(done)
    live = runner.call(client.start_new("wait_for_go", "q-live"))
    runner.run_until_idle()
    everything = runner.call(client.get_status_all())
    assert {s.instance_id for s in everything} == {"q-done", "q-live"}
    running = runner.call(client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Running]))
    assert [s.instance_id for s in running] == ["q-live"]
    by_prefix = runner.call(client.get_status_by(instance_id_prefix="q-d"))
    assert [s.instance_id for s in by_prefix] == ["q-done"]
    future = dt.datetime.fromtimestamp(VIRTUAL_EPOCH + 86400, dt.UTC)
    assert runner.call(client.get_status_by(created_time_from=future)) == []
    purge_url = f"{runner.base_url}/durabletask/instances/{live}"
    assert http_call("DELETE", purge_url).status == 412  # a running instance is not purged
    assert runner.call(client.purge_instance_history(done)).instances_deleted == 1
    assert runner.call(client.purge_instance_history(done)).instances_deleted == 0
    assert runner.status(done) is None
    old = dt.datetime.fromtimestamp(VIRTUAL_EPOCH - 86400, dt.UTC)
    runner.raise_event(live, "go")
    runner.wait_for(live)
    assert runner.call(client.purge_instance_history_by(created_time_from=old)).instances_deleted == 1


def test_timer_trigger_starts_a_singleton_once(runner):
    runner.trigger("tick")
    runner.trigger("tick")  # the second run sees it running and starts nothing
    assert [s["instanceId"] for s in runner.statuses()] == ["ticker-singleton"]
    runner.run_until_idle()
    history = runner.status("ticker-singleton", show_history=True)["historyEvents"]
    assert [e["EventType"] for e in history] == ["ExecutionStarted"]
    with pytest.raises(ValueError, match="no timer-triggered function named 'tock'"):
        runner.trigger("tock")


def test_bad_requests_change_nothing(runner):
    base = f"{runner.base_url}/durabletask"
    bad_json = http_call("POST", f"{base}/orchestrators/sequence/bad-1", raw=b"{not json")
    assert bad_json.status == 400 and bad_json.json()["Message"] == "Invalid JSON content"
    unknown = http_call("POST", f"{base}/orchestrators/nope/bad-2")
    assert unknown.status == 400 and "doesn't exist" in unknown.json()["ExceptionMessage"]
    bad_id = http_call("POST", f"{base}/orchestrators/sequence/@entity")
    assert bad_id.status == 400
    assert runner.statuses() == []
    assert http_call("POST", f"{base}/instances/ghost/raiseEvent/go", {"a": 1}).status == 404
    iid = runner.start_new("wait_for_go")
    not_json = http_call(
        "POST", f"{base}/instances/{iid}/raiseEvent/go", raw=b"x", headers={"Content-Type": "text/plain"}
    )
    assert not_json.status == 400
    runner.run_until_idle()
    assert runner.status(iid)["runtimeStatus"] == "Running"


def test_restart_starts_the_same_orchestration_again(runner):
    first = runner.start_new("sequence", "again-1", client_input="Di")
    runner.wait_for(first)
    reply = http_call("POST", f"{runner.base_url}/durabletask/instances/{first}/restart?restartWithNewInstanceId=true")
    assert reply.status == 202
    second = reply.json()["id"]
    assert second != first
    assert runner.wait_for(second)["output"] == "HELLO HELLO DI!"
    same = http_call("POST", f"{runner.base_url}/durabletask/instances/{first}/restart?restartWithNewInstanceId=false")
    assert same.status == 202 and same.json()["id"] == first
    assert http_call("POST", f"{runner.base_url}/durabletask/instances/ghost/restart").status == 400
