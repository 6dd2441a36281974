"""The out-of-process replay protocol: DTFx history events, the context JSON, the SDK's state and actions."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

# DTFx EventType numbers (History/EventType.cs); the SDK reads them as integers.
EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_RAISED = 15
EXECUTION_SUSPENDED = 19
EXECUTION_RESUMED = 20

EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
}

# Action types (SDK models/actions/ActionType.py, EXT AsyncActionType).
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
WHEN_ANY = 11
WHEN_ALL = 12
UNSUPPORTED_ACTIONS = {CALL_ENTITY: "call_entity", CALL_HTTP: "call_http", SIGNAL_ENTITY: "signal_entity"}

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
# The documented limit on custom status: 16 KB of UTF-16 JSON.
CUSTOM_STATUS_LIMIT_BYTES = 16 * 1024


def format_ts(epoch: float) -> str:
    """An epoch as the .NET round-trip UTC text DTFx writes (7 fractional digits)."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0Z"


def format_status_time(epoch: float) -> str:
    """createdTime/lastUpdatedTime as the status API writes them: `yyyy-MM-ddTHH:mm:ssZ`."""
    return f"{dt.datetime.fromtimestamp(epoch, dt.UTC):%Y-%m-%dT%H:%M:%S}Z"


def parse_ts(text: str) -> float:
    """ISO-8601 text (with `Z`, up to 7 fractional digits, or naive meaning UTC) to epoch seconds."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{(digits + '000000')[:6]}{zone}"
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def event(event_type: int, timestamp: float, event_id: int = -1, **fields: Any) -> dict:
    """One history event with the four keys the SDK requires, PascalCase fields after them."""
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_ts(timestamp),
        **fields,
    }


def execution_started(
    timestamp: float,
    name: str,
    instance_id: str,
    execution_id: str,
    input_json: str | None,
    *,
    parent: dict | None = None,
) -> dict:
    return event(
        EXECUTION_STARTED,
        timestamp,
        Name=name,
        Version="",
        Input=input_json,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Tags=None,
        Correlation=None,
        ScheduledStartTime=None,
        Generation=0,
    )


def context_json(history: list[dict], instance_id: str, parent_instance_id: str | None, input_value: Any) -> str:
    """The body the extension hands the orchestrator trigger (OrchestrationContextToString)."""
    return json.dumps(
        {
            "history": history,
            "input": input_value,
            "instanceId": instance_id,
            "isReplaying": False,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
    )


@dataclass
class EpisodeResult:
    """What one call of the orchestrator's handle returned, after the host-side failure split."""

    done: bool
    actions: list[dict]
    output: Any = None
    has_custom_status: bool = False
    custom_status: Any = None
    error: str | None = None
    raw: dict = field(default_factory=dict)


def parse_state(state_text: str | None, raised: BaseException | None) -> EpisodeResult:
    """Parse the SDK's OrchestratorState; a raised exception carries it after `$OutOfProcData$:`."""
    error: str | None = None
    if raised is not None:
        message = str(raised)
        if OUT_OF_PROC_MARKER not in message:
            return EpisodeResult(done=False, actions=[], error=message or type(raised).__name__)
        error, _, state_text = message.partition(OUT_OF_PROC_MARKER)
    state = json.loads(state_text or "{}")
    if raised is not None:
        error = state.get("error") or error or type(raised).__name__
    return EpisodeResult(
        done=bool(state.get("isDone")),
        actions=flatten_actions(state.get("actions") or []),
        output=state.get("output"),
        has_custom_status="customStatus" in state,
        custom_status=state.get("customStatus"),
        error=error if error is not None else state.get("error"),
        raw=state,
    )


def flatten_actions(actions: list) -> list[dict]:
    """Depth-first list of atomic actions: the order in which DTFx hands out task ids."""
    flat: list[dict] = []

    def walk(item: Any) -> None:
        if isinstance(item, list):
            for sub in item:
                walk(sub)
        elif item.get("actionType") in (WHEN_ANY, WHEN_ALL):
            for sub in item.get("compoundActions") or []:
                walk(sub)
        else:
            flat.append(item)

    walk(actions)
    return flat


def action_signature(action: dict) -> str:
    """What replay must reproduce for an already-recorded action (non-determinism check)."""
    kind = action.get("actionType")
    name = action.get("functionName") or action.get("externalEventName") or ""
    return f"{kind}:{name}"


def custom_status_too_large(value: Any) -> bool:
    return len(json.dumps(value)) * 2 > CUSTOM_STATUS_LIMIT_BYTES


def parse_to_token(text: str | None) -> Any:
    """The status API's ParseToJToken: JSON text to a value, raw text when it is not JSON."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return ""
    try:
        return json.loads(value)
    except ValueError:
        return value


def compact_history(events: list[dict], show_output: bool) -> list[dict]:
    """historyEvents as the status API returns them (EXT DurableClient.GetDurableOrchestrationStatusAsync)."""
    items = [dict(e) for e in events]
    scheduled: dict[str, tuple[int, str, str]] = {}
    drop: set[int] = set()
    for index, item in enumerate(items):
        kind = item["EventType"]
        item["EventType"] = EVENT_NAMES.get(kind, str(kind))
        if kind in (TASK_SCHEDULED, SUB_ORCHESTRATION_CREATED):
            scheduled[f"{kind}_{item['EventId']}"] = (index, item.get("Name", ""), item["Timestamp"])
            item.pop("Version", None)
            item.pop("Input", None)
        elif kind in (TASK_COMPLETED, TASK_FAILED, SUB_ORCHESTRATION_COMPLETED, SUB_ORCHESTRATION_FAILED):
            origin = TASK_SCHEDULED if kind in (TASK_COMPLETED, TASK_FAILED) else SUB_ORCHESTRATION_CREATED
            match = scheduled.get(f"{origin}_{item.get('TaskScheduledId')}")
            if match:
                item["ScheduledTime"] = match[2]
                item["FunctionName"] = match[1]
                drop.add(match[0])
            item.pop("TaskScheduledId", None)
            _result(item, show_output and kind in (TASK_COMPLETED, SUB_ORCHESTRATION_COMPLETED))
        elif kind == EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags", "Input"):
                item.pop(key, None)
        elif kind == EXECUTION_COMPLETED:
            _result(item, show_output)
        elif kind in (EXECUTION_TERMINATED, EVENT_RAISED):
            item.pop("Input", None)
        elif kind == TIMER_FIRED:
            item.pop("TimerId", None)
        elif kind in (ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED):
            drop.add(index)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
    return [item for index, item in enumerate(items) if index not in drop]


def _result(item: dict, show: bool) -> None:
    if show:
        item["Result"] = parse_to_token(item.get("Result"))
    else:
        item.pop("Result", None)
