"""Toy app: call_activity_with_retry and call_sub_orchestrator_with_retry, retried as DTFx retries them."""

from __future__ import annotations

import threading

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# How many times each key has been attempted; an activity fails until its key reaches `succeed_on`.
ATTEMPTS: dict[str, int] = {}
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        ATTEMPTS.clear()


def _attempt(key: str) -> int:
    with _lock:
        ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
        return ATTEMPTS[key]


@app.orchestration_trigger(context_name="context")
def retry_ok(context: df.DurableOrchestrationContext):
    result = yield context.call_activity_with_retry("flaky", df.RetryOptions(1000, 3), {"key": "ok", "succeed_on": 3})
    after = yield context.call_activity("plain", result)
    return after


@app.orchestration_trigger(context_name="context")
def retry_exhausted(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity_with_retry("flaky", df.RetryOptions(2000, 2), {"key": "never", "succeed_on": 99})
    except Exception as exc:
        return str(exc)
    return "succeeded?"


@app.orchestration_trigger(context_name="context")
def retry_uncaught(context: df.DurableOrchestrationContext):
    yield context.call_activity_with_retry("flaky", df.RetryOptions(1000, 2), {"key": "boom", "succeed_on": 9})
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def retry_fan_out(context: df.DurableOrchestrationContext):
    """Retries interleaved with plain tasks: every id must line up with the SDK's own numbering."""
    tasks = [
        context.call_activity_with_retry("flaky", df.RetryOptions(1000, 4), {"key": "a", "succeed_on": 3}),
        context.call_activity("plain", "b"),
        context.call_activity_with_retry("flaky", df.RetryOptions(3000, 4), {"key": "c", "succeed_on": 2}),
        context.create_timer(context.current_utc_datetime.replace(microsecond=0) + _minutes(1)),
    ]
    results = yield context.task_all(tasks)
    last = yield context.call_activity("plain", "d")
    return [*results[:3], last]


@app.orchestration_trigger(context_name="context")
def sub_retry(context: df.DurableOrchestrationContext):
    result = yield context.call_sub_orchestrator_with_retry(
        "flaky_child", df.RetryOptions(500, 3), {"key": "child", "succeed_on": 3}, f"{context.instance_id}-kid"
    )
    return result


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    value = yield context.call_activity("flaky", context.get_input())
    return {"value": value, "me": context.instance_id}


@app.activity_trigger(input_name="spec")
def flaky(spec: dict) -> str:
    attempt = _attempt(spec["key"])
    if attempt < spec["succeed_on"]:
        raise ConnectionError(f"attempt {attempt} of {spec['key']} failed")
    return f"{spec['key']} ok on attempt {attempt}"


@app.activity_trigger(input_name="value")
def plain(value: str) -> str:
    return f"plain({value})"


def _minutes(n: int):
    import datetime as dt

    return dt.timedelta(minutes=n)
