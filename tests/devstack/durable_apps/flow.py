"""Toy app: sub-orchestrations (from a blueprint), continue_as_new with bounded history, custom status."""

from __future__ import annotations

import datetime as dt

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
# The children and the activity live in a blueprint, registered below, as the workflow's modules do.
bp = df.Blueprint()


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    named = yield context.call_sub_orchestrator("child", {"n": 1}, f"{context.instance_id}-named")
    unnamed = yield context.call_sub_orchestrator("child", {"n": 2})
    try:
        yield context.call_sub_orchestrator("child_boom", None, f"{context.instance_id}-boom")
        caught = None
    except Exception as exc:
        caught = str(exc)
    return {"named": named, "unnamed": unnamed, "caught": caught}


@bp.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    data = context.get_input()
    doubled = yield context.call_activity("double", data["n"])
    return {"doubled": doubled, "me": context.instance_id, "parent": context.parent_instance_id}


@bp.orchestration_trigger(context_name="context")
def child_boom(context: df.DurableOrchestrationContext):
    yield context.call_activity("double", 0)
    raise RuntimeError("child exploded")


@app.orchestration_trigger(context_name="context")
def eternal(context: df.DurableOrchestrationContext):
    """Counts to `limit`, one hour apart, continuing as new each time; the last round waits for `late`."""
    state = context.get_input()
    context.set_custom_status({"round": state["n"]}) if state["n"] % 2 == 0 else None
    if state["n"] < state["limit"]:
        yield context.create_timer(context.current_utc_datetime + dt.timedelta(hours=1))
        context.continue_as_new({**state, "n": state["n"] + 1})
        return None
    late = context.wait_for_external_event("late")
    timeout = context.create_timer(context.current_utc_datetime + dt.timedelta(minutes=5))
    winner = yield context.task_any([late, timeout])
    if winner == late:
        timeout.cancel()
        return {"rounds": state["n"], "late": late.result}
    return {"rounds": state["n"], "late": "dropped by continue_as_new"}


@app.orchestration_trigger(context_name="context")
def status_steps(context: df.DurableOrchestrationContext):
    context.set_custom_status({"step": "one"})
    yield context.call_activity("double", 1)
    context.set_custom_status({"step": "two", "progress": [1, 2]})
    go = yield context.wait_for_external_event("go")
    yield context.call_activity("double", 2)  # this episode sets no status: the last one is kept
    return go


@app.orchestration_trigger(context_name="context")
def huge_status(context: df.DurableOrchestrationContext):
    context.set_custom_status("x" * 20_000)
    yield context.call_activity("double", 1)
    return "unreachable"


@bp.activity_trigger(input_name="n")
def double(n: int) -> int:
    return 2 * n


app.register_functions(bp)
