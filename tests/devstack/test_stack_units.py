"""`devstack up/down/status` without a full stack: failures, damaged state, bad input, the secret guard."""

from __future__ import annotations

import sys
import types
import uuid
from pathlib import Path

import pytest

from devstack.cli import main as cli
from devstack.cluster.stack import SPEEDUP_ENV, default_speedup
from devstack.stack import lifecycle as stack_mod
from devstack.stack.lifecycle import ComponentError, start_stack, stop_component, wait_until
from devstack.stack.procs import Proc, spawn
from devstack.stack.region import block_account, lose_region
from tests.devstack.test_stack import pids_mentioning

CHEAP = [("tls", "devstack.stack.lifecycle:start_tls"), ("storage", "devstack.stack.lifecycle:start_storage")]


def _broken_component(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    proc = spawn("broken", [sys.executable, "-c", "import sys; print('cannot bind'); sys.exit(3)"], state_dir / "logs")
    wait_until("broken", proc, lambda: False, timeout=30)
    return [proc], {}


def _leaky_component(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    return [], {"demo_filer": {"name": "x", "passphrase": "do not write me"}}


def test_a_component_that_fails_stops_what_up_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    state = tmp_path / "state"
    broken = ("broken", "tests.devstack.test_stack_units:_broken_component")
    monkeypatch.setattr(stack_mod, "COMPONENTS", [*CHEAP, broken])
    assert cli(["up", "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert "broken did not start: the process exited" in err
    assert str(state / "logs" / "broken.log") in err
    assert (state / "logs" / "azurite.log").exists()  # storage did start before the failure ...
    assert pids_mentioning(state) == []  # ... and was stopped again
    assert not (state / "stack.json").exists()
    with pytest.raises(ComponentError) as failed:
        start_stack(state)
    assert failed.value.component == "broken" and failed.value.log.endswith("broken.log")


def test_a_secret_value_never_reaches_stack_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    leaky = ("leaky", "tests.devstack.test_stack_units:_leaky_component")
    monkeypatch.setattr(stack_mod, "COMPONENTS", [*CHEAP, leaky])
    with pytest.raises(ComponentError, match=r"secret fields would be written: demo_filer\.passphrase"):
        start_stack(state)
    assert not (state / "stack.json").exists()
    assert pids_mentioning(state) == []
    assert "do not write me" not in "".join(p.read_text() for p in (state / "logs").glob("*.log"))


def test_status_with_an_instance_id_delegates_to_the_durable_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    fake = types.ModuleType("devstack.durable.cli")
    fake.show_instance = lambda state_dir, instance_id, history: calls.append((state_dir, instance_id, history)) or 7
    monkeypatch.setitem(sys.modules, "devstack.durable.cli", fake)
    instance = f"backup-{uuid.uuid4().hex[:6]}"
    assert cli(["status", instance, "--history", "--state-dir", str(tmp_path)]) == 7
    assert calls == [(tmp_path.resolve(), instance, True)]


def test_status_without_a_stack_or_durable_state(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli(["status", "--state-dir", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "no stack in" in out and "durable   0 instance(s)" in out


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_a_damaged_stack_json_is_reported_and_left_alone(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "stack.json").write_text("{not json")
    assert cli([command, "--state-dir", str(tmp_path)]) == 2
    assert "stack.json is damaged" in capsys.readouterr().err
    assert (tmp_path / "stack.json").read_text() == "{not json"
    assert pids_mentioning(tmp_path) == []


def test_region_controls_without_a_stack_say_so_and_change_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no stack in"):
        block_account(tmp_path, "source")
    with pytest.raises(ValueError, match="no stack in"):
        stop_component(tmp_path, "cluster-primary")
    with pytest.raises(ValueError, match="no stack in"):
        lose_region(tmp_path, "westus2")
    assert list(tmp_path.iterdir()) in ([], [tmp_path / ".stack.lock"])


@pytest.mark.parametrize(("raw", "expected"), [("", 1.0), ("20", 20.0), (" 2.5 ", 2.5)])
def test_cluster_speedup_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, expected: float) -> None:
    monkeypatch.setenv(SPEEDUP_ENV, raw)
    assert default_speedup() == expected


@pytest.mark.parametrize("raw", ["fast", "0", "-3", "inf", "nan"])
def test_a_bad_cluster_speedup_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(SPEEDUP_ENV, raw)
    with pytest.raises(ValueError, match=f"{SPEEDUP_ENV} must be a number > 0"):
        default_speedup()


def test_an_interrupted_demo_filer_setup_is_reported_not_guessed(tmp_path: Path) -> None:
    from devstack.cluster.model import write_private_json
    from devstack.cluster.runner import cluster_dir
    from devstack.cluster.stack import ensure_demo_filer

    write_private_json(
        cluster_dir(tmp_path, "primary") / "demo_filer.json",
        {"key_id": "k", "signature": "s", "passphrase": "p", "recovery_file": "r", "complete": False},
    )
    storage = {"blob_endpoint": "http://127.0.0.1:9", "accounts": {"source": {"name": "a", "key": "k"}}}
    nowhere = {"url": "https://127.0.0.1:9/cgi-bin/rpc2.py", "user": "admin", "password": "x", "ca_cert": "none"}
    with pytest.raises(RuntimeError, match=r"setup was interrupted.*remove the state dir"):
        ensure_demo_filer(tmp_path, nowhere, storage)


def _marker_component(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    return [], {"marker": {"added": True}}


def test_a_stack_started_with_other_components_is_restarted_by_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setattr(stack_mod, "COMPONENTS", CHEAP)
    first = start_stack(state)
    try:
        assert start_stack(state) == first  # unchanged components: the running stack is kept
        marker = ("marker", "tests.devstack.test_stack_units:_marker_component")
        monkeypatch.setattr(stack_mod, "COMPONENTS", [*CHEAP, marker])
        said: list[str] = []
        second = start_stack(state, report=said.append)
        assert said[0] == "the previous stack was started with other components; restarting it"
        assert second["marker"] == {"added": True} and second["components"] == ["tls", "storage", "marker"]
        assert not stack_mod.is_ours(first["processes"][0]) and stack_mod.is_ours(second["processes"][0])
    finally:
        stack_mod.stop_stack(state)
    assert pids_mentioning(state) == []
