"""Starting an instance id that exists: host.json's overridableExistingInstanceStates, as the host applies it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.durable import ConflictError, Runner
from devstack.durable import protocol as p
from devstack.durable.settings import ANY_STATE, NON_RUNNING_STATES, load_host_json
from devstack.durable.store import Store
from devstack.paths import REPO_ROOT
from tests.devstack.durable_apps import starts
from tests.fixtures.durable import HttpReply, http_call

HELD = ("Running", "Pending", "ContinuedAsNew", "Suspended")
FINISHED = ("Completed", "Failed", "Terminated")
SETTINGS = (None, NON_RUNNING_STATES, ANY_STATE)  # None: host.json without the key
HOST_ERROR = "Something went wrong while processing your request"
EXCEPTION_TYPE = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"


def _host_json(tmp_path: Path, setting: str | None) -> Path:
    durable: dict = {"hubName": "StartsHub"}
    if setting is not None:
        durable["overridableExistingInstanceStates"] = setting
    path = tmp_path / f"host-{setting or 'default'}.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"durableTask": durable}}))
    return path


@pytest.fixture
def make_runner(durable_runner, tmp_path: Path) -> Iterator[Callable[[str | None], Runner]]:
    """durable_runner on the starts app with a host.json carrying the setting; gates released at the end."""

    def make(setting: str | None) -> Runner:
        return durable_runner(starts, host_json=_host_json(tmp_path, setting))

    starts.reset()
    yield make
    starts.open_all()


def _held_gate(runner: Runner, iid: str, continue_first: bool) -> None:
    key = f"{iid}-{continue_first}"
    runner.start_new("gated", iid, {"gate": key, "continue_first": continue_first})
    assert starts.gate(key).entered.wait(30), "the gated episode never started"


def _bring(runner: Runner, iid: str, state: str) -> None:
    """Leave instance `iid` in runtime status `state`."""
    if state == "Pending":
        _held_gate(runner, iid, continue_first=False)
    elif state == "ContinuedAsNew":
        _held_gate(runner, iid, continue_first=True)
    elif state == "Completed":
        runner.wait_for(runner.start_new("echo", iid, "first"))
    elif state == "Failed":
        runner.wait_for(runner.start_new("boom", iid))
    else:
        runner.start_new("wait_for_go", iid, "first")
        runner.run_until_idle()
        if state == "Suspended":
            runner.suspend(iid, "hold")
            runner.run_until(lambda: runner.status(iid)["runtimeStatus"] == "Suspended")
        elif state == "Terminated":
            runner.terminate(iid, "stop")
            runner.wait_for(iid)
    assert runner.status(iid)["runtimeStatus"] == state


def _refusal(state: str) -> dict:
    return {
        "Message": HOST_ERROR,
        "ExceptionMessage": f"An Orchestration instance with the status {state} already exists.",
    }


def _finish_untouched(runner: Runner, iid: str, state: str) -> None:
    """The refused start changed nothing: the original instance goes on to its own end."""
    if state == "Suspended":
        runner.resume(iid, "go on")
    starts.release_all()
    runner.run_until_idle()
    runner.raise_event(iid, "go", "later")
    status = runner.wait_for(iid)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["name"] in ("wait_for_go", "gated") and status["output"]["go"] == "later"
    started = [e for e in status["historyEvents"] if e["EventType"] == "ExecutionStarted"]
    assert len(started) == 1 and started[0]["FunctionName"] == status["name"]


@pytest.mark.parametrize("setting", SETTINGS, ids=["absent", "NonRunningStates", "AnyState"])
@pytest.mark.parametrize("state", HELD + FINISHED)
def test_a_start_on_an_existing_id_follows_the_setting(make_runner, state: str, setting: str | None) -> None:
    runner = make_runner(setting)
    _bring(runner, "dup", state)
    client = runner.client()
    replaced = setting == ANY_STATE or state in FINISHED
    if not replaced:
        with pytest.raises(Exception) as refused:  # the SDK raises a bare Exception carrying the host's body
            runner.call(client.start_new("echo", "dup", {"second": True}))
        assert type(refused.value) is Exception
        body = refused.value.args[0]
        assert {k: body[k] for k in ("Message", "ExceptionMessage")} == _refusal(state)
        assert body["ExceptionType"] == EXCEPTION_TYPE and body["StackTrace"]
        assert runner.status("dup")["runtimeStatus"] == state and runner.status("dup")["name"] != "echo"
        _finish_untouched(runner, "dup", state)
        return
    assert runner.call(client.start_new("echo", "dup", {"second": True})) == "dup"
    starts.release_all()  # a held episode of the replaced execution ends; what it decided is dropped
    status = runner.wait_for("dup")
    assert status["runtimeStatus"] == "Completed" and status["name"] == "echo"
    assert status["output"] == {"second": True}
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds == ["ExecutionStarted", "ExecutionCompleted"]  # nothing of the replaced instance is left
    runner.run_until_idle()
    assert runner.status("dup")["output"] == {"second": True}


def test_every_start_path_refuses_a_running_id_the_same_way(make_runner) -> None:
    runner = make_runner(NON_RUNNING_STATES)
    _bring(runner, "busy", "Running")
    key = runner.system_key
    webhook = f"{runner.base_url}/runtime/webhooks/durabletask"
    replies = {
        "rpc start": http_call("POST", f"{runner.base_url}/durabletask/orchestrators/echo/busy", "x"),
        "webhook start": http_call("POST", f"{webhook}/orchestrators/echo/busy?code={key}", "x"),
        "webhook restart": http_call(
            "POST", f"{webhook}/instances/busy/restart?restartWithNewInstanceId=false&code={key}"
        ),
        "rpc restart": http_call(
            "POST", f"{runner.base_url}/durabletask/instances/busy/restart?restartWithNewInstanceId=false"
        ),
    }
    for path, reply in replies.items():
        assert reply.status == 500, (path, reply.body)
        body = reply.json()
        assert {k: body[k] for k in ("Message", "ExceptionMessage")} == _refusal("Running"), path
        assert body["ExceptionType"] == EXCEPTION_TYPE, path
    with pytest.raises(ConflictError) as refused:
        runner.start_new("echo", "busy", "x")
    assert refused.value.status == "Running" and str(refused.value) == _refusal("Running")["ExceptionMessage"]
    assert runner.status("busy")["name"] == "wait_for_go"
    # A sub-orchestration on the running id fails the parent's task with the host's message.
    parent = runner.wait_for(runner.start_new("parent_of", "parent", "busy"))
    assert "An Orchestration instance with the status Running already exists." in parent["output"]["failed"]
    _finish_untouched(runner, "busy", "Running")


def test_any_state_restart_replaces_a_running_instance_with_its_own_input(make_runner) -> None:
    runner = make_runner(ANY_STATE)
    _bring(runner, "again", "Running")
    webhook = f"{runner.base_url}/runtime/webhooks/durabletask/instances/again/restart"
    reply = http_call("POST", f"{webhook}?restartWithNewInstanceId=false&code={runner.system_key}")
    assert reply.status == 202 and reply.json()["id"] == "again"
    runner.run_until_idle()
    runner.raise_event("again", "go", "restarted")
    status = runner.wait_for("again")
    assert status["output"] == {"input": "first", "go": "restarted"}
    assert [e["EventType"] for e in status["historyEvents"]].count("ExecutionStarted") == 1


def test_two_concurrent_starts_of_one_id_exactly_one_wins(make_runner) -> None:
    runner = make_runner(NON_RUNNING_STATES)
    url = f"{runner.base_url}/runtime/webhooks/durabletask/orchestrators/wait_for_go/race?code={runner.system_key}"
    barrier = threading.Barrier(2, timeout=30)
    replies: dict[str, HttpReply] = {}

    def start(label: str) -> None:
        barrier.wait()
        replies[label] = http_call("POST", url, json.dumps(label))  # encoded twice, as the SDK client sends input

    threads = [threading.Thread(target=start, args=(label,)) for label in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status for r in replies.values()) == [202, 500]
    winner = next(label for label, r in replies.items() if r.status == 202)
    loser = next(r for r in replies.values() if r.status == 500).json()
    assert loser["ExceptionMessage"] in (_refusal(s)["ExceptionMessage"] for s in ("Pending", "Running"))
    runner.run_until_idle()
    runner.raise_event("race", "go", 1)
    assert runner.wait_for("race")["output"] == {"input": winner, "go": 1}  # the loser changed nothing

    # The same through the real client, both calls in flight at once.
    async def both() -> list:
        client = runner.client()
        return await asyncio.gather(
            client.start_new("wait_for_go", "race-2", "a"),
            client.start_new("wait_for_go", "race-2", "b"),
            return_exceptions=True,
        )

    results = runner.call(both())
    assert sorted(type(r).__name__ for r in results) == ["Exception", "str"]
    assert (
        next(r for r in results if isinstance(r, Exception))
        .args[0]["ExceptionMessage"]
        .startswith("An Orchestration instance with the status")
    )


def test_the_stores_check_and_create_is_one_transaction(tmp_path: Path) -> None:
    """Two connections on one SQLite file (as two processes would be) race to create the same ids."""
    path = tmp_path / "durable.sqlite3"
    stores = [Store(path), Store(path)]
    rounds = 25
    outcomes: dict[int, list[str]] = {n: [] for n in range(rounds)}
    barriers = [threading.Barrier(2, timeout=30) for _ in range(rounds)]

    def racer(store: Store, label: str) -> None:
        for n in range(rounds):
            iid, eid = f"race-{n}", f"{label}-{n}"
            started = p.execution_started(0.0, "wait_for_go", iid, eid, None)
            barriers[n].wait()
            try:
                store.create_instance(
                    instance_id=iid,
                    name="wait_for_go",
                    execution_id=eid,
                    input_json=None,
                    now=0.0,
                    started_event=started,
                )
                outcomes[n].append("created")
            except ConflictError as exc:
                assert exc.status == "Pending"
                outcomes[n].append("refused")

    threads = [threading.Thread(target=racer, args=(s, label)) for s, label in zip(stores, "ab", strict=True)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert all(sorted(o) == ["created", "refused"] for o in outcomes.values()), outcomes
        for n in range(rounds):  # one instance row and one ExecutionStarted per id: the loser wrote nothing
            assert len(stores[0].query("SELECT 1 FROM instances WHERE instance_id = ?", (f"race-{n}",))) == 1
            assert len(stores[0].inbox(f"race-{n}")) == 1
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, NON_RUNNING_STATES),
        ("NonRunningStates", NON_RUNNING_STATES),
        ("anystate", ANY_STATE),
        ("AnyState", ANY_STATE),
    ],
)
def test_the_setting_is_read_from_host_json(tmp_path: Path, value: str | None, expected: str) -> None:
    assert load_host_json(_host_json(tmp_path, value)).overridable_states == expected


@pytest.mark.parametrize("value", ["Running", "", "1", 1, None])
def test_a_bad_setting_is_refused_by_name(tmp_path: Path, value: object) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"extensions": {"durableTask": {"overridableExistingInstanceStates": value}}}))
    if value is None:  # null is the same as absent to the configuration binder
        assert load_host_json(path).overridable_states == NON_RUNNING_STATES
        return
    with pytest.raises(ValueError, match="overridableExistingInstanceStates must be AnyState or NonRunningStates"):
        load_host_json(path)


def test_no_host_json_means_non_running_states() -> None:
    assert load_host_json(None).overridable_states == NON_RUNNING_STATES


def test_the_apps_host_json_states_non_running_states(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFXTDR_TASK_HUB", "vfxtdrtests")
    raw = json.loads((REPO_ROOT / "host.json").read_text())["extensions"]["durableTask"]
    assert raw["overridableExistingInstanceStates"] == "NonRunningStates"
    assert load_host_json(REPO_ROOT / "host.json").overridable_states == NON_RUNNING_STATES
