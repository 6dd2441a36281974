"""Toy app: sequences, fan-out/fan-in, sync and async activities, failures, an HTTP starter and a timer."""

from __future__ import annotations

import asyncio
import json
import threading

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# What the activities saw, for assertions: (activity, input) in call order, and peak concurrency.
CALLS: list[tuple[str, object]] = []
_lock = threading.Lock()
_running = {"now": 0, "peak": 0}
# A barrier the squares wait on (set by a test): it only opens when `parties` of them run at once.
_gate: list[threading.Barrier | None] = [None]


def reset(barrier: threading.Barrier | None = None) -> None:
    with _lock:
        _gate[0] = barrier
        CALLS.clear()
        _running.update(now=0, peak=0)


@app.route(route="orchestrators/{functionName}/{instanceId?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["functionName"], req.route_params.get("instanceId"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="singleton/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def singleton_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The documented singleton pattern: 409 while one is running."""
    instance_id = req.route_params["instanceId"]
    existing = await client.get_status(instance_id)
    if existing and existing.runtime_status not in (
        df.OrchestrationRuntimeStatus.Completed,
        df.OrchestrationRuntimeStatus.Failed,
        df.OrchestrationRuntimeStatus.Terminated,
    ):
        return func.HttpResponse(f"{instance_id} is {existing.runtime_status.value}", status_code=409)
    await client.start_new("wait_for_go", instance_id)
    return client.create_check_status_response(req, instance_id)


@app.route(route="echo/{name}/{count:int?}", methods=["GET", "POST"])
def echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Hands back what the worker built from the request, so a test can check the mapping."""
    seen = {
        "method": req.method,
        "url": req.url,
        "route": dict(req.route_params),
        "query": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-probe"),
        "function": context.function_name,
        "invocation": context.invocation_id,
    }
    return func.HttpResponse(json.dumps(seen), status_code=201, mimetype="application/json", headers={"X-Echo": "yes"})


@app.route(route="explode", methods=["GET"])
def explode(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the route failed")


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
@app.durable_client_input(client_name="client")
async def tick(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Starts the singleton `ticker-singleton` unless it is already running."""
    existing = await client.get_status("ticker-singleton")
    if existing and existing.runtime_status in (
        df.OrchestrationRuntimeStatus.Running,
        df.OrchestrationRuntimeStatus.Pending,
    ):
        return
    await client.start_new("wait_for_go", "ticker-singleton")


@app.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):
    name = context.get_input()
    a = yield context.call_activity("greet", name)
    b = yield context.call_activity("greet", a)
    c = yield context.call_activity("async_shout", b)
    return c


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    squares = yield context.task_all([context.call_activity("slow_square", n) for n in range(count)])
    total = yield context.call_activity("add", squares)
    return {"squares": squares, "total": total}


@app.orchestration_trigger(context_name="context")
def boom(context: df.DurableOrchestrationContext):
    yield context.call_activity("greet", "x")
    raise ValueError("orchestrator exploded")


@app.orchestration_trigger(context_name="context")
def catches_activity_failure(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("fails", "bad input")
    except Exception as exc:
        return str(exc)
    return "no failure"


@app.orchestration_trigger(context_name="context")
def wait_for_go(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("go")
    return value


@app.orchestration_trigger(context_name="context")
def calls_missing(context: df.DurableOrchestrationContext):
    yield context.call_activity("no_such_activity", 1)
    return "unreachable"


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    with _lock:
        CALLS.append(("greet", name))
    return f"Hello {name}"


@app.activity_trigger(input_name="text")
async def async_shout(text: str) -> str:
    await asyncio.sleep(0)
    with _lock:
        CALLS.append(("async_shout", text))
    return text.upper() + "!"


@app.activity_trigger(input_name="n", activity="slow_square")
def square_slowly(n: int) -> int:
    with _lock:
        _running["now"] += 1
        _running["peak"] = max(_running["peak"], _running["now"])
    barrier = _gate[0]
    if barrier is not None:
        barrier.wait()  # passes only when `parties` activities run at the same time
    with _lock:
        _running["now"] -= 1
        CALLS.append(("slow_square", n))
    return n * n


@app.activity_trigger(input_name="values")
def add(values: list) -> int:
    return sum(values)


@app.activity_trigger(input_name="payload")
def fails(payload: str) -> None:
    raise RuntimeError(f"cannot handle {payload}")


def peak_concurrency() -> int:
    return _running["peak"]
