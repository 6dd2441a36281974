"""`devstack up/down/status`: start the local stack's components in order, record them, stop exactly them."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack import identity
from devstack.azurite import start_azurite
from devstack.ports import LOOPBACK, free_port
from devstack.procs import Proc, spawn, stop
from devstack.tls import ensure_ca

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = Path(".devstack")
STACK_FILE = "stack.json"
START_TIMEOUT = 60.0

Component = Callable[[Path, dict], tuple[list[Proc], dict]]

# The stack, in start order: (name, "module:function"). Each function takes (state_dir, stack so far) and
# returns (processes it started, keys to merge into stack.json). Adding a component is one line here.
COMPONENTS: list[tuple[str, str]] = [
    ("tls", "devstack.stack:start_tls"),
    ("storage", "devstack.stack:start_storage"),
    ("identity", "devstack.stack:start_identity"),
    ("keyvault", "devstack.stack:start_keyvault"),
]


class ComponentError(RuntimeError):
    """A component did not come up; names it and the log to read."""

    def __init__(self, component: str, problem: str, log: str | Path) -> None:
        super().__init__(f"{component} did not start: {problem} (log: {log})")
        self.component, self.problem, self.log = component, problem, str(log)


# -- waiting for a process to answer ------------------------------------------------------------------

def wait_until(component: str, proc: Proc, ready: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
    """Poll ready() until True; fail fast when proc exits. On failure stop proc and raise ComponentError."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not proc.alive():
            raise ComponentError(component, "the process exited", proc.log)
        if time.monotonic() > deadline:
            stop(proc)
            raise ComponentError(component, f"no answer within {timeout:.0f}s", proc.log)
        time.sleep(0.05)


def vault_answers(url: str, ca_cert: Path) -> bool:
    """True when the vault at url answers an unauthenticated request with its bearer challenge."""
    context = ssl.create_default_context(cafile=str(ca_cert))
    try:
        urllib.request.urlopen(f"{url}/secrets?api-version=2026-04-01", timeout=2, context=context)  # noqa: S310
    except urllib.error.HTTPError as err:
        return err.code == 401 and "Bearer" in (err.headers.get("WWW-Authenticate") or "")
    except (OSError, ValueError):
        return False
    return False


# -- the components -----------------------------------------------------------------------------------

def start_tls(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """The stack's one local CA (STATE/tls/ca.pem): every HTTPS stand-in's certificate chains to it."""
    ca_cert, _ = ensure_ca(state_dir / "tls")
    return [], {"tls": {"ca_cert": str(ca_cert)}}


def start_storage(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """Azurite's blob service with the source and DR accounts."""
    try:
        azurite = start_azurite(state_dir, timeout=START_TIMEOUT)
    except RuntimeError as err:
        raise ComponentError("storage", str(err), state_dir / "logs" / "azurite.log") from None
    return [azurite.proc], {"storage": azurite.storage_json()}


def start_identity(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """The managed-identity token endpoint, with a fresh X-IDENTITY-HEADER secret each start."""
    tenant = identity.tenant_id(state_dir)
    header = identity.new_header_secret()
    port = free_port()
    argv = [sys.executable, "-m", "devstack.identity", "--state-dir", str(state_dir), "--port", str(port)]
    proc = spawn("identity", argv, state_dir / "logs", env={identity.HEADER_ENV: header}, cwd=str(REPO_ROOT))
    endpoint = f"http://{LOOPBACK}:{port}{identity.TOKEN_PATH}"
    wait_until("identity", proc, lambda: identity.endpoint_answers(endpoint, header))
    return [proc], {"identity": {"endpoint": endpoint, "header": header, "tenant_id": tenant}}


def start_keyvault(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """The Key Vault stand-in over HTTPS, its secrets kept under STATE/keyvault."""
    ca_cert, _ = ensure_ca(state_dir / "tls")  # made here first, so concurrent stand-ins never race for it
    tenant = identity.tenant_id(state_dir)
    port = free_port()
    argv = [sys.executable, "-m", "devstack.keyvault", "--state-dir", str(state_dir), "--port", str(port)]
    proc = spawn("keyvault", argv, state_dir / "logs", cwd=str(REPO_ROOT))
    url = f"https://{LOOPBACK}:{port}"
    wait_until("keyvault", proc, lambda: vault_answers(url, ca_cert))
    return [proc], {"keyvault": {"url": url, "ca_cert": str(ca_cert), "tenant_id": tenant}}


# -- stack.json and the processes it names ------------------------------------------------------------

def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, it tells a reused pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def _record(proc: Proc) -> dict:
    return {**proc.to_json(), "start_ticks": _start_ticks(proc.pid)}


def is_ours(entry: dict) -> bool:
    """True when the process stack.json names still runs and is the one we started (not a reused pid)."""
    proc = Proc.from_json(entry)
    if not proc.alive():
        return False
    recorded = entry.get("start_ticks")
    return recorded is None or _start_ticks(proc.pid) in (None, recorded)


def read_stack(state_dir: Path) -> dict | None:
    """stack.json's content, None when there is none; a damaged file is an error (its pids are unknown)."""
    path = Path(state_dir) / STACK_FILE
    if not path.exists():
        return None
    try:
        stack = json.loads(path.read_text())
    except ValueError:
        stack = None
    if not isinstance(stack, dict) or not isinstance(stack.get("processes", []), list):
        raise ValueError(f"{path} is damaged, so which processes it started is unknown; stop them by hand "
                         "(see STATE/logs) and delete the file")
    return stack


def _write_stack(state_dir: Path, stack: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".stack.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(stack, out, indent=2)
        os.replace(tmp, state_dir / STACK_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One up/down at a time per state dir."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _resolve(ref: str) -> Component:
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)


def _stop_entries(entries: list[dict]) -> None:
    for entry in reversed(entries):
        if is_ours(entry):
            stop(Proc.from_json(entry))


def running_stack(state_dir: Path) -> dict | None:
    """stack.json's content when every process it names runs; None otherwise."""
    stack = read_stack(state_dir)
    if stack and stack.get("processes") and all(is_ours(e) for e in stack["processes"]):
        return stack
    return None


def start_stack(state_dir: Path, report: Callable[[str], None] = lambda _: None) -> dict:
    """Start every component (or return the running stack unchanged); return stack.json's content."""
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        current = running_stack(state_dir)
        if current is not None:
            return current
        leftover = read_stack(state_dir)
        if leftover:  # a partly dead stack: stop its survivors, then start afresh on the same data
            report("some processes of the previous stack are gone; restarting the rest")
            _stop_entries(leftover.get("processes", []))
            (state_dir / STACK_FILE).unlink()
        started: list[Proc] = []
        stack: dict[str, Any] = {"state_dir": str(state_dir), "started_at": datetime.now(UTC).isoformat()}
        for name, ref in COMPONENTS:
            try:
                procs, part = _resolve(ref)(state_dir, stack)
            except Exception as err:
                for proc in reversed(started):
                    stop(proc)
                if isinstance(err, ComponentError):
                    raise
                raise ComponentError(name, f"{type(err).__name__}: {err}", state_dir / "logs") from err
            started.extend(procs)
            stack.update(part)
            report(f"{name}: ready" + "".join(f", {p.name} pid {p.pid}" for p in procs))
        stack["processes"] = [_record(p) for p in started]
        _write_stack(state_dir, stack)
        return stack


def stop_stack(state_dir: Path) -> None:
    """Stop exactly the processes stack.json names (those still ours), then forget the stack."""
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        stack = read_stack(state_dir)
        if stack is None:
            return
        _stop_entries(stack.get("processes", []))
        (state_dir / STACK_FILE).unlink(missing_ok=True)


# -- command line -------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="where the stack keeps its data, logs and stack.json (default: .devstack)")
    if command_name == "status":
        parser.add_argument("instance_id", nargs="?", help="a Durable orchestration instance id to show")
        parser.add_argument("--history", action="store_true", help="with an instance id: show its history")


def _endpoints(stack: dict) -> list[str]:
    """What status prints: endpoints and file paths, never keys or the identity header."""
    lines = []
    if "storage" in stack:
        lines.append(f"storage   {stack['storage']['blob_endpoint']}  accounts: "
                     + ", ".join(f"{role}={a['name']} ({a['region']})"
                                 for role, a in stack["storage"]["accounts"].items()))
    if "identity" in stack:
        lines.append(f"identity  {stack['identity']['endpoint']}")
    if "keyvault" in stack:
        lines.append(f"keyvault  {stack['keyvault']['url']}  CA {stack['keyvault']['ca_cert']}")
    return lines


def status(state_dir: Path) -> int:
    """Print each process and the endpoints; 0 when all run, 3 when none does (or no stack), 1 otherwise."""
    stack = read_stack(Path(state_dir).resolve())
    if stack is None:
        print(f"no stack in {state_dir} (run `python -m devstack up`)")
        return 3
    alive = [is_ours(entry) for entry in stack.get("processes", [])]
    for entry, ok in zip(stack.get("processes", []), alive, strict=True):
        state = "running" if ok else "NOT RUNNING"
        print(f"{entry['name']:<10} pid {entry['pid']:<8} {state:<12} log {entry['log']}")
    for line in _endpoints(stack):
        print(line)
    if alive and all(alive):
        return 0
    return 3 if not any(alive) else 1


def _up(state_dir: Path) -> int:
    if running_stack(state_dir.resolve()) is not None:
        print(f"the stack in {state_dir} already runs; nothing changed")
        return status(state_dir)
    try:
        start_stack(state_dir, report=print)
    except ComponentError as err:
        print(f"up failed: {err}", file=sys.stderr)
        return 1
    print(f"stack is up; endpoints and credentials in {state_dir.resolve() / STACK_FILE}")
    return status(state_dir)


def _down(state_dir: Path) -> int:
    if read_stack(state_dir.resolve()) is None:
        print(f"no stack in {state_dir}; nothing to stop")
        return 0
    stop_stack(state_dir)
    print("stack stopped")
    return 0


def _instance_status(state_dir: Path, instance_id: str, history: bool) -> int:
    try:
        from devstack.durable.cli import show_instance
    except ImportError as err:
        print(f"instance status is unavailable: {err}", file=sys.stderr)
        return 2
    return int(show_instance(state_dir.resolve(), instance_id, history))


def main(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    try:
        if args.command == "up":
            return _up(state_dir)
        if args.command == "down":
            return _down(state_dir)
        if getattr(args, "instance_id", None):
            return _instance_status(state_dir, args.instance_id, args.history)
        return status(state_dir)
    except ValueError as err:  # a damaged stack.json
        print(f"{args.command} failed: {err}", file=sys.stderr)
        return 2
