"""One orchestration episode: replay the history through the SDK's handle, then record what the host would."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.clock import Clock
from devstack.durable import protocol as p
from devstack.durable.functions import Registry
from devstack.durable.store import TERMINAL_STATUSES, Commit, Message, Store

log = logging.getLogger("devstack.durable")

# Python's RetryOptions sends no maximum interval; the extension's default is 6 days.
MAX_RETRY_INTERVAL_S = 6 * 24 * 3600
CONTROL_KINDS = ("terminate", "suspend", "resume")


class RunnerFailure(Exception):
    """A failure the host itself detects (non-determinism, unknown function, unsupported API)."""


def unknown_function(name: str, kind: str, known: list[str]) -> str:
    listed = ", ".join(f"'{k}'" for k in sorted(known)) or "none"
    return (
        f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. "
        f"Additional info: The following are the known {kind} functions: {listed}."
    )


@dataclass
class _Plan:
    """Mutable bookkeeping while one episode's decisions are made."""

    commit: Commit
    now: float
    next_id: int
    open_tasks: set[int]
    completed_event: dict | None = None


class Engine:
    """Runs episodes against the store; used only from the runner's dispatcher thread."""

    def __init__(self, store: Store, registry: Registry, clock: Clock) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock

    # ---- batching ------------------------------------------------------------------------------

    def run_next(self, instance_id: str) -> bool:
        """Process the next batch of an instance's inbox; False when nothing could be done."""
        inst = self.store.instance(instance_id)
        messages = self.store.inbox(instance_id)
        if inst is None:
            self.store.drop_messages([m.seq for m in messages])
            return bool(messages)
        stale = [
            m
            for m in messages
            if inst["status"] in TERMINAL_STATUSES or m.execution_id not in (None, inst["execution_id"])
        ]
        if stale:
            self.store.drop_messages([m.seq for m in stale])
            return True
        if inst["status"] == "Suspended":
            messages = [m for m in messages if m.kind in ("resume", "terminate")]
        if not messages:
            return False
        first = messages[0]
        if first.kind in CONTROL_KINDS:
            self._control(inst, first)
            return True
        batch = [first]
        if not first.solo:
            for msg in messages[1:]:
                if msg.kind != "event" or msg.solo:
                    break
                batch.append(msg)
        self._episode(inst, batch)
        return True

    def _now(self, inst: dict) -> float:
        # OrchestratorStarted timestamps never go backwards, whatever the clock does.
        return max(self.clock.now(), inst["last_started"] or 0.0)

    # ---- terminate / suspend / resume ------------------------------------------------------------

    def _control(self, inst: dict, msg: Message) -> None:
        now = self._now(inst)
        commit = Commit(inst["instance_id"], inst["execution_id"], consumed=[msg.seq])
        reason = msg.event.get("Reason") if msg.kind != "terminate" else msg.event.get("Input")
        events = [p.event(p.ORCHESTRATOR_STARTED, now), msg.event]
        status = {"terminate": "Terminated", "suspend": "Suspended", "resume": "Running"}[msg.kind]
        commit.instance = {"status": status, "last_updated": now, "last_started": now}
        if msg.kind == "terminate":
            events.append(
                p.event(
                    p.EXECUTION_COMPLETED, now, OrchestrationStatus="Terminated", Result=reason, FailureDetails=None
                )
            )
            commit.instance["output"] = json.dumps(reason)
            commit.finished = True
            self._notify_parent(inst, commit, failed_reason=reason or "terminated")
            log.info("instance %s terminated", inst["instance_id"])
        events.append(p.event(p.ORCHESTRATOR_COMPLETED, now))
        commit.events = events
        self.store.apply(commit)

    # ---- the episode ----------------------------------------------------------------------------

    def _episode(self, inst: dict, batch: list[Message]) -> None:
        iid, eid, name = inst["instance_id"], inst["execution_id"], inst["name"]
        now = self._now(inst)
        started = p.event(p.ORCHESTRATOR_STARTED, now)
        new_events = [m.event for m in batch]
        history = [{**e, "IsPlayed": True} for e in self.store.history(iid)] + [started, *new_events]
        tasks = self.store.tasks(iid)
        plan = _Plan(
            Commit(iid, eid, consumed=[m.seq for m in batch]),
            now,
            inst["next_task_id"],
            {t for t, row in tasks.items() if row["open"]},
        )
        commit = plan.commit
        commit.events = [started, *new_events]
        for e in new_events:
            done_id = e.get("TaskScheduledId", e.get("TimerId"))
            if done_id is not None:
                plan.open_tasks.discard(done_id)
                commit.closed_tasks.append(done_id)

        result = self._call_orchestrator(inst, history)
        failure: str | None = None  # a host-detected failure ends the instance at once
        try:
            if len(batch) == 1 and batch[0].solo:
                self._retry_interceptor(inst, plan, tasks, batch[0].event)
            can_input = self._record_actions(inst, plan, result.actions)
            if result.has_custom_status and p.custom_status_too_large(result.custom_status):
                size = len(json.dumps(result.custom_status)) * 2 // 1024
                raise RunnerFailure(
                    "The size of the JSON-serialized payload must not exceed 16 KB. "
                    f"The current payload size is {size} KB."
                )
        except RunnerFailure as exc:
            failure, can_input = str(exc), None
            # Nothing this episode decided survives a host-detected failure.
            commit.events = [started, *new_events]
            for pending in (commit.actions, commit.tasks, commit.activities, commit.timers, commit.children):
                pending.clear()

        commit.instance = {"status": "Running", "next_task_id": plan.next_id, "last_started": now, "last_updated": now}
        if result.has_custom_status and failure is None:
            commit.instance["custom_status"] = json.dumps(result.custom_status)
        quiet = not plan.open_tasks
        if failure is not None or (result.error is not None and quiet):
            reason = failure or result.error
            self._finish(inst, plan, failed=f"Orchestrator function '{name}' failed: {reason}")
        elif result.done and quiet and can_input is not None:
            self._continue_as_new(inst, plan, can_input)
            return
        elif result.done and quiet and result.error is None:
            self._finish(inst, plan, output=result.output)
        if plan.completed_event is not None:
            commit.events.append(plan.completed_event)
        commit.events.append(p.event(p.ORCHESTRATOR_COMPLETED, now))
        self.store.apply(commit)

    def _call_orchestrator(self, inst: dict, history: list[dict]) -> p.EpisodeResult:
        handle = self.registry.orchestrators.get(inst["name"])
        if handle is None:
            message = unknown_function(inst["name"], "orchestrator", list(self.registry.orchestrators))
            return p.EpisodeResult(done=False, actions=[], error=message)
        input_value = json.loads(inst["input"]) if inst["input"] is not None else None
        body = p.context_json(history, inst["instance_id"], inst["parent_instance_id"], input_value)
        try:
            return p.parse_state(handle(body), None)
        except Exception as exc:  # the SDK raises on user errors, with its state after a marker
            return p.parse_state(None, exc)

    # ---- actions -> decisions -------------------------------------------------------------------

    def _record_actions(self, inst: dict, plan: _Plan, actions: list[dict]) -> str | None:
        """Record the new actions as DTFx would; return continue-as-new input text when asked for."""
        seen = self.store.actions(inst["instance_id"])
        if len(actions) < len(seen):
            raise RunnerFailure(
                "Non-Deterministic workflow detected: the orchestrator scheduled fewer "
                "actions on replay than it did before."
            )
        can_input: str | None = None
        for idx, action in enumerate(actions):
            sig = p.action_signature(action)
            if idx < len(seen):
                self._replayed_action(plan, idx, action, sig, seen[idx])
                continue
            kind = action.get("actionType")
            if kind in p.UNSUPPORTED_ACTIONS:
                api = p.UNSUPPORTED_ACTIONS[kind]
                raise RunnerFailure(f"{api} is not supported by the local Durable runner.")
            if kind == p.WAIT_FOR_EXTERNAL_EVENT:  # keyed by name: no task id
                plan.commit.actions.append((idx, sig, None))
                continue
            tid = plan.next_id
            plan.next_id += 1
            plan.commit.actions.append((idx, sig, tid))
            if kind == p.CONTINUE_AS_NEW:
                can_input = action.get("input")
            else:
                self._new_action(inst, plan, tid, action)
        return can_input

    def _replayed_action(self, plan: _Plan, idx: int, action: dict, sig: str, row: Any) -> None:
        if row["signature"] != sig:
            raise RunnerFailure(
                f"Non-Deterministic workflow detected: action {idx} was {row['signature']} and is now {sig} on replay."
            )
        tid = row["task_id"]
        # The one change an emitted action may show: a timer the orchestrator has since cancelled.
        if action.get("actionType") == p.CREATE_TIMER and action.get("isCanceled") and tid in plan.open_tasks:
            plan.open_tasks.discard(tid)
            plan.commit.closed_tasks.append(tid)
            plan.commit.cancelled_timers.append(tid)

    def _new_action(self, inst: dict, plan: _Plan, tid: int, action: dict) -> None:
        kind = action.get("actionType")
        if kind in (p.CALL_ACTIVITY, p.CALL_ACTIVITY_WITH_RETRY):
            retry = _retry(action, attempt=1) if kind == p.CALL_ACTIVITY_WITH_RETRY else None
            self._schedule_activity(plan, tid, action["functionName"], action.get("input"), retry)
        elif kind in (p.CALL_SUB_ORCHESTRATOR, p.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            retry = _retry(action, attempt=1) if kind == p.CALL_SUB_ORCHESTRATOR_WITH_RETRY else None
            self._schedule_child(
                inst,
                plan,
                tid,
                action["functionName"],
                action.get("input"),
                child_id=action.get("instanceId"),
                version=action.get("version"),
                retry=retry,
            )
        elif kind == p.CREATE_TIMER:
            fire_text = action["fireAt"]
            plan.commit.events.append(p.event(p.TIMER_CREATED, plan.now, tid, FireAt=fire_text))
            plan.commit.tasks.append({"task_id": tid, "kind": "timer"})
            if action.get("isCanceled"):
                plan.commit.closed_tasks.append(tid)
            else:
                plan.open_tasks.add(tid)
                plan.commit.timers.append((tid, p.parse_ts(fire_text), fire_text, False))
        else:
            raise RunnerFailure(f"unknown action type {kind!r} from the SDK")

    def _schedule_activity(self, plan: _Plan, tid: int, name: str, input_text: str | None, retry: dict | None) -> None:
        if name not in self.registry.activities:
            raise RunnerFailure(unknown_function(name, "activity", list(self.registry.activities)))
        plan.commit.events.append(p.event(p.TASK_SCHEDULED, plan.now, tid, Name=name, Version="", Input=input_text))
        plan.commit.tasks.append(
            {"task_id": tid, "kind": "activity", "name": name, "input": input_text, "retry": retry}
        )
        plan.commit.activities.append((tid, name, input_text, retry is not None))
        plan.open_tasks.add(tid)

    def _schedule_child(
        self,
        inst: dict,
        plan: _Plan,
        tid: int,
        name: str,
        input_text: str | None,
        *,
        child_id: str | None,
        version: str | None,
        retry: dict | None,
    ) -> None:
        child_id = child_id or f"{inst['execution_id']}:{tid}"
        plan.commit.events.append(
            p.event(
                p.SUB_ORCHESTRATION_CREATED,
                plan.now,
                tid,
                Name=name,
                Version=version or "",
                InstanceId=child_id,
                Input=input_text,
            )
        )
        plan.commit.tasks.append(
            {"task_id": tid, "kind": "sub", "name": name, "input": input_text, "retry": retry, "child_id": child_id}
        )
        plan.open_tasks.add(tid)
        # The host passes the action's input text on as a JSON string; the child sees it decoded once.
        input_json = json.dumps(input_text) if input_text is not None else None
        child_eid = uuid.uuid4().hex
        parent_block = {
            "Name": inst["name"],
            "Version": "",
            "TaskScheduleId": tid,
            "OrchestrationInstance": {"InstanceId": inst["instance_id"], "ExecutionId": inst["execution_id"]},
        }
        create = {
            "instance_id": child_id,
            "name": name,
            "execution_id": child_eid,
            "input_json": input_json,
            "now": plan.now,
            "started_event": p.execution_started(plan.now, name, child_id, child_eid, input_json, parent=parent_block),
            "parent": {"instance_id": inst["instance_id"], "execution_id": inst["execution_id"], "task_id": tid},
        }
        failed = p.event(p.SUB_ORCHESTRATION_FAILED, plan.now, TaskScheduledId=tid, Reason="", Details="")
        plan.commit.children.append((create, failed, retry is not None))

    # ---- retries (DTFx RetryInterceptor) ---------------------------------------------------------

    def _retry_interceptor(self, inst: dict, plan: _Plan, tasks: dict[int, dict], event: dict) -> None:
        kind = event["EventType"]
        if kind in (p.TASK_FAILED, p.SUB_ORCHESTRATION_FAILED):
            origin = tasks.get(event["TaskScheduledId"])
            if origin is None or not origin["retry"]:
                return
            retry = json.loads(origin["retry"])
            last = retry["attempt"] >= retry["max_attempts"]
            backoff = retry["backoff"] ** (retry["attempt"] - 1)
            delay = 0.0 if last else min(retry["first_ms"] / 1000 * backoff, retry["max_interval_s"])
            fire_at = plan.now + delay
            fire_text = p.format_ts(fire_at)
            tid = plan.next_id
            plan.next_id += 1
            plan.commit.events.append(p.event(p.TIMER_CREATED, plan.now, tid, FireAt=fire_text))
            plan.commit.tasks.append(
                {
                    "task_id": tid,
                    "kind": "retry_timer",
                    "name": origin["name"],
                    "input": origin["input"],
                    "retry": {**retry, "of": origin["kind"], "child_id": origin["child_id"]},
                }
            )
            plan.commit.timers.append((tid, fire_at, fire_text, True))
            plan.open_tasks.add(tid)
        elif kind == p.TIMER_FIRED:
            timer = tasks.get(event["TimerId"])
            if timer is None or timer["kind"] != "retry_timer":
                return
            retry = json.loads(timer["retry"])
            if retry["attempt"] >= retry["max_attempts"]:
                return  # the dummy timer after the last attempt: the failure now reaches the orchestrator
            again = {k: v for k, v in retry.items() if k not in ("of", "child_id")}
            again["attempt"] += 1
            tid = plan.next_id
            plan.next_id += 1
            if retry["of"] == "activity":
                self._schedule_activity(plan, tid, timer["name"], timer["input"], again)
            else:
                fixed_id = retry["child_id"] if retry["fixed_id"] else None
                self._schedule_child(
                    inst, plan, tid, timer["name"], timer["input"], child_id=fixed_id, version=None, retry=again
                )

    # ---- endings --------------------------------------------------------------------------------

    def _finish(self, inst: dict, plan: _Plan, *, output: Any = None, failed: str | None = None) -> None:
        commit, now = plan.commit, plan.now
        if failed is not None:
            commit.instance.update(status="Failed", output=json.dumps(failed))
            completed = p.event(
                p.EXECUTION_COMPLETED,
                now,
                OrchestrationStatus="Failed",
                Result=failed,
                FailureDetails={"ErrorType": "OrchestrationFailure", "ErrorMessage": failed},
            )
            self._notify_parent(inst, commit, failed_reason=failed)
            log.warning("instance %s (%s) failed: %s", inst["instance_id"], inst["name"], failed)
        else:
            output_json = json.dumps(output) if output is not None else None
            commit.instance.update(status="Completed", output=output_json)
            completed = p.event(
                p.EXECUTION_COMPLETED, now, OrchestrationStatus="Completed", Result=output_json, FailureDetails=None
            )
            self._notify_parent(inst, commit, output_json=output_json)
            log.info("instance %s (%s) completed", inst["instance_id"], inst["name"])
        plan.completed_event = completed
        commit.finished = True

    def _continue_as_new(self, inst: dict, plan: _Plan, input_text: str) -> None:
        commit, now = plan.commit, plan.now
        new_eid = uuid.uuid4().hex
        input_json = json.dumps(input_text)
        parent_block = None
        if inst["parent_instance_id"]:
            parent_block = {
                "Name": None,
                "Version": "",
                "TaskScheduleId": inst["parent_task_id"],
                "OrchestrationInstance": {
                    "InstanceId": inst["parent_instance_id"],
                    "ExecutionId": inst["parent_execution_id"],
                },
            }
        commit.reset_execution = new_eid
        commit.events = []
        custom = commit.instance.get("custom_status")
        commit.instance = {
            "execution_id": new_eid,
            "status": "ContinuedAsNew",
            "input": input_json,
            "next_task_id": 0,
            "last_started": now,
            "last_updated": now,
        }
        if custom is not None:
            commit.instance["custom_status"] = custom
        started = p.execution_started(now, inst["name"], inst["instance_id"], new_eid, input_json, parent=parent_block)
        commit.messages.append((inst["instance_id"], new_eid, "event", started, False))
        log.info("instance %s (%s) continued as new", inst["instance_id"], inst["name"])
        self.store.apply(commit)

    def _notify_parent(
        self, inst: dict, commit: Commit, *, output_json: str | None = None, failed_reason: str | None = None
    ) -> None:
        parent_id = inst["parent_instance_id"]
        if not parent_id:
            return
        task_id = inst["parent_task_id"]
        now = self.clock.now()
        if failed_reason is None:
            completion = p.event(p.SUB_ORCHESTRATION_COMPLETED, now, TaskScheduledId=task_id, Result=output_json)
            solo = False
        else:
            completion = p.event(
                p.SUB_ORCHESTRATION_FAILED, now, TaskScheduledId=task_id, Reason=failed_reason, Details=""
            )
            parent_task = self.store.tasks(parent_id).get(task_id)
            solo = bool(parent_task and parent_task["retry"])
        commit.messages.append((parent_id, inst["parent_execution_id"], "event", completion, solo))


def _retry(action: dict, attempt: int) -> dict:
    opts = action.get("retryOptions") or {}
    max_interval = opts.get("maxRetryIntervalInMilliseconds")
    return {
        "first_ms": float(opts.get("firstRetryIntervalInMilliseconds", 0)),
        "max_attempts": int(opts.get("maxNumberOfAttempts", 1)),
        "backoff": float(opts.get("backoffCoefficient", 1.0)),
        "max_interval_s": max_interval / 1000 if max_interval else MAX_RETRY_INTERVAL_S,
        "attempt": attempt,
        "fixed_id": bool(action.get("instanceId")),
    }
