"""The local Durable runner: dispatcher, activity worker pool, clock, and the management operations."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func

from devstack.clock import Clock, RealClock
from devstack.durable import protocol as p
from devstack.durable.engine import Engine, unknown_function
from devstack.durable.functions import (
    Registry,
    call_kwargs,
    decode_activity_input,
    encode_activity_output,
    find_app,
    invoke_async,
    run_user_function,
)
from devstack.durable.management import (
    GoneError,
    Management,
    NotFoundError,
    RunnerError,
    client_binding,
    status_payload,
)
from devstack.durable.settings import load_host_json, load_settings
from devstack.durable.store import DB_NAME, TERMINAL_STATUSES, ConflictError, Store
from devstack.durable.worker_loop import FunctionsLoop, LoopNotRunning
from shared.core import ncrontab

log = logging.getLogger("devstack.durable")

LOCK_NAME = "durable.lock"
# The system key the webhooks want (the host keeps it as the `durabletask_extension` system key and reuses it
# across restarts, so status URLs handed out stay valid); kept beside the SQLite file, readable by the owner only.
KEYS_NAME = "durable.keys.json"
SYSTEM_KEY_NAME = "durabletask_extension"
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,}")
__all__ = [
    "ConflictError",
    "GoneError",
    "NotFoundError",
    "Runner",
    "RunnerError",
    "TimerSchedule",
    "parse_schedule",
    "status_payload",
]


@dataclass(frozen=True)
class TimerSchedule:
    """A timer function's NCRONTAB schedule (the app's parser, shared.core.ncrontab) on the runner's clock."""

    schedule: ncrontab.Schedule

    @property
    def fields(self) -> tuple[frozenset[int], ...]:
        """(seconds, minutes, hours, days, months, days of week), 0 = Sunday."""
        s = self.schedule
        return (frozenset(s.seconds), frozenset(s.minutes), frozenset(s.hours), s.days, s.months, s.weekdays)

    def next_after(self, epoch: float) -> float:
        """The first firing strictly after epoch (seconds), in epoch seconds."""
        return self.schedule.next_after(datetime.fromtimestamp(epoch, UTC)).timestamp()


def parse_schedule(expression: str) -> TimerSchedule:
    """`{second} {minute} {hour} {day} {month} {day-of-week}`: serve asks for the six-field form."""
    return TimerSchedule(ncrontab.parse(expression, including_seconds=True))


class Runner(Management):
    """Runs a DFApp's orchestrations, activities and triggers on the local stack.

    `clock` is shared with the rest of the stack: with a VirtualClock the runner moves it to the next
    timer whenever nothing else can run (always with `auto_advance`, otherwise only inside run_until and
    wait_for), so long timers finish at once and the cluster simulator's progress follows. `idle_grace`
    (wall seconds) holds that jump back while something outside the runner may still be catching up.
    `settings` (default STATE/local.settings.json) is loaded into os.environ before the app is imported;
    `host_json` defaults to the one beside the app's module. `schedule_timers` fires timer functions on
    their NCRONTAB schedules (as `serve` does); `http=False` runs without the HTTP host (and client).
    """

    def __init__(
        self,
        app: str | ModuleType | Any,
        state_dir: Path,
        clock: Clock | None = None,
        *,
        host_json: Path | None = None,
        settings: Path | None = None,
        http: bool = True,
        port: int = 0,
        auto_advance: bool = False,
        schedule_timers: bool = False,
        max_activities: int | None = None,
        idle_grace: float = 0.0,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        settings = settings if settings is not None else self.state_dir / "local.settings.json"
        load_settings(settings)  # before the app module is imported: it may read settings at import
        self.app, module = find_app(app)
        self.registry = Registry.load(self.app)
        if host_json is None and module is not None and getattr(module, "__file__", None):
            candidate = Path(module.__file__).parent / "host.json"
            host_json = candidate if candidate.exists() else None
        self.host = load_host_json(host_json)
        self.clock: Clock = clock or RealClock()
        self.max_activities = max_activities or self.host.max_activities
        self.auto_advance = auto_advance
        self.idle_grace = idle_grace
        self._system_key: str | None = None
        self._want_http, self._port = http, port
        self._schedule_timers = schedule_timers
        self._lock_file: Any = None
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.base_url: str | None = None
        self.functions_loop: asyncio.AbstractEventLoop | None = None
        self._functions = FunctionsLoop()
        self._http: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._inflight: set[int] = set()
        self._triggers_inflight = 0
        self.started_ids: list[str] = []
        self._triggers_lock = threading.Lock()
        self._drivers: list[Callable[[], bool]] = []
        self._schedules: dict[str, tuple[Any, float]] = {}
        self._idle_since: float | None = None
        self._guard = threading.Lock()

    # ---- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Runner:
        self._lock_file = open(self.state_dir / LOCK_NAME, "a+")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RunnerError(f"another Durable runner is using {self.state_dir}; stop it first") from None
        try:
            self._system_key = load_system_key(self.state_dir)
        except RunnerError:
            self._lock_file.close()
            self._lock_file = None
            raise
        self.store = Store(self.state_dir / DB_NAME)
        self.engine = Engine(self.store, self.registry, self.clock)
        self.functions_loop = self._functions.start()
        self._pool = ThreadPoolExecutor(self.max_activities, thread_name_prefix="durable-activity")
        if self._want_http:
            from devstack.durable.http_host import HttpHost

            self._http = HttpHost(self, self._port)
            self.base_url = self._http.start()
        if self._schedule_timers:
            now = self.clock.now()
            for name, timer in self.registry.timers.items():
                schedule = parse_schedule(timer.schedule)
                self._schedules[name] = (schedule, now if timer.run_on_startup else schedule.next_after(now))
        self._thread = threading.Thread(target=self._dispatch_forever, name="durable-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop everything start() started; a second call does nothing (a test may stop a runner early)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._http is not None:
            self._http.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._functions.stop()
        if self.store is not None:
            with self._guard:
                self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the dispatcher ---------------------------------------------------------------------------

    def _dispatch_forever(self) -> None:
        while not self._stop.is_set():
            try:
                progressed = self._step()
            except Exception:
                log.exception("durable dispatcher step failed")
                progressed = False
                self._stop.wait(0.2)
            with self._cond:
                self._cond.notify_all()
            if progressed or self._stop.is_set() or self._maybe_advance():
                continue
            self._wake.wait(self._sleep_time())
            self._wake.clear()

    def _step(self) -> bool:
        assert self.store is not None and self.engine is not None
        now = self.clock.now()
        progressed = self.store.fire_due_timers(now, _timer_fired) > 0
        progressed |= self._dispatch_activities()
        progressed |= self._fire_schedules(now)
        for instance_id in self.store.runnable_instances():
            if self._stop.is_set():
                break
            try:
                progressed |= self.engine.run_next(instance_id)
            except Exception as exc:
                log.exception("episode of %s failed inside the runner", instance_id)
                self._fail_broken(instance_id, exc)
                progressed = True
        return progressed

    def _fail_broken(self, instance_id: str, exc: Exception) -> None:
        """A runner bug must not spin forever on one instance: fail it, keeping the reason."""
        assert self.store is not None
        with self.store.tx() as db:
            db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
            db.execute(
                "UPDATE instances SET status = 'Failed', output = ?, last_updated = ? WHERE instance_id = ?",
                (json.dumps(f"local Durable runner error: {type(exc).__name__}: {exc}"), self.clock.now(), instance_id),
            )

    def _dispatch_activities(self) -> bool:
        assert self.store is not None and self._pool is not None
        started = False
        for row in self.store.queued_activities():
            if row["id"] in self._inflight:
                continue
            if len(self._inflight) >= self.max_activities:
                break
            self._inflight.add(row["id"])
            self._pool.submit(self._run_activity, dict(row))
            started = True
        return started

    def _run_activity(self, row: dict) -> None:
        name, task_id = row["name"], row["task_id"]
        failed = False
        try:
            entry = self.registry.activities.get(name)
            if entry is None:
                raise LookupError(unknown_function(name, "activity", list(self.registry.activities)))
            fn, arg = entry
            assert self.functions_loop is not None
            value = run_user_function(
                fn, call_kwargs(fn, {arg: decode_activity_input(row["input"])}, name), self.functions_loop
            )
            event = p.event(
                p.TASK_COMPLETED, self.clock.now(), TaskScheduledId=task_id, Result=encode_activity_output(value)
            )
        except Exception as exc:
            failed = True
            event = p.event(
                p.TASK_FAILED,
                self.clock.now(),
                TaskScheduledId=task_id,
                Reason=f"Activity function '{name}' failed: {type(exc).__name__}: {exc}",
                Details="".join(traceback.format_exception(exc)),
            )
        try:
            with self._guard:
                if not self._stop.is_set():  # a stopping runner leaves the row: the next run repeats it
                    assert self.store is not None
                    self.store.complete_activity(row["id"], event, solo=bool(row["solo"]) and failed)
        finally:
            self._inflight.discard(row["id"])
            self._wake.set()

    def _fire_schedules(self, now: float) -> bool:
        fired = False
        for name, (schedule, due) in list(self._schedules.items()):
            if due <= now:
                self._schedules[name] = (schedule, schedule.next_after(now))
                self._start_trigger(name)
                fired = True
        return fired

    def _maybe_advance(self) -> bool:
        advance_to = getattr(self.clock, "advance_to", None)
        if advance_to is None or not self.is_idle():
            self._idle_since = None
            return False
        if not (self.auto_advance or any(not _safe(pred) for pred in list(self._drivers))):
            return False
        if self._idle_since is None:
            self._idle_since = time.monotonic()
        if time.monotonic() - self._idle_since < self.idle_grace:
            return False
        due = self._next_due()
        if due is None:
            return False
        advance_to(due)
        self._idle_since = None
        return True

    def _next_due(self) -> float | None:
        assert self.store is not None
        candidates = [t for t in [self.store.next_timer(), *(d for _, d in self._schedules.values())] if t is not None]
        return min(candidates) if candidates else None

    def _sleep_time(self) -> float:
        if hasattr(self.clock, "advance_to"):
            return 0.05  # someone else may move a shared virtual clock
        due = self._next_due()
        return 1.0 if due is None else max(0.01, min(1.0, due - self.clock.now()))

    def is_idle(self) -> bool:
        """Nothing runnable right now: no inbox work, no due timer, no queued or running activity."""
        if self._inflight or self._triggers_inflight:
            return False
        return self._store().quiet(self.clock.now())

    # ---- driving (tests and CLI) -------------------------------------------------------------------

    def run_until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """Run (moving a virtual clock to the next timer while idle) until predicate() holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._drivers.append(predicate)
        self._wake.set()
        try:
            while not predicate():
                if self._thread is None or not self._thread.is_alive():
                    raise RunnerError("the runner is not running")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not reached within {timeout:g}s")
                with self._cond:
                    self._cond.wait(min(remaining, 0.05))
        finally:
            with self._cond:
                self._drivers.remove(predicate)

    def wait_for(self, instance_id: str, timeout: float = 60.0) -> dict:
        """Run until the instance is Completed, Failed or Terminated; return its status payload."""

        def finished() -> bool:
            row = self._store().instance(instance_id)
            return row is not None and row["status"] in TERMINAL_STATUSES

        self.run_until(finished, timeout)
        status = self.status(instance_id, show_history=True, show_history_output=True)
        assert status is not None
        return status

    def run_until_idle(self, timeout: float = 60.0) -> None:
        """Run what is runnable without moving the clock (unless auto_advance is on)."""
        self.run_until(self.is_idle, timeout)

    def advance(self, seconds: float, timeout: float = 60.0) -> None:
        """Move a virtual clock forward, then let whatever became due run."""
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise RunnerError("advance() needs a VirtualClock")
        advance(seconds)
        self._wake.set()
        self.run_until_idle(timeout)

    def next_timer(self) -> float | None:
        return self._store().next_timer()

    # ---- functions and the client -------------------------------------------------------------------

    @property
    def system_key(self) -> str:
        """The webhooks' system key (`code=`), the same for every runner on this state dir."""
        if self._system_key is None:
            raise RunnerError("the runner has not been started")
        return self._system_key

    def client_binding(self) -> str:
        """The durableClient binding JSON the host hands a client function."""
        if self.base_url is None:
            raise RunnerError("the client binding needs the runner's HTTP host (http=True)")
        return json.dumps(client_binding(self.base_url, self.host.hub_name, self.system_key))

    def management_urls(self, instance_id: str) -> dict[str, str]:
        """The instance's webhook URLs (what create_http_management_payload returns)."""
        urls = json.loads(self.client_binding())["managementUrls"]
        return {k: v.replace("INSTANCEID", instance_id) for k, v in urls.items()}

    def client(self) -> Any:
        """A real DurableOrchestrationClient on this runner; await its calls through call()."""
        from azure.durable_functions import DurableOrchestrationClient

        return DurableOrchestrationClient(self.client_binding())

    def call(self, coro: Coroutine, timeout: float = 60.0) -> Any:
        """Run a coroutine on the functions loop, where the SDK's shared aiohttp session lives."""
        try:
            return self._functions.call(coro, timeout)
        except LoopNotRunning as exc:
            raise RunnerError(str(exc)) from None

    def trigger(self, name: str, timeout: float = 60.0) -> Any:
        """Invoke a timer-triggered function once, as the host does on its schedule."""
        timer = self.registry.timers.get(name)
        if timer is None:
            known = ", ".join(sorted(self.registry.timers)) or "none"
            raise ValueError(f"no timer-triggered function named {name!r} (known: {known})")
        return self.call(invoke_async(timer.fn, self._timer_kwargs(timer)), timeout)

    def _timer_kwargs(self, timer: Any) -> dict:
        values: dict[str, Any] = {timer.arg_name: func.timer.TimerRequest(past_due=False)}
        if timer.client_arg:
            values[timer.client_arg] = self.client_binding()
        return call_kwargs(timer.fn, values, timer.name)

    def _start_trigger(self, name: str) -> None:
        timer = self.registry.timers[name]
        assert self.functions_loop is not None
        with self._triggers_lock:
            self._triggers_inflight += 1
        future = asyncio.run_coroutine_threadsafe(
            invoke_async(timer.fn, self._timer_kwargs(timer)), self.functions_loop
        )

        def done(f: Any) -> None:
            with self._triggers_lock:
                self._triggers_inflight -= 1
            if f.exception() is not None:
                log.error("timer function %s failed: %s", name, f.exception())
            self._wake.set()

        future.add_done_callback(done)

    def _store(self) -> Store:
        if self.store is None:
            raise RunnerError("the runner has not been started")
        return self.store


def load_system_key(state_dir: Path) -> str:
    """STATE/durable.keys.json's system key, made (random, 0600) on first use; a damaged file is an error."""
    path = state_dir / KEYS_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        key = secrets.token_urlsafe(40)
        _write_private(path, {"systemKeys": [{"name": SYSTEM_KEY_NAME, "value": key}]})
        return key
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{path} cannot be read ({exc}); {_NEW_KEY_HINT}") from None
    keys = data.get("systemKeys") if isinstance(data, dict) else None
    value = next((k.get("value") for k in keys or [] if isinstance(k, dict) and k.get("name") == SYSTEM_KEY_NAME), None)
    if not isinstance(value, str) or not _KEY_SHAPE.fullmatch(value):
        raise RunnerError(f"{path} holds no valid {SYSTEM_KEY_NAME} system key; {_NEW_KEY_HINT}")
    return value


_NEW_KEY_HINT = "delete it to make a new system key (webhook URLs handed out before then stop working)"


def _write_private(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _timer_fired(task_id: int, fire_at: float, fire_text: str) -> dict:
    return p.event(p.TIMER_FIRED, fire_at, TimerId=task_id, FireAt=fire_text)


def _safe(predicate: Callable[[], bool]) -> bool:
    try:
        return bool(predicate())
    except Exception:
        return False
