"""`python -m devstack serve | run | trigger`, and the instance view behind `status ID [--history]`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from devstack.durable import protocol as p
from devstack.durable.store import DB_NAME, TERMINAL_STATUSES
from devstack.durable.workflows import WORKFLOWS, Workflow
from devstack.stack.procs import pid_alive

DEFAULT_STATE_DIR = Path(".devstack")
DEFAULT_APP = "function_app"
DEFAULT_PORT = 7071  # what `func start` uses
SERVE_FILE = "durable.json"
POLL_S = 0.5

log = logging.getLogger("devstack.durable")


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    if command_name == "serve":
        _common(parser)
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help=f"loopback port (default {DEFAULT_PORT}; 0 picks a free one)"
        )
    elif command_name == "run":
        sub = parser.add_subparsers(dest="workflow", required=True, metavar="WORKFLOW")
        for wf in WORKFLOWS.values():
            cmd = sub.add_parser(wf.name, help=wf.help, description=wf.help)
            for name in wf.args:
                cmd.add_argument(name, metavar=name.upper())
            for flag in wf.flags:
                cmd.add_argument(flag.option, dest=f"flag_{flag.query}", action="store_true", help=flag.help)
            _common(cmd)
            cmd.add_argument("--timeout", type=float, default=None, help="give up following after this many seconds")
    elif command_name == "trigger":
        parser.add_argument("function", metavar="TIMER_FUNCTION", help="the timer-triggered function to fire")
        _common(parser)
        parser.add_argument("--no-wait", action="store_true", help="do not follow the instances it starts")
        parser.add_argument("--timeout", type=float, default=None, help="give up following after this many s")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="the stack's state dir; Durable state lives in DIR/durable.sqlite3",
    )
    parser.add_argument("--app", default=DEFAULT_APP, help="module (or module:attr) of the DFApp")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="local.settings.json to load (default: STATE/local.settings.json if present)",
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.command == "serve" else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "run":
            return run_workflow(args, WORKFLOWS[args.workflow])
        if args.command == "trigger":
            return trigger(args)
    except (ValueError, LookupError, OSError, ImportError) as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 2
    print(f"unknown command {args.command}", file=sys.stderr)
    return 2


# ---- serve -------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    from devstack.clock import RealClock
    from devstack.durable.runner import Runner, RunnerError

    state_dir = args.state_dir.resolve()
    runner = Runner(args.app, state_dir, RealClock(), settings=args.settings, port=args.port, schedule_timers=True)
    try:
        runner.start()
    except RunnerError as exc:
        print(f"serve failed: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    info = {
        "url": runner.base_url,
        "rpc_base_url": f"{runner.base_url}/durabletask/",
        "pid": os.getpid(),
        "app": args.app,
        "task_hub": runner.host.hub_name,
    }
    (state_dir / SERVE_FILE).write_text(json.dumps(info, indent=2))
    print(f"serving {args.app} on {runner.base_url} (hub {runner.host.hub_name}); state in {state_dir}", flush=True)
    try:
        stop.wait()
    finally:
        runner.stop()
        _forget_serve_file(state_dir)
    stuck = [t for t in threading.enumerate() if t.name.startswith("durable-activity") and t.is_alive()]
    if stuck:
        # Their work items stay queued in SQLite and run again at the next start (at-least-once).
        log.warning("abandoning %d running activities; they re-run when a runner next starts", len(stuck))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _forget_serve_file(state_dir: Path) -> None:
    path = state_dir / SERVE_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_serve(state_dir: Path) -> str | None:
    """The base URL of a `serve` running on state_dir, or None."""
    try:
        info = json.loads((state_dir / SERVE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not pid_alive(int(info.get("pid", 0))):
        return None
    status, _ = _http("GET", f"{info['url']}/durabletask/instances/?top=1")
    return info["url"] if status == 200 else None


# ---- run / trigger -------------------------------------------------------------------------------------


class _Target:
    """A serve already running on the state dir, or an in-process runner started for this command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.runner: Any = None
        state_dir = args.state_dir.resolve()
        self.url = running_serve(state_dir)
        if self.url is None:
            from devstack.clock import RealClock
            from devstack.durable.runner import Runner

            self.runner = Runner(args.app, state_dir, RealClock(), settings=args.settings).start()
            self.url = self.runner.base_url

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()


def run_workflow(args: argparse.Namespace, wf: Workflow) -> int:
    from devstack.durable.runner import RunnerError

    try:
        target = _Target(args)
    except RunnerError as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        return 1
    try:
        path = wf.request_path(
            {a: getattr(args, a) for a in wf.args}, {f.query: getattr(args, f"flag_{f.query}") for f in wf.flags}
        )
        status, body = _http(wf.method, f"{target.url}/api/{path}")
        links = _json(body)
        # The app's routes answer their own status URL (statusUri); a plain Durable starter the webhook's.
        follow_url = _status_link(links) if status == 202 else None
        if follow_url is not None and isinstance(links, dict):
            print(f"started {links['id']}", file=sys.stderr)
            try:
                final = follow(follow_url, sys.stderr, args.timeout)
            except KeyboardInterrupt:
                print(
                    f"interrupted: {links['id']} is kept in {args.state_dir} and goes on when a runner next runs there",
                    file=sys.stderr,
                )
                return 130
            print(json.dumps(final, indent=2))
            return 0 if final.get("runtimeStatus") == "Completed" else 1
        print(f"{wf.method} /api/{path} answered {status}", file=sys.stderr)
        print(json.dumps(links, indent=2) if links is not None else body.decode(errors="replace"))
        return 0 if 200 <= status < 300 else 1
    finally:
        target.close()


def trigger(args: argparse.Namespace) -> int:
    from devstack.durable.runner import RunnerError

    try:
        target = _Target(args)
    except RunnerError as exc:
        print(f"trigger failed: {exc}", file=sys.stderr)
        return 1
    try:
        status, body = _http("POST", f"{target.url}/admin/functions/{args.function}", b'{"input": ""}')
        if status == 404:
            print(f"no timer-triggered function named {args.function!r}", file=sys.stderr)
            return 2
        if status >= 300:
            print(f"{args.function} failed ({status}); see the runner's log", file=sys.stderr)
            return 1
        started = (_json(body) or {}).get("started", [])
        print(f"{args.function} ran; started {len(started)} instance(s)", file=sys.stderr)
        if args.no_wait:
            print(json.dumps(started, indent=2))
            return 0
        try:
            finals = [follow(f"{target.url}/durabletask/instances/{iid}", sys.stderr, args.timeout) for iid in started]
        except KeyboardInterrupt:
            print(f"interrupted: the instances are kept in {args.state_dir}", file=sys.stderr)
            return 130
        print(json.dumps(finals, indent=2))
        return 0 if all(f.get("runtimeStatus") == "Completed" for f in finals) else 1
    finally:
        target.close()


def _status_link(links: Any) -> str | None:
    if not isinstance(links, dict):
        return None
    url = links.get("statusUri") or links.get("statusQueryGetUri")
    return url if isinstance(url, str) else None


def follow(status_url: str, progress: TextIO, timeout: float | None = None) -> dict:
    """Poll a status URL until the instance finishes, writing each custom-status change to progress."""
    started = time.monotonic()
    last: Any = object()
    while True:
        code, body = _http("GET", status_url)
        status = _json(body) or {}
        if code == 404:
            raise LookupError(f"{status_url} names no instance")
        seen = (status.get("runtimeStatus"), json.dumps(status.get("customStatus"), sort_keys=True))
        if seen != last:
            last = seen
            progress.write(f"{time.monotonic() - started:7.1f}s {seen[0]} {seen[1]}\n")
            progress.flush()
        if status.get("runtimeStatus") in TERMINAL_STATUSES:
            return status
        if timeout is not None and time.monotonic() - started > timeout:
            return status
        time.sleep(POLL_S)


def _http(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=240) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


# ---- status ID [--history] ------------------------------------------------------------------------------


def _read_only(state_dir: Path) -> sqlite3.Connection | None:
    path = Path(state_dir) / DB_NAME
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    return db


def list_instances(state_dir: Path) -> list[dict]:
    """Every instance's status payload, read straight from the state dir's SQLite (no runner needed)."""
    from devstack.durable.runner import status_payload

    db = _read_only(state_dir)
    if db is None:
        return []
    with db:
        rows = db.execute("SELECT * FROM instances ORDER BY created, instance_id").fetchall()
    db.close()
    return [status_payload(dict(r), True, None) for r in rows]


def show_instance(state_dir: Path, instance_id: str, history: bool) -> int:
    """Print an instance's status, custom status, output (and compacted history) as JSON; 1 if unknown."""
    from devstack.durable.runner import status_payload

    db = _read_only(state_dir)
    if db is None:
        print(f"no Durable state in {state_dir}", file=sys.stderr)
        return 1
    with db:
        row = db.execute("SELECT * FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
        events = (
            [
                json.loads(r["event"])
                for r in db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
            ]
            if row
            else []
        )
    db.close()
    if row is None:
        print(f"no instance {instance_id!r} in {state_dir}", file=sys.stderr)
        return 1
    compacted = p.compact_history(events, show_output=True) if history else None
    print(json.dumps(status_payload(dict(row), True, compacted), indent=2))
    return 0
