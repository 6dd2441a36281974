"""Activity `preflight` on the local stack: every check runs, in order, green or red with its reason (against the
plan snapshot the run recorded; the dry-run route runs the same checks on the plan itself)."""

from __future__ import annotations

import json
import uuid

import pytest

from shared.catalog.store import FilerState
from shared.core.errors import DrError, InputRefused
from shared.runbook import services
from shared.runbook.payloads import AttentionRef, BackupRequest, Preflight
from shared.runbook.preflight import CHECKS, run_preflight
from shared.runbook.refs import RunRef, RunStart
from tests.fixtures.cluster import create_filer
from tests.fixtures.workflow import Host, start_run


def _run(env, host=None, reason: str = "manual") -> Preflight:
    """A backup run's preflight: the run starts (its snapshot of the plan as it is now), then checks."""
    host = host or Host()
    return host("preflight", start_run(env, host, "backup", f"p-{uuid.uuid4().hex[:8]}", reason=reason))


def _red(result: Preflight) -> dict[str, str]:
    return {f.check: f.detail for f in result.findings if not f.ok}


def test_green_every_check_in_order(app_env):
    result = _run(app_env)
    assert [f.check for f in result.findings] == list(CHECKS)
    assert result.ok and not _red(result)
    assert result.encrypted


def test_unknown_or_disabled_filer(make_app_env):
    env = make_app_env(edit_plan=lambda p: p["filers"][0].update(enabled=False))
    unknown = run_preflight(BackupRequest(cluster="primary", filer="nope"))  # the dry-run route's checks
    assert not unknown.ok
    assert "no filer 'nope'" in _red(unknown)["plan"]
    assert set(_red(unknown)) == set(CHECKS)  # nothing else can be checked, and each says so
    host = Host()
    with pytest.raises(InputRefused, match="no filer 'nope'"):  # a run of it does not even start
        host("begin_run", RunStart(RunRef("primary", "nope", "backup-primary-nope", "p1"), "backup"))
    scheduled = _run(env, reason="schedule")
    assert _red(scheduled) == {"plan": _red(scheduled)["plan"]} and "disabled" in _red(scheduled)["plan"]
    assert _run(env, reason="manual").ok  # an operator may still back up a disabled filer


def test_unreadable_admin_password_and_unreachable_cluster(make_app_env):
    env = make_app_env()
    env.delete_secret(env.secret_names["primary"])
    result = _run(env)
    red = _red(result)
    assert "cannot read the admin password" in red["keyvault"] and env.secret_names["primary"] in red["keyvault"]
    assert red["cluster"] == "not checked: no admin password"
    assert red["filer"] == "not checked: the cluster is not reachable"
    assert {"backup_account", "attention", "failed_over"}.isdisjoint(red)  # the others still ran

    env.delete_secret(env.secret_names["primary"], recover=True)
    assert _run(env).ok
    env.primary.stop()
    red = _red(_run(env))
    assert set(red) == {"cluster", "filer"} and "cannot reach" in red["cluster"]


def test_filer_not_online_or_on_another_bucket(app_env, monkeypatch):
    env = app_env
    env.write("/data/big.bin", b"x" * (8 * 1024 * 1024))  # a flush of this takes cluster time
    client = env.client()
    flush = client.flush_core_filer(env.filer_name)
    red = _red(_run(env))
    assert set(red) == {"filer"} and "is flushing, not online" in red["filer"]
    env.wait([flush])
    assert _run(env).ok

    plan = json.loads(json.dumps(env.plan_json))
    plan["filers"][0]["source"]["container"] = "elsewhere"
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(plan))
    red = _red(_run(env))
    assert set(red) == {"filer"} and "fix the plan's source" in red["filer"]


def test_backup_account_unreachable(make_app_env):
    env = make_app_env(edit_plan=lambda p: p["filers"][0]["backup"].update(
        blob_endpoint="http://127.0.0.1:9/vfxtdr"))
    previous = services.configure(storage_retry=_no_retry())
    try:
        red = _red(run_preflight(BackupRequest(cluster="primary", filer=env.filer_name)))  # the dry run's checks
        assert "is not reachable" in red["backup_account"]
        assert red["attention"] == red["failed_over"] == "not checked: the catalog is not readable"
        with pytest.raises(DrError, match=r"recording the run.s plan snapshot in the catalog .* failed"):
            _run(env)  # a run cannot record its snapshot there: it stops before anything
    finally:
        services.restore(previous)


def test_backup_container_used_by_a_core_filer_of_another_cluster(app_env):
    env = app_env
    container = env.filer.backup.containers[1]
    env.service("dr").create_container(container)
    create_filer(env.client("dr"), env.azurite, name="intruder", role="dr", encrypted=False,
                 bucket=f"{env.filer.backup.account}/{container}")
    red = _red(_run(env))
    assert set(red) == {"containers"}
    assert "'intruder' on cluster dr uses backup container" in red["containers"]


def test_attention_and_removed_marks_and_failover(app_env):
    env, host = app_env, Host()
    backup = start_run(env, host, "backup", "x1")
    host("mark_attention", AttentionRef(backup, error="re-add failed: boom"))
    red = _red(_run(env))
    assert set(red) == {"attention"} and "re-add failed: boom" in red["attention"]
    host("clear_removed", start_run(env, host, "readd", "r1"))
    assert _run(env).ok

    def failed_over(state: FilerState) -> None:
        state.failed_over = {"target_cluster": "dr", "at": "2027-01-01T00:00:00Z", "backup_id": "b0"}

    with env.catalog() as catalog:
        catalog.update(env.filer, failed_over)
    red = _red(_run(env))
    assert set(red) == {"failed_over"} and "failed over to cluster dr" in red["failed_over"]


def _no_retry():
    from shared.azure.storage import RetrySettings

    return RetrySettings(total=0, initial_backoff=0.01, max_backoff=0.01, connection_timeout=2, read_timeout=2)
