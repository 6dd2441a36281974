"""Start background processes for the local stack, and stop exactly those again by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


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
