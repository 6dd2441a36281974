"""Toy app for starts on an existing instance id: one orchestrator per runtime status a test needs to hold."""

from __future__ import annotations

import threading
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class Gate:
    """Holds the runner's dispatcher inside one orchestrator episode until the test releases it.

    Episodes run one at a time on the dispatcher thread and an instance's status is written when its
    episode commits, so while the first episode of an instance is held its status stays Pending (or
    ContinuedAsNew, for the first episode after continue_as_new): how a test sees those brief states.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def hold(self) -> None:
        if self.entered.is_set() or _OPEN.is_set():  # only the first pass holds; replays go straight through
            return
        self.entered.set()
        if not self.release.wait(60):
            raise TimeoutError("the test never released the gate")


GATES: dict[str, Gate] = {}
_OPEN = threading.Event()  # set when a test ends: nothing holds any more
_gates_lock = threading.Lock()


def gate(key: str) -> Gate:
    with _gates_lock:
        return GATES.setdefault(key, Gate())


def release_all() -> None:
    """Let every held episode go on (the gates stay, so their replays pass)."""
    with _gates_lock:
        for held in GATES.values():
            held.release.set()


def reset() -> None:
    """A test starts: no gates, and gates hold again."""
    with _gates_lock:
        GATES.clear()
        _OPEN.clear()


def open_all() -> None:
    """A test ends: release everything and hold nothing more, whatever still runs."""
    _OPEN.set()
    release_all()


@app.orchestration_trigger(context_name="context")
def wait_for_go(context: df.DurableOrchestrationContext):
    """Running until the `go` event; answers its input and the event's data."""
    go = yield context.wait_for_external_event("go")
    return {"input": context.get_input(), "go": go}


@app.orchestration_trigger(context_name="context")
def echo(context: df.DurableOrchestrationContext):
    """Completes at once with its input."""
    return context.get_input()
    yield  # a generator, as every orchestrator is


@app.orchestration_trigger(context_name="context")
def boom(context: df.DurableOrchestrationContext):
    raise ValueError("boom failed on purpose")
    yield


@app.orchestration_trigger(context_name="context")
def gated(context: df.DurableOrchestrationContext):
    """Input {"gate": key, "continue_first": bool}: holds its first episode (after one continue_as_new when
    asked), then waits for `go` like wait_for_go."""
    data: dict[str, Any] = context.get_input()
    if data.get("continue_first"):
        context.continue_as_new({**data, "continue_first": False})
        return None
    gate(data["gate"]).hold()
    go = yield context.wait_for_external_event("go")
    return {"input": data, "go": go}


@app.orchestration_trigger(context_name="context")
def parent_of(context: df.DurableOrchestrationContext):
    """Starts `wait_for_go` as a sub-orchestration with the instance id its input names."""
    try:
        result = yield context.call_sub_orchestrator("wait_for_go", "child input", context.get_input())
    except Exception as exc:
        return {"failed": str(exc)}
    return {"child": result}
