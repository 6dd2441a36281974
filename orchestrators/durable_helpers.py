"""Deterministic building blocks the orchestrators `yield from`: activity calls, status, timers, waits, attach.

Everything here runs inside an orchestrator generator: no I/O, no wall clock, no randomness. Time is
`context.current_utc_datetime`; waits are durable timers.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import azure.durable_functions as df
from azure.durable_functions.models.Task import LongTimerTask, TimerTask

from activities import readd as attach_acts
from shared.core.clock import to_iso, to_iso_basic
from shared.core.codec import JsonRecord, RecordError, decode, plain
from shared.core.errors import DrError, InputRefused, ReaddFailed, RunCancelled
from shared.plan.load import Cluster
from shared.runbook.approval import ApprovalDecision
from shared.runbook.approval import decide as approval_decision
from shared.runbook.payloads import AttachRef, AttachStep

T = TypeVar("T")
R = TypeVar("R", bound=JsonRecord)
Gen = Generator[Any, Any, T]

# Activities that only read, or are idempotent by design, are retried by the host on transient failure.
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
ATTACH_DEADLINE = timedelta(minutes=45)
ATTACH_MAX_FAILURES = 4


def activity(
    context: df.DurableOrchestrationContext, fn: Any, input_: Any, retry: df.RetryOptions | None = RETRY
) -> Any:
    """Schedule activity `fn` (its registered function, not its name), retried as the host does unless retry
    is None. The input goes as plain JSON and the SDK decodes the result as fn's annotated return type: what
    the Durable codec's strict typing (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING) needs; loose mode is the same."""
    payload = plain(input_)
    if retry is None:
        return context.call_activity(fn, payload)
    return context.call_activity_with_retry(fn, retry, payload)


def run_input(context: df.DurableOrchestrationContext, kind: type[R]) -> R:
    """The orchestration's input as a reference (shared/runbook/refs.py). Anything else — plan parts, a key no
    field names, an input of an earlier version, garbage — stops the run before it does anything, with an
    error naming what was refused."""
    try:
        return decode(kind, context.get_input())
    except InputRefused as err:
        raise InputRefused(f"run {context.instance_id} refused its input: {err.what}", action=err.action) from None
    except (TypeError, RecordError, ValueError) as err:
        raise InputRefused(
            f"run {context.instance_id} refused its input: not a {kind.__name__}: {str(err)[:300]}"
        ) from None


def new_run_id(context: df.DurableOrchestrationContext, started: datetime) -> str:
    """The run's id (a backup's is its backup id): its start time and a deterministic random part."""
    return f"{to_iso_basic(started)}-{str(context.new_uuid())[:8]}"


def cluster_poll(cluster: Cluster) -> timedelta:
    """How often a run polls this cluster's activities (the plan's clusters[].poll_seconds)."""
    return timedelta(seconds=cluster.poll_seconds)


def now(context: df.DurableOrchestrationContext) -> datetime:
    return context.current_utc_datetime


def seconds_since(context: df.DurableOrchestrationContext, start: datetime) -> float:
    return round((now(context) - start).total_seconds(), 3)


def reason(err: BaseException) -> str:
    """An activity failure reads `Reason \n Details` (a traceback): operators need the reason line only."""
    return str(err).split("\n", 1)[0].strip()


def failed(task: Any) -> Exception | None:
    """task_any hands back the winner even when it failed: its result is then the exception."""
    return task.result if isinstance(task.result, Exception) else None


class RunStatus:
    """The custom status an operator watches: step, filer, progress, timings. Small and secret-free."""

    def __init__(self, context: df.DurableOrchestrationContext, kind: str, filer: str, started: datetime) -> None:
        self._context, self._started = context, started
        self._base: dict[str, Any] = {"run": kind, "filer": filer, "started": to_iso(started)}
        self._fields: dict[str, Any] = {}
        self._current = "starting"

    # Fields about the step in progress: a new step starts without them (the run's identity and totals stay).
    TRANSIENT = frozenset(
        {
            "phase",
            "flush_percent",
            "remove_percent",
            "dirty_files",
            "pending",
            "eta_s",
            "attach_failures",
            "copy_instance",
        }
    )

    def step(self, step: str, **fields: Any) -> None:
        kept = {k: v for k, v in self._fields.items() if k not in self.TRANSIENT}
        self._fields = {k: v for k, v in {**kept, **fields}.items() if v is not None}
        self._publish(step)

    def update(self, **fields: Any) -> None:
        self._fields.update({k: v for k, v in fields.items() if v is not None})
        self._publish(self._current)

    def _publish(self, step: str) -> None:
        self._current = step
        elapsed = seconds_since(self._context, self._started)
        self._context.set_custom_status({**self._base, "step": step, "elapsed_s": elapsed, **self._fields})


def cancellable_timer(context: df.DurableOrchestrationContext, fire_at: datetime) -> TimerTask | LongTimerTask:
    """A durable timer that can be cancelled: create_timer is annotated TaskBase, but returns one of these."""
    return cast("TimerTask | LongTimerTask", context.create_timer(fire_at))


def sleep(context: df.DurableOrchestrationContext, delay: timedelta) -> Gen[None]:
    yield context.create_timer(now(context) + delay)


def sleep_or_cancel(
    context: df.DurableOrchestrationContext, delay: timedelta, cancel: Any, until: datetime | None = None
) -> Gen[bool]:
    """Wait `delay` (never past `until`); True when the cancel event arrived instead."""
    fire = now(context) + delay
    if until is not None:
        fire = max(now(context), min(fire, until))
    timer = cancellable_timer(context, fire)
    winner = yield context.task_any([timer, cancel])
    if winner == cancel:
        timer.cancel()
        return True
    return False


def wait_for_approval(
    context: df.DurableOrchestrationContext, event: str, approval_ref: str | None, deadline: datetime, cancel: Any
) -> Gen[ApprovalDecision]:
    """Wait for `event` until the deadline or a cancel; the decision fails closed (approval.decide): only
    `{"approve": true, "approval_ref": <approval_ref>}` approves, a timeout or a cancel never does."""
    timer = cancellable_timer(context, deadline)
    approval = context.wait_for_external_event(event)
    winner = yield context.task_any([approval, timer, cancel])
    if winner != timer:
        timer.cancel()
    if winner != approval:
        why = "no approval before the deadline" if winner == timer else "cancelled"
        return ApprovalDecision(False, why, "")
    return approval_decision(approval.result, approval_ref)


def attach(
    context: df.DurableOrchestrationContext,
    request: AttachRef,
    status: RunStatus,
    step: str,
    *,
    cluster: Cluster,
    filer: str,
    error: type[DrError] = ReaddFailed,
    deadline: timedelta = ATTACH_DEADLINE,
    max_failures: int = ATTACH_MAX_FAILURES,
) -> Gen[AttachStep]:
    """Call the idempotent `attach_step` until the filer serves, timers between; bounded in time and failures.
    `cluster` is the one attached to (its poll interval paces the calls); `filer` names the filer in errors.

    An activity failure is retried after a growing pause (the cluster may be busy or restarting); only
    `max_failures` failures in a row, or the deadline, give up with `error`.
    """
    give_up = now(context) + deadline
    poll = cluster_poll(cluster)
    failures = 0
    reached = ""  # the last phase an attach_step answered: from "creating" on, the filer may exist on the cluster
    while True:
        try:
            result: AttachStep = yield activity(context, attach_acts.attach_step, request, retry=None)
            failures = 0
        except Exception as err:  # failed after the host's delivery: the pause and the limit are decided here
            failures += 1
            if failures >= max_failures or now(context) >= give_up:
                state = (
                    f"not serving: the attach stopped in phase {reached}; the core filer may be attached "
                    "without every junction"
                    if reached
                    else "the core filer is not attached"
                )
                raise error(
                    f"{step} failed {failures} time(s) in a row: {reason(err)}",
                    filer=filer,
                    state=state,
                    action="check the cluster, then replay the record (readd route)",
                ) from None
            status.step(step, phase="retrying", attach_failures=failures)
            yield from sleep(context, poll * (2**failures))
            continue
        status.step(step, phase=result.phase)
        reached = result.phase
        if result.done:
            return result
        if now(context) >= give_up:
            raise error(
                f"{step} did not finish within {deadline}; phase {result.phase}: {result.detail}",
                filer=filer,
                state=f"attach stopped in phase {result.phase}",
                action="check the cluster's activities, then replay with the readd route",
            )
        request = replace(request, activity_ids=result.activity_ids)
        yield from sleep(context, poll)


def raise_if_cancelled(cancelled: bool, filer: str, state: str, action: str = "none: the run stopped cleanly") -> None:
    if cancelled:
        raise RunCancelled("the run was cancelled by a `cancel` event", filer=filer, state=state, action=action)
