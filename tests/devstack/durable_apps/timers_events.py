"""Toy app: durable timers, approval vs timeout, external events, custom status and determinism."""

from __future__ import annotations

import datetime as dt

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def long_timer(context: df.DurableOrchestrationContext):
    fire_at = context.current_utc_datetime + dt.timedelta(days=2)
    yield context.create_timer(fire_at)
    return {"fire_at": fire_at.isoformat(), "woke_at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    """The human-interaction pattern, cancelling the timeout when the approval wins."""
    deadline = context.current_utc_datetime + dt.timedelta(hours=context.get_input() or 1)
    timeout = context.create_timer(deadline)
    approved = context.wait_for_external_event("approve")
    context.set_custom_status({"waiting_for": "approve"})
    winner = yield context.task_any([approved, timeout])
    if winner == approved:
        timeout.cancel()
        return {"approved": approved.result}
    return {"approved": None, "timed_out_at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def forgets_cancel(context: df.DurableOrchestrationContext):
    """Returns after the event without cancelling the timer: DTFx keeps it Running until the timer fires."""
    timeout = context.create_timer(context.current_utc_datetime + dt.timedelta(hours=3))
    approved = context.wait_for_external_event("approve")
    winner = yield context.task_any([approved, timeout])
    return "approved" if winner == approved else "timed out"


@app.orchestration_trigger(context_name="context")
def two_events(context: df.DurableOrchestrationContext):
    first = yield context.wait_for_external_event("first")
    second = yield context.wait_for_external_event("second")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def fail_fast(context: df.DurableOrchestrationContext):
    """task_all fails on its first failed child, but the open timer still delays the instance's end."""
    yield context.task_all(
        [
            context.call_activity("refuse", "x"),
            context.create_timer(context.current_utc_datetime + dt.timedelta(hours=1)),
        ]
    )
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def determinism(context: df.DurableOrchestrationContext):
    seen = {"replaying": [context.is_replaying], "times": [context.current_utc_datetime.isoformat()]}
    uuids = [context.new_uuid(), context.new_uuid()]
    context.set_custom_status({"first_uuid": uuids[0]})
    yield context.call_activity("refuse_not", "a")
    seen["replaying"].append(context.is_replaying)
    seen["times"].append(context.current_utc_datetime.isoformat())
    yield context.create_timer(context.current_utc_datetime + dt.timedelta(minutes=10))
    seen["replaying"].append(context.is_replaying)
    seen["times"].append(context.current_utc_datetime.isoformat())
    uuids.append(context.new_uuid())
    return {**seen, "uuids": uuids}


@app.activity_trigger(input_name="value")
def refuse(value: str) -> None:
    raise PermissionError(f"refused {value}")


@app.activity_trigger(input_name="value")
def refuse_not(value: str) -> str:
    return value
