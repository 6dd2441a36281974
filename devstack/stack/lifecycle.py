"""`devstack up/down/status`: start the local stack's components in order, record them, stop exactly them."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import os
import sqlite3
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

from devstack.paths import REPO_ROOT
from devstack.stack import identity
from devstack.stack.appconfig import secret_fields_in
from devstack.stack.azurite import start_azurite
from devstack.stack.ports import LOOPBACK
from devstack.stack.procs import Proc, StartError, spawn_listening, stop
from devstack.stack.tls import ensure_ca

DEFAULT_STATE_DIR = Path(".devstack")
STACK_FILE = "stack.json"
START_TIMEOUT = 60.0

Component = Callable[[Path, dict], tuple[list[Proc], dict]]

# The stack, in start order: (name, "module:function"). Each function takes (state_dir, stack so far) and
# returns (processes it started, keys to merge into stack.json). Adding a component is one line here.
COMPONENTS: list[tuple[str, str]] = [
    ("tls", "devstack.stack.lifecycle:start_tls"),
    ("storage", "devstack.stack.lifecycle:start_storage"),
    ("faultproxy", "devstack.stack.lifecycle:start_faultproxy"),
    ("identity", "devstack.stack.lifecycle:start_identity"),
    ("keyvault", "devstack.stack.lifecycle:start_keyvault"),
    ("clusters", "devstack.cluster.stack:start_clusters"),
    ("secrets", "devstack.stack.appconfig:store_secrets"),
    ("probe", "devstack.probe.component:start_probe_component"),
    ("appconfig", "devstack.stack.appconfig:write_config"),
]
# Set on processes whose command line does not name the state dir, so a leftover one can still be traced.
STATE_ENV = "DEVSTACK_STATE_DIR"


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


def proxy_answers(url: str) -> bool:
    """True when a fault proxy's control endpoint answers at url."""
    from devstack.faultproxy.proxy import FaultProxyClient

    try:
        return isinstance(FaultProxyClient(url).rules(), list)
    except (OSError, ValueError):
        return False


def _start_listening(
    component: str,
    state_dir: Path,
    argv_for: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    env: dict[str, str] | None = None,
) -> tuple[Proc, int]:
    """A stand-in on a picked port, ready only when the process started holds the port and answers as itself
    (procs.spawn_listening: another process on the picked port means a fresh port, not a false start)."""
    try:
        return spawn_listening(
            component, argv_for, state_dir / "logs", ready=ready, env=env, cwd=str(REPO_ROOT), timeout=START_TIMEOUT
        )
    except StartError as err:
        raise ComponentError(component, err.problem, err.log) from None


def start_faultproxy(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """The fault proxy in front of Azurite: the app's way to storage, so an account can be cut off from it."""
    upstream = stack["storage"]["blob_endpoint"]

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "devstack.faultproxy.proxy", "--upstream", upstream, "--port", str(port)]

    proc, port = _start_listening(
        "faultproxy",
        state_dir,
        argv,
        lambda p: proxy_answers(f"http://{LOOPBACK}:{p}"),
        env={STATE_ENV: str(state_dir)},
    )
    return [proc], {"faultproxy": {"url": f"http://{LOOPBACK}:{port}"}}


def start_identity(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """The managed-identity token endpoint, with a fresh X-IDENTITY-HEADER secret each start."""
    tenant = identity.tenant_id(state_dir)
    header = identity.new_header_secret()

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "devstack.stack.identity", "--state-dir", str(state_dir), "--port", str(port)]

    def endpoint(port: int) -> str:
        return f"http://{LOOPBACK}:{port}{identity.TOKEN_PATH}"

    proc, port = _start_listening(
        "identity",
        state_dir,
        argv,
        lambda p: identity.endpoint_answers(endpoint(p), header),
        env={identity.HEADER_ENV: header},
    )
    return [proc], {"identity": {"endpoint": endpoint(port), "header": header, "tenant_id": tenant}}


def start_keyvault(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    """The Key Vault stand-in over HTTPS, its secrets kept under STATE/keyvault."""
    ca_cert, _ = ensure_ca(state_dir / "tls")  # made here first, so concurrent stand-ins never race for it
    tenant = identity.tenant_id(state_dir)

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "devstack.keyvault", "--state-dir", str(state_dir), "--port", str(port)]

    proc, port = _start_listening(
        "keyvault", state_dir, argv, lambda p: vault_answers(f"https://{LOOPBACK}:{p}", ca_cert)
    )
    return [proc], {"keyvault": {"url": f"https://{LOOPBACK}:{port}", "ca_cert": str(ca_cert), "tenant_id": tenant}}


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
        raise ValueError(
            f"{path} is damaged, so which processes it started is unknown; stop them by hand "
            "(see STATE/logs) and delete the file"
        )
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


def component_names() -> list[str]:
    return [name for name, _ in COMPONENTS]


def running_stack(state_dir: Path) -> dict | None:
    """stack.json's content when every process it names runs and it has today's components; None otherwise."""
    stack = read_stack(state_dir)
    if (
        stack
        and stack.get("processes")
        and all(is_ours(e) for e in stack["processes"])
        and stack.get("components") == component_names()
    ):
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
        if leftover:  # a partly dead or outdated stack: stop its survivors, then start afresh on the same data
            report(
                "the previous stack was started with other components; restarting it"
                if leftover.get("components") != component_names()
                else "some processes of the previous stack are gone (or were stopped); restarting the stack"
            )
            _stop_entries(leftover.get("processes", []))
            (state_dir / STACK_FILE).unlink()
        started: list[Proc] = []
        stack: dict[str, Any] = {"state_dir": str(state_dir), "started_at": datetime.now(UTC).isoformat()}
        for name, ref in COMPONENTS:
            try:
                procs, part = _resolve(ref)(state_dir, stack)
            except BaseException as err:  # Ctrl-C / SIGTERM mid-start too: stop what this up started
                for proc in reversed(started):
                    stop(proc)
                if isinstance(err, ComponentError) or not isinstance(err, Exception):
                    raise
                raise ComponentError(name, f"{type(err).__name__}: {err}", state_dir / "logs") from err
            started.extend(procs)
            stack.update(part)
            report(f"{name}: ready" + "".join(f", {p.name} pid {p.pid}" for p in procs))
        stack["processes"] = [_record(p) for p in started]
        stack["components"] = component_names()
        leaked = secret_fields_in(stack)
        if leaked:  # a component handed back a secret value: stop rather than write it to disk
            for proc in reversed(started):
                stop(proc)
            raise ComponentError(
                "stack.json", f"secret fields would be written: {', '.join(leaked)}", state_dir / "logs"
            )
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


# -- one process at a time (a region lost and restored: devstack/stack/region.py) ------------------------


def stop_component(state_dir: Path, name: str) -> bool:
    """Stop one process of the stack by name (e.g. "cluster-primary"); False when it was not running.

    stack.json marks it stopped; `down` still stops the rest, and `up` restarts the whole stack.
    """
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        stack = read_stack(state_dir)
        if stack is None:
            raise ValueError(f"no stack in {state_dir} (run `python -m devstack up`)")
        entry = next((e for e in stack.get("processes", []) if e["name"] == name), None)
        if entry is None:
            names = ", ".join(e["name"] for e in stack.get("processes", []))
            raise ValueError(f"the stack has no process {name!r}; it has {names}")
        was_running = is_ours(entry)
        if was_running:
            stop(Proc.from_json(entry))
        entry.setdefault("stopped_at", datetime.now(UTC).isoformat())
        _write_stack(state_dir, stack)
        return was_running


def restart_component(state_dir: Path, name: str, start: Callable[[dict], Proc]) -> bool:
    """Start one process of the stack again with start(stack) (it must come back where it was); False when it
    runs already. stack.json names the new process and no longer marks it stopped."""
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        stack = read_stack(state_dir)
        if stack is None:
            raise ValueError(f"no stack in {state_dir} (run `python -m devstack up`)")
        entry = next((e for e in stack.get("processes", []) if e["name"] == name), None)
        if entry is None:
            names = ", ".join(e["name"] for e in stack.get("processes", []))
            raise ValueError(f"the stack has no process {name!r}; it has {names}")
        if is_ours(entry):
            return False
        entry.clear()
        entry.update(_record(start(stack)))
        _write_stack(state_dir, stack)
        return True


# -- command line -------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the stack keeps its data, logs and stack.json (default: .devstack)",
    )
    if command_name == "status":
        parser.add_argument("instance_id", nargs="?", help="a Durable orchestration instance id to show")
        parser.add_argument("--history", action="store_true", help="with an instance id: show its history")


def _endpoints(stack: dict) -> list[str]:
    """What status prints: endpoints and file paths, never keys, passwords or the identity header."""
    lines = []
    if "storage" in stack:
        lines.append(
            f"storage   {stack['storage']['blob_endpoint']}  accounts: "
            + ", ".join(f"{role}={a['name']} ({a['region']})" for role, a in stack["storage"]["accounts"].items())
        )
    if "faultproxy" in stack:
        lines.append(f"proxy     {stack['faultproxy']['url']}  (the app's blob endpoint){_blocked(stack)}")
    if "identity" in stack:
        lines.append(f"identity  {stack['identity']['endpoint']}")
    if "keyvault" in stack:
        lines.append(f"keyvault  {stack['keyvault']['url']}  CA {stack['keyvault']['ca_cert']}")
    if "clusters" in stack:
        lines.append(
            "clusters  "
            + ", ".join(f"{name}={c['url']} ({c['region']}, user {c['user']})" for name, c in stack["clusters"].items())
        )
    if "demo_filer" in stack:
        demo = stack["demo_filer"]
        lines.append(
            f"demo      {demo['cluster']}/{demo['name']} on {demo['bucket']}, key {demo['key_id']}"
            + (f" in secret {demo['key_secret']}" if demo.get("key_secret") else "")
        )
    if "app" in stack:
        lines.append(f"app       plan {stack['app']['plan']}  settings {stack['app']['settings']}")
    return lines


def _blocked(stack: dict) -> str:
    """', blocked: NAMES' when the proxy runs and blocks accounts."""
    entry = next((e for e in stack.get("processes", []) if e["name"] == "faultproxy"), None)
    if entry is None or not is_ours(entry):
        return ""
    from devstack.stack.region import blocked_accounts  # region builds on this module

    try:
        blocked = blocked_accounts(Path(stack["state_dir"]))
    except (OSError, ValueError, KeyError):
        return ", blocked accounts unknown (the proxy does not answer)"
    return f", blocked: {', '.join(blocked)}" if blocked else ""


def _instances(state_dir: Path) -> list[str]:
    """One line per Durable instance in the state dir (none when there is no Durable state)."""
    try:
        from devstack.durable.cli import list_instances

        found = list_instances(state_dir)
    except ImportError as err:
        return [f"durable   instances unavailable: {err}"]
    except sqlite3.Error as err:
        return [f"durable   cannot read {state_dir / 'durable.sqlite3'}: {err}"]
    lines = [f"durable   {len(found)} instance(s)" + (" (details: status ID [--history])" if found else "")]
    for inst in found:
        custom = inst.get("customStatus")
        step = f"  step {custom['step']}" if isinstance(custom, dict) and custom.get("step") else ""
        lines.append(
            f"  {inst['instanceId']:<36} {inst['runtimeStatus']:<14} {inst['name']:<20} "
            f"updated {inst['lastUpdatedTime']}{step}"
        )
    return lines


def status(state_dir: Path) -> int:
    """Print processes, endpoints and Durable instances; 0 all run, 3 none does (or no stack), else 1."""
    state_dir = Path(state_dir).resolve()
    stack = read_stack(state_dir)
    if stack is None:
        print(f"no stack in {state_dir} (run `python -m devstack up`)")
        for line in _instances(state_dir):
            print(line)
        return 3
    alive = [is_ours(entry) for entry in stack.get("processes", [])]
    for entry, ok in zip(stack.get("processes", []), alive, strict=True):
        state = "running" if ok else "stopped" if entry.get("stopped_at") else "NOT RUNNING"
        print(f"{entry['name']:<16} pid {entry['pid']:<8} {state:<12} log {entry['log']}")
    for line in [*_endpoints(stack), *_instances(state_dir)]:
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
