"""The app as the demo drives it: an in-process local Durable runner, its HTTP routes, live progress, history."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from devstack.clock import RealClock
from devstack.demo.checks import DemoFailed

APP = "function_app"
POLL_S = 0.1
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}
MAX_BLOCK = 4  # longest repeating run of history events folded into one (a poll loop is 3 events)


class DemoApp:
    """The Functions app on the local stack, in this process, on the real clock.

    The stack's local.settings.json wins over this process's environment: the demo runs the app against
    the stack it has just started, and a machine-wide REQUESTS_CA_BUNDLE/SSL_CERT_FILE (common on CI
    images) would otherwise hide the stack's CA from the SDKs. The previous values come back on close().
    """

    def __init__(self, state_dir: Path, settings: Path) -> None:
        self.state_dir, self.settings = Path(state_dir), Path(settings)
        self.runner: Any = None
        self._saved: dict[str, str | None] = {}

    def start(self) -> DemoApp:
        from devstack.durable import Runner

        values = json.loads(self.settings.read_text()).get("Values") or {}
        for name, value in values.items():
            self._saved.setdefault(name, os.environ.get(name))
            os.environ[name] = str(value)
        self.runner = Runner(APP, self.state_dir, RealClock(), settings=self.settings).start()
        return self

    @property
    def base_url(self) -> str:
        return str(self.runner.base_url)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()

    def start_route(self, path: str) -> dict:
        """POST /api/<path>; the 202's run links (id, statusUri, cancelUri) or DemoFailed."""
        status, body = http("POST", f"{self.base_url}/api/{path}")
        links = _json(body)
        if status != 202 or not isinstance(links, dict) or "statusUri" not in links:
            raise DemoFailed(f"POST /api/{path} answered {status}: {body[:500].decode(errors='replace')}")
        return links

    def follow(self, links: dict, say: Callable[[str], None], timeout: float) -> dict:
        """Poll the instance's status URL until it ends, saying each change of its custom status."""
        started = time.monotonic()
        view = ProgressView()
        while True:
            status = _json(http("GET", links["statusUri"])[1]) or {}
            line = view.line(status.get("customStatus"))
            if line is not None:
                say(f"+{time.monotonic() - started:6.1f}s  {line}")
            if status.get("runtimeStatus") in TERMINAL:
                return status
            if time.monotonic() - started > timeout:
                raise DemoFailed(
                    f"{links['id']} still {status.get('runtimeStatus')} after {timeout:.0f}s (step {view.step})"
                )
            time.sleep(POLL_S)

    def history(self, links: dict) -> list[dict]:
        """The compacted history, as `python -m devstack status ID --history` shows it."""
        # The app's status route shows no history; the runner in this process reads it from its store.
        status = self.runner.status(links["id"], show_history=True) or {}
        return list(status.get("historyEvents") or [])


def http(method: str, url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the runner on loopback
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


# --- live progress ---------------------------------------------------------------------------------------
def mib(n: int | None) -> str:
    return f"{(n or 0) / 1048576:.1f} MiB"


class ProgressView:
    """One line per change of a run's custom status: its step, the step's own fields, copy totals."""

    COPY_FIELDS = ("blobs_listed", "blobs_to_copy", "blobs_copied", "bytes_to_copy", "bytes_copied", "pending", "eta_s")
    COPY_STEPS: ClassVar[dict[str, str]] = {"precopy": "pre-copy", "copy": "delta copy", "scratch_copy": "scratch copy"}

    def __init__(self) -> None:
        self.step = "starting"
        self._last: tuple[str, tuple] = ("", ())
        self._step_began: dict = {}
        self._copy_kind = "copy"

    def line(self, custom: Any) -> str | None:
        """The line for this status, or None when neither the step's view nor the copy totals changed."""
        if not isinstance(custom, dict) or "step" not in custom:
            return None
        if custom["step"] != self.step:
            self.step, self._step_began = str(custom["step"]), custom
        fresh = custom == self._step_began  # the step's first status: its fields may still be the last step's
        self._copy_kind = self.COPY_STEPS.get(self.step, self._copy_kind)
        text = f"{self.step:<18} {_step_detail(self.step, custom, fresh)}".rstrip()
        copy = tuple(custom.get(f) for f in self.COPY_FIELDS)
        previous = self._last
        if (text, copy) == previous:
            return None
        self._last = (text, copy)
        # Totals stay in the status after their pass ends: show them only when they move, under the pass
        # that moved them (the last copy step seen), so a new pass never shows the previous one's numbers.
        if any(v is not None for v in copy) and copy != previous[1]:
            listed, to_copy, copied, bytes_total, bytes_done, pending, eta = copy
            text += (
                f"  | {self._copy_kind}: listed {listed or 0}, copied {copied or 0}/{to_copy or 0} blobs, "
                f"{mib(bytes_done)}/{mib(bytes_total)}, pending {pending or 0}, "
                f"ETA {'-' if eta is None else f'{eta}s'}"
            )
        return text


def _key(s: dict) -> str:
    if not s.get("key_id"):
        return "a new key: generate, store in Key Vault, then activate"
    return f"key {s['key_id']}" + (
        f" stored as version {s['key_secret_version'][:8]}..." if s.get("key_secret_version") else ""
    )


def _attach(s: dict) -> str:
    return f"phase {s.get('phase', '...')}" + (f", failures {s['attach_failures']}" if s.get("attach_failures") else "")


def _mounts(s: dict) -> str:
    return "mounts " + "; ".join(
        f"{m.get('vserver')} {','.join(m.get('addresses', []))}" for m in s.get("mounts") or []
    )


# What each step of a run adds to its progress line (from the custom status the orchestrators publish).
STEP_DETAIL: dict[str, Callable[[dict], str]] = {
    "begin": lambda s: f"backup {s.get('backup_id')} into generation {s.get('generation')} ({s.get('container')})",
    "rotate_key": _key,
    "capture": lambda s: _key(s) if s.get("key_id") else "",
    "flush": lambda s: (
        f"dirty files {s['dirty_files']}, flush {s.get('flush_percent', 0)}%"
        if "dirty_files" in s
        else "suspending clients, starting the flush"
    ),
    "removing_junctions": lambda s: f"{s.get('remove_percent', 0)}%",
    "removing_filer": lambda s: f"{s.get('remove_percent', 0)}%",
    "readd": _attach,
    "attach": _attach,
    "readded": lambda s: f"filer back online, offline {s.get('offline_s')}s",
    "chosen": lambda s: (
        f"backup {s.get('backup_id')} in {s.get('container')} -> cluster {s.get('target_cluster')}"
        if "scratch" not in s
        else f"backup {s.get('backup_id')} (generation {s.get('generation')}, "
        f"{s.get('rpo_s')}s old) -> scratch {s.get('scratch')} -> cluster {s.get('target_cluster')}"
    ),
    "verifying": lambda s: (
        f"{s.get('blobs_checked', 0)} blobs checked against the manifest ({s.get('pages_checked', 0)} pages)"
    ),
    "serving": lambda s: _mounts(s) + (f"; RTO {s['rto_s']}s" if s.get("rto_s") is not None else ""),
    "read_back": lambda s: (
        f"{s.get('readback')}: {s.get('files_ok')}/{s.get('files_checked')} files, "
        f"{mib(s.get('bytes_read'))} read whole by the probe"
    ),
    "cleaned_up": lambda s: f"drill filer, junctions, policies and scratch copy removed in {s.get('cleanup_s')}s",
}


def _step_detail(step: str, s: dict, fresh: bool) -> str:
    if fresh and step.startswith("removing_"):
        return "started"  # remove_percent still holds the previous removal's figure until the first poll
    detail = STEP_DETAIL.get(step)
    if detail is not None:
        return detail(s)
    return f"error: {str(s['error'])[:300]}" if s.get("error") else ""


# --- history ------------------------------------------------------------------------------------------------
def _when(event: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(str(event.get("Timestamp")))
    except ValueError:
        return None


def run_seconds(events: list[dict]) -> float | None:
    """ExecutionStarted to ExecutionCompleted, from the history's own timestamps."""
    start = next((_when(e) for e in events if e.get("EventType") == "ExecutionStarted"), None)
    end = next((_when(e) for e in reversed(events) if e.get("EventType") == "ExecutionCompleted"), None)
    return round((end - start).total_seconds(), 3) if start and end else None


def _blocks(signatures: list[tuple]) -> list[tuple[int, int, int]]:
    """(start, length, repeats): each run of a block of up to MAX_BLOCK events repeated back to back."""
    out, i, n = [], 0, len(signatures)
    while i < n:
        best_len, best_rep = 1, 1
        for length in range(1, MAX_BLOCK + 1):
            rep = 1
            while (
                i + (rep + 1) * length <= n
                and signatures[i + rep * length : i + (rep + 1) * length] == signatures[i : i + length]
            ):
                rep += 1
            if rep > 1 and rep * length > best_len * best_rep:
                best_len, best_rep = length, rep
        out.append((i, best_len, best_rep))
        i += best_len * best_rep
    return out


def history_lines(events: list[dict]) -> list[str]:
    """Event type, function name and time (after the start) per event; a poll loop folded into one block."""
    if not events:
        return ["(no history)"]
    origin = _when(events[0])
    signatures = [(str(e.get("EventType")), str(e.get("FunctionName") or "")) for e in events]

    def seconds(event: dict) -> float | None:
        when = _when(event)
        return (when - origin).total_seconds() if when and origin else None

    def offset(event: dict) -> str:
        value = seconds(event)
        return f"+{value:7.2f}s" if value is not None else "        ?"

    lines = [f"{'time':>9}  {'event':<36} function"]
    for start, length, repeats in _blocks(signatures):
        for k in range(length):
            event = events[start + k]
            kind, name = signatures[start + k]
            mark = ""
            if repeats > 1:
                last = seconds(events[start + length * repeats - 1])
                times = f"x{repeats}, the last at +{last:.2f}s" if last is not None else f"x{repeats}"
                mark = f"  ┐ {times}" if k == 0 else "  ┘" if k == length - 1 else "  │"
                if length == 1:
                    mark = f"  {times}"
            lines.append(f"{offset(event)}  {kind:<36} {name:<20}{mark}".rstrip())
    return lines
