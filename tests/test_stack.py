"""`devstack up/down/status` and the first demo, on stacks of their own under tmp dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devstack import stack as stack_mod
from devstack.cli import main as cli
from devstack.procs import Proc, pid_alive, stop
from devstack.stack import ComponentError, start_stack, stop_stack, wait_until
from shared.keyvault import KeyVault

REPO = Path(__file__).resolve().parent.parent


def _pids_mentioning(path: Path) -> list[int]:
    """Live processes whose command line names path: what a stack under path left running."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmdline and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devstack", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


def _dr_blobs(stack: dict) -> BlobServiceClient:
    acct = stack["storage"]["accounts"]["dr"]
    return BlobServiceClient(f"{stack['storage']['blob_endpoint']}/{acct['name']}", credential=acct["key"])


def _use_identity(monkeypatch: pytest.MonkeyPatch, stack: dict) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack["identity"]["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", stack["identity"]["header"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", stack["keyvault"]["ca_cert"])


def test_up_writes_stack_json_second_up_changes_nothing_down_stops_all(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    state = tmp_path / "state"
    stack = start_stack(state)
    try:
        path = state / "stack.json"
        assert path.stat().st_mode & 0o777 == 0o600
        written = json.loads(path.read_text())
        assert written == stack
        storage = written["storage"]
        assert storage["blob_endpoint"].startswith("http://127.0.0.1:")
        for role in ("source", "dr"):
            assert set(storage["accounts"][role]) == {"name", "key", "region"}
        assert storage["accounts"]["source"]["region"] != storage["accounts"]["dr"]["region"]
        assert written["keyvault"]["url"].startswith("https://127.0.0.1:")
        assert Path(written["keyvault"]["ca_cert"]) == state / "tls" / "ca.pem"
        assert written["identity"]["endpoint"].startswith("http://127.0.0.1:")
        assert written["identity"]["header"]
        assert {p["name"] for p in written["processes"]} == {"azurite", "identity", "keyvault"}
        before = path.read_bytes()

        again = _run("up", "--state-dir", str(state))
        assert again.returncode == 0, again.stderr
        assert "already runs; nothing changed" in again.stdout
        assert path.read_bytes() == before
        assert start_stack(state) == stack

        assert cli(["status", "--state-dir", str(state)]) == 0
        shown = capsys.readouterr().out
        assert stack["keyvault"]["url"] in shown and "running" in shown
        assert stack["identity"]["header"] not in shown
        assert storage["accounts"]["source"]["key"] not in shown
    finally:
        stop_stack(state)
    assert not any(pid_alive(p["pid"]) for p in stack["processes"])
    assert _pids_mentioning(state) == []
    assert not (state / "stack.json").exists()
    assert cli(["status", "--state-dir", str(state)]) == 3
    assert cli(["down", "--state-dir", str(state)]) == 0  # nothing to stop is not an error


def test_up_after_down_keeps_data_and_up_restarts_a_partial_stack(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    stack = start_stack(state)
    try:
        _use_identity(monkeypatch, stack)
        with KeyVault(stack["keyvault"]["url"]) as vault:
            ref = vault.store("kept-over-restart", "value-1", content_type="text/plain")
        _dr_blobs(stack).create_container("kept").upload_blob("b", b"bytes-1")
    finally:
        stop_stack(state)

    stack = start_stack(state)
    try:
        _use_identity(monkeypatch, stack)
        with KeyVault(stack["keyvault"]["url"]) as vault:
            assert vault.read_ref(ref).value == "value-1"
        assert _dr_blobs(stack).get_blob_client("kept", "b").download_blob().readall() == b"bytes-1"

        identity = next(Proc.from_json(p) for p in stack["processes"] if p["name"] == "identity")
        stop(identity)
        assert cli(["status", "--state-dir", str(state)]) == 1
        restarted = start_stack(state)
        old_pids = {p["pid"] for p in stack["processes"]}
        assert all(p["pid"] not in old_pids and pid_alive(p["pid"]) for p in restarted["processes"])
        assert not any(pid_alive(pid) for pid in old_pids)  # the survivors were stopped first
        assert cli(["status", "--state-dir", str(state)]) == 0
        stack = restarted
    finally:
        stop_stack(state)
    assert _pids_mentioning(state) == []


def _broken_component(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    from devstack.procs import spawn
    proc = spawn("broken", [sys.executable, "-c", "import sys; print('cannot bind'); sys.exit(3)"],
                 state_dir / "logs")
    wait_until("broken", proc, lambda: False, timeout=30)
    return [proc], {}


def test_a_component_that_fails_stops_what_up_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    state = tmp_path / "state"
    monkeypatch.setattr(stack_mod, "COMPONENTS",
                        [*stack_mod.COMPONENTS, ("broken", "tests.test_stack:_broken_component")])
    assert cli(["up", "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert "broken did not start: the process exited" in err
    assert str(state / "logs" / "broken.log") in err
    assert _pids_mentioning(state) == []
    assert not (state / "stack.json").exists()
    with pytest.raises(ComponentError) as failed:
        start_stack(state)
    assert failed.value.component == "broken" and failed.value.log.endswith("broken.log")


def test_status_with_an_instance_id_delegates_to_the_durable_cli(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType("devstack.durable.cli")
    fake.show_instance = lambda state_dir, instance_id, history: calls.append((state_dir, instance_id,
                                                                              history)) or 7
    monkeypatch.setitem(sys.modules, "devstack.durable.cli", fake)
    instance = f"backup-{uuid.uuid4().hex[:6]}"
    assert cli(["status", instance, "--history", "--state-dir", str(tmp_path)]) == 7
    assert calls == [(tmp_path.resolve(), instance, True)]


def test_demo_passes_end_to_end_and_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    env_free = {k: v for k, v in os.environ.items() if k not in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    done = subprocess.run([sys.executable, "-m", "devstack", "demo", "--state-dir", str(state)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env=env_free, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in ("stack up", "stored secret", "read it back by version: value matches",
                 "copied to DR", "stack down", "all steps passed"):
        assert step in out
    assert _pids_mentioning(state) == []
    assert not (state / "stack.json").exists()


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_a_damaged_stack_json_is_reported_and_left_alone(tmp_path: Path, command: str,
                                                         capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "stack.json").write_text("{not json")
    assert cli([command, "--state-dir", str(tmp_path)]) == 2
    assert "stack.json is damaged" in capsys.readouterr().err
    assert (tmp_path / "stack.json").read_text() == "{not json"
    assert _pids_mentioning(tmp_path) == []
