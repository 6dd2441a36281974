"""The fence at the two places that could bring a filer back on its primary cluster, `unsuspend_clients` and
`attach_step`: a fenced filer's clients are never given back, not even for a moment, and a failover asked for
between the check and the unsuspend still wins (the check runs again right after)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.avere.client import AvereClient
from shared.catalog.fence import active_fence
from shared.runbook import fence as fencing
from shared.runbook.attach import FENCED
from shared.runbook.payloads import AttachRef, RunStep
from shared.runbook.refs import RunRef
from tests.fixtures.workflow import AppEnv, Host, start_run, until


def request_failover(env: AppEnv) -> None:
    fencing.request_fence(
        env.plan, env.filer, instance_id=f"failover~primary~{env.filer_name}", target="dr", by="ops@example.com"
    )


def lift(env: AppEnv) -> None:
    with env.catalog() as catalog:
        catalog.update(env.filer, lambda s: setattr(s, "fence", None))


def suspended(env: AppEnv) -> bool:
    return env.client().call("corefiler.get", env.filer_name)[env.filer_name]["clientSuspend"] == "yes"


def captured_backup(env: AppEnv, host: Host) -> RunRef:
    """A backup run that reserved its generation and captured the filer (what a re-add replays)."""
    run = start_run(env, host, "backup", "20300101T000000Z-fence001")
    host("begin_backup", run)
    host("capture_filer", run)
    return run


@pytest.fixture
def unsuspends(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None] | None], list[str]]:
    """Record every unsuspend the app sends; `before` runs first (a failover arriving at that very moment)."""
    calls: list[str] = []
    real = AvereClient.unsuspend_clients

    def install(before: Callable[[], None] | None = None) -> list[str]:
        calls.clear()

        def unsuspend(self: AvereClient, name: str) -> str:
            if before is not None:
                before()
            calls.append(name)
            return real(self, name)

        monkeypatch.setattr(AvereClient, "unsuspend_clients", unsuspend)
        return calls

    return install


def test_a_fenced_filers_clients_are_never_unsuspended(app_env: AppEnv, unsuspends: Any) -> None:
    env, host = app_env, Host()
    run = captured_backup(env, host)
    calls = unsuspends(None)
    env.client().suspend_clients(env.filer_name)
    request_failover(env)
    done = host("unsuspend_clients", run)
    assert done.activity_ids == () and "fenced after a failover to cluster dr" in done.fenced
    assert calls == [] and suspended(env)
    with env.catalog() as catalog:
        assert active_fence(catalog.load(env.filer))["how"] == "suspended"


def test_a_failover_asked_for_during_the_unsuspend_still_wins(app_env: AppEnv, unsuspends: Any) -> None:
    env, host = app_env, Host()
    run = captured_backup(env, host)
    calls = unsuspends(lambda: request_failover(env))
    env.client().suspend_clients(env.filer_name)
    done = host("unsuspend_clients", run)
    assert calls == [env.filer_name]  # it passed the first check: the fence came after it
    assert done.fenced and suspended(env)  # the check right after caught it: clients suspended again


def test_a_re_add_stops_at_the_fence_and_leaves_the_filer_removed(app_env: AppEnv) -> None:
    env, host = app_env, Host()
    run = captured_backup(env, host)
    started = host("suspend_and_flush", run)
    until(lambda: host("flush_status", RunStep(run, started.activity_ids)), lambda s: s.done, env.clock)
    host("mark_removed", run)
    for step in ("remove_junctions", "remove_filer"):
        ids = host(step, run).activity_ids
        until(lambda ids=ids: host("remove_status", RunStep(run, ids)), lambda s: s.done, env.clock)
    request_failover(env)
    step = host("attach_step", AttachRef(run))
    assert (step.phase, step.done) == (FENCED, True) and "re-add stopped" in step.detail
    assert env.filer_name not in env.client().list_core_filers()
    with env.catalog() as catalog:
        state = catalog.load(env.filer)
    assert active_fence(state)["how"] == "removed" and state.removed_by_app is not None


def test_a_re_add_of_a_present_filer_never_unsuspends_it_once_fenced(
    app_env: AppEnv, unsuspends: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, host = app_env, Host()
    run = captured_backup(env, host)
    calls = unsuspends(None)
    env.client().suspend_clients(env.filer_name)
    request_failover(env)
    step = host("attach_step", AttachRef(run))
    assert step.phase == FENCED and calls == [] and suspended(env)
    # The race: the fence arrives while the attach gives the clients back; the check after puts it right.
    lift(env)
    calls = unsuspends(lambda: request_failover(env))
    step = host("attach_step", AttachRef(run))
    assert calls == [env.filer_name] and step.phase == FENCED and suspended(env)
    # The fence arrives after the step's first check, while it restores junctions: read again before the
    # unsuspend, so the clients are not given back even for a moment.
    lift(env)
    real = AvereClient.restore_junctions

    def restore(self: AvereClient, *args: Any, **kwargs: Any) -> list[str]:
        request_failover(env)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AvereClient, "restore_junctions", restore)
    calls = unsuspends(None)
    step = host("attach_step", AttachRef(run))
    assert step.phase == FENCED and calls == [] and suspended(env)
