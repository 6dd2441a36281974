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
from shared.runbook.attach import FENCED, readd_request
from shared.runbook.payloads import FilerStep
from tests.fixtures.workflow import AppEnv, Host, until


def request_failover(env: AppEnv) -> None:
    fencing.request_fence(env.plan, env.filer, instance_id=f"failover~primary~{env.filer_name}", target="dr",
                          by="ops@example.com")


def suspended(env: AppEnv) -> bool:
    return env.client().call("corefiler.get", env.filer_name)[env.filer_name]["clientSuspend"] == "yes"


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
    calls = unsuspends(None)
    env.client().suspend_clients(env.filer_name)
    request_failover(env)
    done = host("unsuspend_clients", FilerStep(context=env.context()))
    assert done.activity_ids == () and "fenced after a failover to cluster dr" in done.fenced
    assert calls == [] and suspended(env)
    with env.catalog() as catalog:
        assert active_fence(catalog.load(env.filer))["how"] == "suspended"


def test_a_failover_asked_for_during_the_unsuspend_still_wins(app_env: AppEnv, unsuspends: Any) -> None:
    env, host = app_env, Host()
    calls = unsuspends(lambda: request_failover(env))
    env.client().suspend_clients(env.filer_name)
    done = host("unsuspend_clients", FilerStep(context=env.context()))
    assert calls == [env.filer_name]  # it passed the first check: the fence came after it
    assert done.fenced and suspended(env)  # the check right after caught it: clients suspended again


def test_a_re_add_stops_at_the_fence_and_leaves_the_filer_removed(app_env: AppEnv) -> None:
    env, host = app_env, Host()
    ctx = env.context()
    record = host("capture_filer", FilerStep(context=ctx, backup_id="r1"))
    started = host("suspend_and_flush", FilerStep(context=ctx))
    until(lambda: host("flush_status", FilerStep(context=ctx, activity_ids=started.activity_ids)),
          lambda s: s.done, env.clock)
    for step in ("remove_junctions", "remove_filer"):
        ids = host(step, FilerStep(context=ctx)).activity_ids
        until(lambda ids=ids: host("remove_status", FilerStep(context=ctx, activity_ids=ids)), lambda s: s.done,
              env.clock)
    request_failover(env)
    step = host("attach_step", readd_request(ctx, record, env.initial_key))
    assert (step.phase, step.done) == (FENCED, True) and "re-add stopped" in step.detail
    assert env.filer_name not in env.client().list_core_filers()
    with env.catalog() as catalog:
        assert active_fence(catalog.load(env.filer))["how"] == "removed"


def test_a_re_add_of_a_present_filer_never_unsuspends_it_once_fenced(app_env: AppEnv, unsuspends: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    env, host = app_env, Host()
    ctx = env.context()
    record = host("capture_filer", FilerStep(context=ctx, backup_id="r1"))
    request = readd_request(ctx, record, env.initial_key)
    calls = unsuspends(None)
    env.client().suspend_clients(env.filer_name)
    request_failover(env)
    step = host("attach_step", request)
    assert step.phase == FENCED and calls == [] and suspended(env)
    # The race: the fence arrives while the attach gives the clients back; the check after puts it right.
    with env.catalog() as catalog:
        catalog.update(env.filer, lambda s: setattr(s, "fence", None))
    calls = unsuspends(lambda: request_failover(env))
    step = host("attach_step", request)
    assert calls == [env.filer_name] and step.phase == FENCED and suspended(env)
    # The fence arrives after the step's first check, while it restores junctions: read again before the
    # unsuspend, so the clients are not given back even for a moment.
    with env.catalog() as catalog:
        catalog.update(env.filer, lambda s: setattr(s, "fence", None))
    real = AvereClient.restore_junctions

    def restore(self: AvereClient, *args: Any, **kwargs: Any) -> list[str]:
        request_failover(env)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AvereClient, "restore_junctions", restore)
    calls = unsuspends(None)
    step = host("attach_step", request)
    assert step.phase == FENCED and calls == [] and suspended(env)


def test_the_dr_clusters_attach_ignores_the_primarys_fence(app_env: AppEnv) -> None:
    """The fence keeps the primary copy from serving; the failover's attach on a DR cluster is what it is for."""
    env = app_env
    request_failover(env)
    assert fencing.primary_context("dr", env.filer_name) is None
    assert fencing.primary_context("primary", env.filer_name) is not None
    with pytest.raises(LookupError):
        fencing.primary_context("nowhere", env.filer_name)  # neither: the fence cannot be read, so no re-add
