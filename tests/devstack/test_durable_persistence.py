"""A `serve` killed with SIGKILL mid-activity resumes from SQLite: nothing lost, nothing doubled."""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from devstack.durable import protocol as p
from devstack.stack.procs import Proc, stop
from tests.fixtures.durable import http_call, poll_until, start_serve


def _serve(state_dir: Path, crash_dir: Path) -> tuple[Proc, str]:
    return start_serve(state_dir, "--app", "tests.devstack.durable_apps.crash", env={"CRASH_DIR": str(crash_dir)})


def _executions(crash_dir: Path) -> collections.Counter:
    path = crash_dir / "executions.log"
    return collections.Counter(path.read_text().splitlines() if path.exists() else [])


def _status(url: str, iid: str) -> dict:
    return http_call("GET", f"{url}/durabletask/instances/{iid}?showHistory=true").json() or {}


@pytest.mark.slow
def test_killed_runner_resumes_without_losing_or_duplicating(tmp_path):
    state_dir, crash_dir = tmp_path / "state", tmp_path / "crash"
    state_dir.mkdir()
    crash_dir.mkdir()
    proc, url = _serve(state_dir, crash_dir)
    try:
        assert http_call("POST", f"{url}/api/start/crash_flow/crash-1").status == 202
        assert http_call("POST", f"{url}/api/start/sleeper/sleep-1").status == 202
        poll_until("the held activity to start", lambda: _executions(crash_dir)["hold-start second"] == 1)
        poll_until(
            "the sleeper's timer to be armed",
            lambda: any(e["EventType"] == "TimerCreated" for e in _status(url, "sleep-1").get("historyEvents", [])),
        )
        os.killpg(proc.pid, signal.SIGKILL)
        poll_until("the killed runner to be gone", lambda: not proc.alive())
        with pytest.raises(OSError):  # nothing answers any more
            http_call("GET", f"{url}/durabletask/instances/crash-1", timeout=5)

        proc, url = _serve(state_dir, crash_dir)
        poll_until("the in-flight activity to run again", lambda: _executions(crash_dir)["hold-start second"] == 2)
        (crash_dir / "release").touch()
        final = poll_until(
            "crash-1 to finish",
            lambda: (s := _status(url, "crash-1")).get("runtimeStatus") in ("Completed", "Failed") and s,
        )
        slept = poll_until(
            "sleep-1 to finish",
            lambda: (s := _status(url, "sleep-1")).get("runtimeStatus") in ("Completed", "Failed") and s,
        )
    finally:
        stop(proc)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == ["marked first", "held second", "marked third-a", "marked third-b"]
    assert slept["runtimeStatus"] == "Completed" and slept["output"] == "marked after-timer"
    runs = _executions(crash_dir)
    assert runs["mark first"] == 1 and runs["mark third-a"] == 1 and runs["mark third-b"] == 1
    assert runs["hold-start second"] == 2 and runs["hold-done second"] == 1  # at least once, finished once
    assert runs["mark after-timer"] == 1

    db = sqlite3.connect(state_dir / "durable.sqlite3")
    for iid in ("crash-1", "sleep-1"):
        events = [
            json.loads(row[0])
            for row in db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (iid,))
        ]
        keys = [
            (e["EventType"], e.get("TaskScheduledId", e.get("TimerId", e["EventId"])))
            for e in events
            if e["EventType"] not in (p.ORCHESTRATOR_STARTED, p.ORCHESTRATOR_COMPLETED)
        ]
        assert len(keys) == len(set(keys)), f"duplicated history events in {iid}: {keys}"
        kinds = [k for k, _ in keys]
        assert kinds.count(p.EXECUTION_STARTED) == 1 and kinds.count(p.EXECUTION_COMPLETED) == 1
        started = [p.parse_ts(e["Timestamp"]) for e in events if e["EventType"] == p.ORCHESTRATOR_STARTED]
        assert started == sorted(started)
    assert db.execute("SELECT COUNT(*) FROM activity_queue").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM timers").fetchone()[0] == 0
    db.close()
    assert not (state_dir / "durable.json").exists()  # a clean stop removes what serve wrote
