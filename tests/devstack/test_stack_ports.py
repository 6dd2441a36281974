"""A stand-in started on a picked port counts as started only when it is the process listening there."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack.azurite import start_azurite
from devstack.stack.ports import LOOPBACK, free_port, port_owner
from devstack.stack.procs import StartError, spawn, spawn_listening, stop
from tests.devstack.test_stack import pids_mentioning


@pytest.fixture
def squatter() -> Iterator[tuple[socket.socket, int]]:
    """Another process's listener, as far as the stack can tell: a socket of this test process on a port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen()
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def _http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", LOOPBACK]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_port_owner_tells_ours_from_theirs(tmp_path: Path, squatter: tuple[socket.socket, int]) -> None:
    _, port = squatter
    assert port_owner(port, os.getsid(0)) == "ours"  # this process's own session holds it
    other = spawn("bystander", [sys.executable, "-c", "import time; time.sleep(120)"], tmp_path)
    try:
        assert port_owner(port, other.pid) == "other"  # a process in its own session does not
    finally:
        stop(other)
    assert port_owner(free_port(), os.getsid(0)) == "nobody"


def test_a_picked_port_someone_took_is_given_up_for_a_fresh_one(
    tmp_path: Path, squatter: tuple[socket.socket, int]
) -> None:
    """The pick-then-bind race, made certain: the first port picked is already held by another process."""
    _, taken = squatter
    picks = iter([taken])
    proc, port = spawn_listening(
        "web",
        _http_server,
        tmp_path / "logs",
        ready=_answers,
        cwd=str(tmp_path),
        pick=lambda: next(picks, 0) or free_port(),
    )
    try:
        assert port != taken
        assert port_owner(port, proc.pid) == "ours" and _answers(port)
        log = Path(proc.log).read_text()
        assert f"port {taken} is held by another process (attempt 1 of 3)" in log
    finally:
        stop(proc)


def test_a_live_child_beside_someone_elses_listener_is_no_start(
    tmp_path: Path, squatter: tuple[socket.socket, int]
) -> None:
    """Something answers on the port, but not the process started: that is a conflict, never "started"."""
    _, taken = squatter
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    with pytest.raises(StartError) as failed:
        spawn_listening("sleeper", lambda _p: sleeper, tmp_path / "logs", port=taken)
    assert failed.value.problem == "its port was held by another process, 1 time(s)"
    assert pids_mentioning(tmp_path) == []  # the child was stopped


def test_a_child_that_exits_is_reported_as_such(tmp_path: Path) -> None:
    dies = [sys.executable, "-c", "import sys; print('cannot start'); sys.exit(3)"]
    with pytest.raises(StartError) as failed:
        spawn_listening("dies", lambda _p: dies, tmp_path / "logs")
    assert failed.value.problem == "the process exited"
    assert Path(failed.value.log).read_text().count("cannot start") == 1  # no retry: a port was not the cause


def test_azurite_on_a_port_someone_holds_does_not_count_as_started(
    tmp_path: Path, squatter: tuple[socket.socket, int]
) -> None:
    _, taken = squatter
    state = tmp_path / "state"
    with pytest.raises(RuntimeError, match=r"Azurite did not start: its port was held by another process"):
        start_azurite(state, port=taken)
    assert pids_mentioning(state) == []


def test_azurite_started_is_ours_and_answers_with_the_stacks_accounts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    azurite = start_azurite(state)
    try:
        port = int(azurite.blob_endpoint.rsplit(":", 1)[1])
        assert port_owner(port, azurite.proc.pid) == "ours"
    finally:
        stop(azurite.proc)


def test_azurite_in_memory_answers_and_keeps_nothing_on_disk(tmp_path: Path) -> None:
    from azure.storage.blob import BlobServiceClient

    state = tmp_path / "state"
    azurite = start_azurite(state, in_memory=True)
    try:
        account = azurite.accounts["dr"]
        service = BlobServiceClient(f"{azurite.blob_endpoint}/{account.name}", credential=account.key)
        container = service.create_container("kept-in-memory")
        container.upload_blob("a", b"held by the process")
        assert container.download_blob("a").readall() == b"held by the process"
    finally:
        stop(azurite.proc)
    assert [p for p in (state / "azurite" / "data").rglob("*") if p.is_file()] == []
