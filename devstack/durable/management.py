"""Management operations of the local Durable runner: start, events, terminate, purge, status and query."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from azure.functions._durable_functions import df_dumps

from devstack.clock import Clock
from devstack.durable import protocol as p
from devstack.durable.engine import unknown_function
from devstack.durable.functions import Registry
from devstack.durable.settings import ANY_STATE, HostConfig
from devstack.durable.store import ACTIVE_STATUSES, ALL_STATUSES, TERMINAL_STATUSES, Store

log = logging.getLogger("devstack.durable")

_INVALID_ID_CHARS = set("/\\?#")


class RunnerError(Exception):
    """The runner cannot do what was asked (bad input, or it is not running)."""


class NotFoundError(RunnerError):
    """No instance with that id."""


class GoneError(RunnerError):
    """The instance has already finished."""


class Management:
    """What the host's management API does, on the runner's store (mixed into Runner)."""

    registry: Registry
    clock: Clock
    host: HostConfig
    _wake: threading.Event
    started_ids: list[str]  # every instance started, in order (what a trigger started is a slice of it)

    def _store(self) -> Store:
        raise NotImplementedError

    def create(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        """Start `name`; input_json is the ExecutionStarted input text (the body of a start request).

        Every start (client, webhook, restart, in-process) comes here. An existing instance with that id is
        replaced when host.json's overridableExistingInstanceStates allows it (AnyState: always;
        NonRunningStates, the default: only a Completed, Failed, Terminated or Canceled one); otherwise
        ConflictError, with the host's message, and nothing changes.
        """
        if name not in self.registry.orchestrators:
            raise ValueError(unknown_function(name, "orchestrator", list(self.registry.orchestrators)))
        instance_id = instance_id or uuid.uuid4().hex
        if instance_id.startswith("@") or any(c in _INVALID_ID_CHARS or ord(c) < 32 for c in instance_id):
            raise ValueError(
                "Orchestration instance ids must not start with @ or contain /, \\, #, ?, or control characters."
            )
        if len(instance_id) > 256:
            raise ValueError("Instance ID lengths must not exceed 256 characters.")
        if input_json is not None:
            json.loads(input_json)  # refuses what is not JSON before anything is stored
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        started = p.execution_started(now, name, instance_id, execution_id, input_json)
        self._store().create_instance(
            instance_id=instance_id,
            name=name,
            execution_id=execution_id,
            input_json=input_json,
            now=now,
            started_event=started,
            replaceable=self.replaceable_statuses(),
        )
        log.info("instance %s (%s) scheduled", instance_id, name)
        self.started_ids.append(instance_id)
        self._wake.set()
        return instance_id

    def replaceable_statuses(self) -> tuple[str, ...]:
        """The statuses of an existing instance that a start with the same id replaces."""
        return ALL_STATUSES if self.host.overridable_states == ANY_STATE else TERMINAL_STATUSES

    def start_new(self, name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        """As DurableOrchestrationClient.start_new encodes it: the input's df_dumps text, as a JSON string.

        Raises ConflictError where the host refuses the start (see create).
        """
        input_json = json.dumps(df_dumps(client_input)) if client_input is not None else None
        return self.create(name, instance_id, input_json)

    def post_event(self, instance_id: str, name: str, input_text: str | None) -> None:
        """EventRaised with input_text (JSON text) as its Input, whether or not the instance waits yet."""
        if not name:
            raise ValueError("event name must be a non-empty string")
        if input_text is not None:
            json.loads(input_text)
        self._require_active(instance_id)
        self._store().post(
            instance_id, None, "event", p.event(p.EVENT_RAISED, self.clock.now(), Name=name, Input=input_text)
        )
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
            raise RunnerError(
                f"Only orchestrations in a terminal state can be purged, but the orchestration "
                f"with instance ID {instance_id} has status {row['status']}"
            )
        return self._store().purge([instance_id], statuses=TERMINAL_STATUSES)

    def purge_by(self, created_from: float, created_to: float | None = None, statuses: list[str] | None = None) -> int:
        wanted = [s for s in (statuses or TERMINAL_STATUSES) if s in TERMINAL_STATUSES]
        rows = self._store().list_instances(created_from=created_from, created_to=created_to, statuses=wanted)
        return self._store().purge([r["instance_id"] for r in rows], statuses=tuple(wanted)) if rows else 0

    def status(
        self,
        instance_id: str,
        *,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict | None:
        """The status API's payload (StatusResponsePayload), or None for an unknown id."""
        row = self._store().instance(instance_id)
        if row is None:
            return None
        history = None
        if show_history and row["status"] != "Pending":
            history = p.compact_history(self._store().history(instance_id), show_history_output)
        return status_payload(row, show_input, history)

    def statuses(
        self,
        *,
        created_from: float | None = None,
        created_to: float | None = None,
        statuses: list[str] | None = None,
        prefix: str | None = None,
        show_input: bool = True,
    ) -> list[dict]:
        rows = self._store().list_instances(
            created_from=created_from, created_to=created_to, statuses=statuses, prefix=prefix
        )
        return [status_payload(r, show_input, None) for r in rows]


def status_payload(row: dict, show_input: bool, history: list[dict] | None) -> dict:
    payload = {
        "name": row["name"],
        "instanceId": row["instance_id"],
        "runtimeStatus": row["status"],
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
            "createAndWaitOnNewInstancePostUri": (
                f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&code={system_key}"
            ),
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
