"""Start background processes for the local stack, and stop exactly those again by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.stack.ports import free_port, port_owner


@dataclass(frozen=True)
class Proc:
    """A process this stack started: enough to find and stop it later, from another command."""

    name: str
    pid: int
    log: str

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def to_json(self) -> dict:
        return {"name": self.name, "pid": self.pid, "log": self.log}

    @classmethod
    def from_json(cls, data: dict) -> Proc:
        return cls(name=data["name"], pid=int(data["pid"]), log=data["log"])


def pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False  # our own child, and it has exited (now reaped)
    except ChildProcessError:
        pass  # not our child: fall back to a signal probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None, cwd: str | None = None) -> Proc:
    """Start argv detached in its own session, output to log_dir/name.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return Proc(name=name, pid=child.pid, log=str(log_path))


def stop(proc: Proc, timeout: float = 10.0) -> bool:
    """Stop the process group the stack started; True when it is gone."""
    if not proc.alive():
        return True
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            os.kill(proc.pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                return True
            time.sleep(0.05)
    return not proc.alive()


class StartError(RuntimeError):
    """A server the stack started did not come up: `problem` says how, `log` is where to read why."""

    def __init__(self, name: str, problem: str, log: str) -> None:
        super().__init__(f"{name} did not start: {problem} (log: {log})")
        self.name, self.problem, self.log = name, problem, log


def spawn_listening(
    name: str,
    argv_for: Callable[[int], list[str]],
    log_dir: Path,
    *,
    ready: Callable[[int], bool] = lambda _port: True,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 60.0,
    attempts: int = 3,
    port: int | None = None,
    pick: Callable[[], int] = free_port,
) -> tuple[Proc, int]:
    """Start a server on a freshly picked loopback port; return it and the port once it is the one there.

    free_port() only says a port was free a moment ago. Ready therefore means: every listener a connection
    to 127.0.0.1:port reaches belongs to the process started (or its session), the process is alive, and
    ready(port) holds (the caller's "answers as itself" check). When another process holds the port (the
    child then exits with "address in use", or keeps trying), the child is stopped and the start repeats
    on a fresh port (from `pick`), up to `attempts` times within `timeout`. A caller-chosen `port` gets one
    attempt.
    Where /proc cannot say who listens (not Linux), a live child and ready(port) decide.
    """
    deadline = time.monotonic() + timeout
    tries = 1 if port is not None else attempts
    proc: Proc | None = None
    for attempt in range(1, tries + 1):
        chosen = port if port is not None else pick()
        proc = spawn(name, argv_for(chosen), log_dir, env=env, cwd=cwd)
        outcome = _await_listener(proc, chosen, ready, deadline)
        if outcome == "ready":
            return proc, chosen
        stop(proc)
        if outcome != "conflict":
            raise StartError(name, outcome, proc.log)
        with open(proc.log, "a") as log:
            log.write(f"devstack: port {chosen} is held by another process (attempt {attempt} of {tries})\n")
    assert proc is not None
    raise StartError(name, f"its port was held by another process, {tries} time(s)", proc.log)


def _await_listener(proc: Proc, port: int, ready: Callable[[int], bool], deadline: float) -> str:
    """ "ready", "conflict" (another process holds the port), or why the process never came up."""
    while True:
        owner = port_owner(port, proc.pid)
        if owner == "other":
            return "conflict"
        if not proc.alive():
            return "conflict" if port_owner(port, proc.pid) == "other" else "the process exited"
        # Ask only a listener that is ours; then look again: the one that answered was ours, still alive.
        mine = ("ours", "unknown")
        if owner in mine and _answers(ready, port) and proc.alive() and port_owner(port, proc.pid) in mine:
            return "ready"
        if time.monotonic() > deadline:
            return "no answer in time"
        time.sleep(0.05)


def _answers(ready: Callable[[int], bool], port: int) -> bool:
    try:
        return bool(ready(port))
    except Exception:
        return False
