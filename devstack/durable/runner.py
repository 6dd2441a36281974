"""The local Durable runner: dispatcher, activity worker pool, clock, and the management operations."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions._durable_functions import df_dumps

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
from devstack.durable.ncrontab import parse as parse_schedule
from devstack.durable.settings import load_host_json, load_settings
from devstack.durable.store import ACTIVE_STATUSES, DB_NAME, TERMINAL_STATUSES, Store

log = logging.getLogger("devstack.durable")

LOCK_NAME = "durable.lock"
_INVALID_ID_CHARS = set("/\\?#")


class RunnerError(Exception):
    """The runner cannot do what was asked (bad input, or it is not running)."""


class NotFoundError(RunnerError):
    """No instance with that id."""


class GoneError(RunnerError):
    """The instance has already finished."""


class Runner:
    """Runs a DFApp's orchestrations, activities and triggers on the local stack.

    `clock` is shared with the rest of the stack: with a VirtualClock the runner moves it to the next
    timer whenever nothing else can run (always with `auto_advance`, otherwise only inside run_until and
    wait_for), so long timers finish at once and the cluster simulator's progress follows.
    """

    def __init__(self, app: str | ModuleType | Any, state_dir: Path, clock: Clock | None = None, *,
                 host_json: Path | None = None, settings: Path | None = None, http: bool = True,
                 port: int = 0, auto_advance: bool = False, schedule_timers: bool = False,
                 max_activities: int | None = None, idle_grace: float = 0.0) -> None:
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
        self.system_key = uuid.uuid4().hex
        self._want_http, self._port = http, port
        self._schedule_timers = schedule_timers
        self._lock_file: Any = None
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.base_url: str | None = None
        self.functions_loop: asyncio.AbstractEventLoop | None = None
        self._http: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._inflight: set[int] = set()
        self._triggers_inflight = 0
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
        self.store = Store(self.state_dir / DB_NAME)
        self.engine = Engine(self.store, self.registry, self.clock)
        self.functions_loop = asyncio.new_event_loop()
        _forget_foreign_sdk_session()
        self._loop_thread = threading.Thread(target=self.functions_loop.run_forever, name="durable-functions",
                                             daemon=True)
        self._loop_thread.start()
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
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._http is not None:
            self._http.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.functions_loop is not None:
            self._release_sdk_session()
            self.functions_loop.call_soon_threadsafe(self.functions_loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
        if self.store is not None:
            with self._guard:
                self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _release_sdk_session(self) -> None:
        """The SDK keeps one module-wide aiohttp session bound to the loop that made it: close ours."""
        from azure.durable_functions.models.utils import http_utils
        session = http_utils._client_session
        if session is not None and getattr(session, "_loop", None) is self.functions_loop:
            try:
                self.call(session.close(), timeout=5)
            except Exception:  # a session that will not close is dropped all the same
                log.debug("could not close the SDK's client session", exc_info=True)
            http_utils._client_session = None

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
            db.execute("UPDATE instances SET status = 'Failed', output = ?, last_updated = ? "
                       "WHERE instance_id = ?",
                       (json.dumps(f"local Durable runner error: {type(exc).__name__}: {exc}"),
                        self.clock.now(), instance_id))

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
            value = run_user_function(fn, call_kwargs(fn, {arg: decode_activity_input(row["input"])}, name),
                                      self.functions_loop)
            event = p.event(p.TASK_COMPLETED, self.clock.now(), TaskScheduledId=task_id,
                            Result=encode_activity_output(value))
        except Exception as exc:
            failed = True
            event = p.event(p.TASK_FAILED, self.clock.now(), TaskScheduledId=task_id,
                            Reason=f"Activity function '{name}' failed: {type(exc).__name__}: {exc}",
                            Details="".join(traceback.format_exception(exc)))
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
        candidates = [t for t in [self.store.next_timer(), *(d for _, d in self._schedules.values())]
                      if t is not None]
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

    # ---- management operations (used by the HTTP host and by tests) -------------------------------

    def create(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        """Start `name`; input_json is the ExecutionStarted input text (the body of a start request)."""
        if name not in self.registry.orchestrators:
            raise ValueError(unknown_function(name, "orchestrator", list(self.registry.orchestrators)))
        instance_id = instance_id or uuid.uuid4().hex
        if instance_id.startswith("@") or any(c in _INVALID_ID_CHARS or ord(c) < 32 for c in instance_id):
            raise ValueError("Orchestration instance ids must not start with @ or contain /, \\, #, ?, "
                             "or control characters.")
        if len(instance_id) > 256:
            raise ValueError("Instance ID lengths must not exceed 256 characters.")
        if input_json is not None:
            json.loads(input_json)  # refuses what is not JSON before anything is stored
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        started = p.execution_started(now, name, instance_id, execution_id, input_json)
        self._store().create_instance(instance_id=instance_id, name=name, execution_id=execution_id,
                                      input_json=input_json, now=now, started_event=started)
        log.info("instance %s (%s) scheduled", instance_id, name)
        self._wake.set()
        return instance_id

    def start_new(self, name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        """As DurableOrchestrationClient.start_new encodes it: the input's df_dumps text, as a JSON string."""
        input_json = json.dumps(df_dumps(client_input)) if client_input is not None else None
        return self.create(name, instance_id, input_json)

    def post_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        """EventRaised with input_text (JSON text) as its Input, whether or not the instance waits yet."""
        if not name:
            raise ValueError("event name must be a non-empty string")
        if input_text is not None:
            json.loads(input_text)
        self._require_active(instance_id)
        self._store().post(instance_id, None, "event",
                           p.event(p.EVENT_RAISED, self.clock.now(), Name=name, Input=input_text))
        self._wake.set()

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise an event whose data the orchestrator receives as the object itself (the webhook's way)."""
        self.post_event(instance_id, name, json.dumps(data))

    def terminate(self, instance_id: str, reason: str | None = None) -> None:
        event = p.event(p.EXECUTION_TERMINATED, self.clock.now(), Input=reason)
        self._control(instance_id, "terminate", event)

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._control(instance_id, "suspend", p.event(p.EXECUTION_SUSPENDED, self.clock.now(), Reason=reason))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._control(instance_id, "resume", p.event(p.EXECUTION_RESUMED, self.clock.now(), Reason=reason))

    def _control(self, instance_id: str, kind: str, event: dict) -> None:
        self._require_active(instance_id)
        self._store().post(instance_id, None, kind, event)
        self._wake.set()

    def _require_active(self, instance_id: str) -> dict:
        row = self._store().instance(instance_id)
        if row is None:
            raise NotFoundError(f"No instance with ID '{instance_id}' found.")
        if row["status"] in TERMINAL_STATUSES:
            raise GoneError(f"Instance with ID {instance_id} is gone: it is {row['status']}")
        return row

    def restart(self, instance_id: str, new_id: bool = True) -> str:
        row = self._store().instance(instance_id)
        if row is None:
            raise NotFoundError(f"No instance with ID '{instance_id}' found.")
        return self.create(row["name"], None if new_id else instance_id, row["input"])

    def purge(self, instance_id: str) -> int:
        """Delete a finished instance and its history; 0 when there is none, RunnerError when it is live."""
        row = self._store().instance(instance_id)
        if row is None:
            return 0
        if row["status"] in ACTIVE_STATUSES:
            raise RunnerError(f"Only orchestrations in a terminal state can be purged, but the orchestration "
                              f"with instance ID {instance_id} has status {row['status']}")
        return self._store().purge([instance_id])

    def purge_by(self, created_from: float, created_to: float | None = None,
                 statuses: list[str] | None = None) -> int:
        wanted = [s for s in (statuses or TERMINAL_STATUSES) if s in TERMINAL_STATUSES]
        rows = self._store().list_instances(created_from=created_from, created_to=created_to, statuses=wanted)
        return self._store().purge([r["instance_id"] for r in rows]) if rows else 0

    def status(self, instance_id: str, *, show_history: bool = False, show_history_output: bool = False,
               show_input: bool = True) -> dict | None:
        """The status API's payload (StatusResponsePayload), or None for an unknown id."""
        row = self._store().instance(instance_id)
        if row is None:
            return None
        history = None
        if show_history and row["status"] != "Pending":
            history = p.compact_history(self._store().history(instance_id), show_history_output)
        return status_payload(row, show_input, history)

    def statuses(self, *, created_from: float | None = None, created_to: float | None = None,
                 statuses: list[str] | None = None, prefix: str | None = None,
                 show_input: bool = True) -> list[dict]:
        rows = self._store().list_instances(created_from=created_from, created_to=created_to,
                                            statuses=statuses, prefix=prefix)
        return [status_payload(r, show_input, None) for r in rows]

    # ---- functions and the client -------------------------------------------------------------------

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
        assert self.functions_loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.functions_loop).result(timeout)

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
        self._triggers_inflight += 1
        future = asyncio.run_coroutine_threadsafe(invoke_async(timer.fn, self._timer_kwargs(timer)),
                                                  self.functions_loop)

        def done(f: Any) -> None:
            self._triggers_inflight -= 1
            if f.exception() is not None:
                log.error("timer function %s failed: %s", name, f.exception())
            self._wake.set()
        future.add_done_callback(done)

    def _store(self) -> Store:
        if self.store is None:
            raise RunnerError("the runner has not been started")
        return self.store


def status_payload(row: dict, show_input: bool, history: list[dict] | None) -> dict:
    payload = {
        "name": row["name"], "instanceId": row["instance_id"], "runtimeStatus": row["status"],
        "input": p.parse_to_token(row["input"]) if show_input else None,
        "customStatus": p.parse_to_token(row["custom_status"]),
        "output": p.parse_to_token(row["output"]),
        "createdTime": p.format_status_time(row["created"]),
        "lastUpdatedTime": p.format_status_time(row["last_updated"]),
    }
    if history is not None:
        payload["historyEvents"] = history
    return payload


def client_binding(base_url: str, hub: str, system_key: str) -> dict:
    """Binding JSON whose URLs have the shapes EXT HttpApiHandler builds."""
    webhooks = f"{base_url}/runtime/webhooks/durabletask"
    query = f"taskHub={hub}&connection=Storage&code={system_key}"
    instance = f"{webhooks}/instances/INSTANCEID"
    create = f"{webhooks}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return {
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{create}?code={system_key}",
            "createAndWaitOnNewInstancePostUri":
                f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&code={system_key}",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        },
        "baseUrl": webhooks,
        "requiredQueryStringParameters": f"code={system_key}",
        "rpcBaseUrl": f"{base_url}/durabletask/",
        "httpBaseUrl": "",
    }


def _forget_foreign_sdk_session() -> None:
    """Drop an SDK session left bound to a loop that has gone (another runner, or asyncio.run)."""
    from azure.durable_functions.models.utils import http_utils
    session = http_utils._client_session
    loop = getattr(session, "_loop", None)
    if session is not None and (loop is None or loop.is_closed() or not loop.is_running()):
        http_utils._client_session = None


def _timer_fired(task_id: int, fire_at: float, fire_text: str) -> dict:
    return p.event(p.TIMER_FIRED, fire_at, TimerId=task_id, FireAt=fire_text)


def _safe(predicate: Callable[[], bool]) -> bool:
    try:
        return bool(predicate())
    except Exception:
        return False
