"""The runner's webhooks want the system key, as the host's do; the key outlives a runner restart."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.durable import RunnerError
from devstack.durable.runner import KEYS_NAME, SYSTEM_KEY_NAME
from tests.devstack.durable_apps import basics
from tests.fixtures.durable import http_call

WEBHOOK = "/runtime/webhooks/durabletask"
# (label, method, path under the webhook prefix, body): every kind of webhook the host protects with the key.
WEBHOOKS = [
    ("start orchestration", "POST", "/orchestrators/wait_for_go/fresh", None),
    ("raise event", "POST", "/instances/live/raiseEvent/go", {"by": "nobody"}),
    ("terminate", "POST", "/instances/live/terminate?reason=x", None),
    ("suspend", "POST", "/instances/live/suspend?reason=x", None),
    ("resume", "POST", "/instances/live/resume?reason=x", None),
    ("restart", "POST", "/instances/live/restart?restartWithNewInstanceId=false", None),
    ("rewind", "POST", "/instances/live/rewind?reason=x", None),
    ("purge", "DELETE", "/instances/done", None),
    ("purge by filter", "DELETE", "/instances/?createdTimeFrom=2000-01-01T00:00:00Z", None),
    ("status", "GET", "/instances/live", None),
    ("query", "GET", "/instances/", None),
]


@pytest.fixture
def runner(durable_runner):
    basics.reset()
    runner = durable_runner(basics)
    runner.start_new("wait_for_go", "live")
    runner.wait_for(runner.start_new("sequence", "done", "Ada"))
    runner.run_until_idle()
    return runner


def _with_query(url: str, extra: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{extra}"


@pytest.mark.parametrize(("label", "method", "path", "body"), WEBHOOKS, ids=[w[0] for w in WEBHOOKS])
def test_every_webhook_wants_the_system_key(runner, label: str, method: str, path: str, body: object) -> None:
    url = f"{runner.base_url}{WEBHOOK}{path}"
    for attempt in (url, _with_query(url, "code="), _with_query(url, "code=not-the-key")):
        assert http_call(method, attempt, body).status == 401, (label, attempt)
    assert http_call(method, url, body, headers={"x-functions-key": "not-the-key"}).status == 401
    # Refused before anything happened: nothing started, stopped, raised or purged.
    assert runner.status("fresh") is None
    assert runner.status("live")["runtimeStatus"] == "Running" and runner.status("done") is not None
    runner.raise_event("live", "go", "after")
    assert runner.wait_for("live")["output"] == "after"  # `live` heard only this event
    # With the key (in the query as the binding's URLs carry it, or in the x-functions-key header) it passes.
    assert http_call(method, _with_query(url, f"code={runner.system_key}"), body).status != 401
    header = http_call(method, url, body, headers={"x-functions-key": runner.system_key})
    assert header.status != 401


def test_the_rpc_listener_wants_no_key(runner) -> None:
    """As on the host, where the worker's client reaches it on loopback only."""
    assert http_call("GET", f"{runner.base_url}/durabletask/instances/live").status == 202


def test_a_status_url_outlives_a_runner_restart(durable_runner, tmp_path: Path) -> None:
    basics.reset()
    state = tmp_path / "state"
    first = durable_runner(basics, state_dir=state)
    started = http_call("POST", f"{first.base_url}/api/orchestrators/wait_for_go/kept")
    assert started.status == 202
    links = started.json()
    key = first.system_key
    first.stop()

    port = urlsplit(first.base_url).port
    second = durable_runner(basics, state_dir=state, port=port)  # the same address, as a host keeps its name
    assert second.system_key == key
    assert http_call("GET", links["statusQueryGetUri"]).status == 202  # still running, and the key still opens it
    assert http_call("POST", links["sendEventPostUri"].replace("{eventName}", "go"), {"v": 1}).status == 202
    assert second.wait_for("kept")["output"] == {"v": 1}  # the run resumed on the second runner
    final = http_call("GET", links["statusQueryGetUri"])
    assert final.status == 200 and final.json()["runtimeStatus"] == "Completed"
    wrong = links["statusQueryGetUri"].replace(f"code={key}", "code=" + "x" * len(key))
    assert http_call("GET", wrong).status == 401

    keys = state / KEYS_NAME
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert json.loads(keys.read_text()) == {"systemKeys": [{"name": SYSTEM_KEY_NAME, "value": key}]}


def test_separate_state_dirs_get_separate_keys(durable_runner, tmp_path: Path) -> None:
    one = durable_runner(basics, state_dir=tmp_path / "one")
    two = durable_runner(basics, state_dir=tmp_path / "two")
    assert one.system_key != two.system_key and len(one.system_key) >= 32


@pytest.mark.parametrize("content", ["{not json", "[]", '{"systemKeys": []}', '{"systemKeys": [{"name": "x"}]}'])
def test_a_damaged_key_file_is_reported_not_replaced(durable_runner, tmp_path: Path, content: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / KEYS_NAME).write_text(content)
    with pytest.raises(RunnerError, match=r"durable\.keys\.json.*delete it to make a new system key"):
        durable_runner(basics, state_dir=state)
    assert (state / KEYS_NAME).read_text() == content
    (state / KEYS_NAME).unlink()
    assert durable_runner(basics, state_dir=state).system_key  # the state dir's lock was released
