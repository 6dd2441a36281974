"""Toy app for the kill -9 test: activities log each execution to CRASH_DIR, and one holds until released."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _dir() -> Path:
    return Path(os.environ["CRASH_DIR"])


def _log(line: str) -> None:
    with open(_dir() / "executions.log", "a") as out:
        out.write(line + "\n")


@app.route(route="start/{name}/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], req.route_params["instanceId"])
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def crash_flow(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("mark", "first")
    held = yield context.call_activity("hold", "second")
    rest = yield context.task_all([context.call_activity("mark", "third-a"), context.call_activity("mark", "third-b")])
    return [first, held, *rest]


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    """Waits on a durable timer a few seconds out, so a kill lands while the timer is armed."""
    seconds = 3
    yield context.create_timer(context.current_utc_datetime + dt.timedelta(seconds=seconds))
    done = yield context.call_activity("mark", "after-timer")
    return done


@app.activity_trigger(input_name="label")
def mark(label: str) -> str:
    _log(f"mark {label}")
    return f"marked {label}"


@app.activity_trigger(input_name="label")
def hold(label: str) -> str:
    """Records that it started, then waits (up to a minute) for the test to drop a `release` file."""
    _log(f"hold-start {label}")
    deadline = time.monotonic() + 60
    while not (_dir() / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.02)
    _log(f"hold-done {label}")
    return f"held {label}"
