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
    assert set(red) == {"filer", "source_account"} and "fix the plan's source" in red["filer"]
    assert "cannot list container elsewhere" in red["source_account"]


def test_backup_account_unreachable(make_app_env):
    env = make_app_env(edit_plan=lambda p: p["filers"][0]["backup"].update(blob_endpoint="http://127.0.0.1:9/vfxtdr"))
    previous = services.configure(storage_retry=_no_retry())
    try:
        red = _red(run_preflight(BackupRequest(cluster="primary", filer=env.filer_name)))  # the dry run's checks
        with pytest.raises(DrError, match=r"recording the run.s plan snapshot in the catalog .* failed"):
            _run(env)  # a run cannot record its snapshot there: it stops before anything
    finally:
        services.restore(previous)  # a process-wide setting: later tests keep the default retries
    assert "the catalog cannot be read" in red["backup_account"]
    assert "cannot write" in red["backup_write"] and env.filer.backup.account in red["backup_write"]
    assert red["attention"] == red["failed_over"] == "not checked: the catalog is not readable"


def test_backup_container_used_by_a_core_filer_of_another_cluster(app_env):
    env = app_env
    container = env.filer.backup.containers[1]
    env.service("dr").create_container(container)
    create_filer(
        env.client("dr"),
        env.azurite,
        name="intruder",
        role="dr",
        encrypted=False,
        bucket=f"{env.filer.backup.account}/{container}",
    )
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


def _probe_secrets(env) -> tuple[list[str], list[str]]:
    """Names of live and soft-deleted probe secrets in the vault."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    from shared.azure.keyvault import PROBE_PREFIX

    with (
        DefaultAzureCredential() as credential,
        SecretClient(env.keyvault.url, credential, verify_challenge_resource=False) as client,
    ):
        live = [p.name for p in client.list_properties_of_secrets() if p.name.startswith(PROBE_PREFIX)]
        deleted = [d.name for d in client.list_deleted_secrets() if d.name.startswith(PROBE_PREFIX)]
    return live, deleted


def test_credential_probes_use_each_credential_and_leave_nothing(app_env):
    env = app_env
    before = _probe_secrets(env)
    result = _run(env)
    assert result.ok, _red(result)
    found = {f.check: f.detail for f in result.findings}
    # The source: listed, the copy's own SAS made (read-only, the pending limit + margin) and read through.
    assert "listed container" in found["source_account"] and "account-key SAS" in found["source_account"]
    assert "read a blob through it" in found["source_account"]
    assert "0:25:00" in found["source_account"]  # the plan's 600 s pending limit + the copy's 900 s margin
    assert env.secret_names["source"] in found["source_account"]  # the credential it used, by secret name
    # The backup account: a probe written and deleted under preflight/, never in a generation container.
    assert "wrote and deleted" in found["backup_write"] and "/preflight/primary/" in found["backup_write"]
    catalog = env.container("dr", env.context().catalog_container)
    assert not [b.name for b in catalog.list_blobs(name_starts_with="preflight/")]
    for gen in ("a", "b"):
        assert not env.backup_container(gen).exists()  # the preflight writes no generation container
    # Key Vault: a one-off probe secret stored, deleted and (the stand-in allows it) purged: nothing is left,
    # and no secret the app keeps anything in got a new version.
    assert "stored and deleted probe secret" in found["keyvault_write"] and "purged" in found["keyvault_write"]
    assert _probe_secrets(env) == before
    assert [v.ref for v in env.vault.versions(env.secret_names["primary"])] and len(
        env.vault.versions(env.secret_names["primary"])
    ) == 1
    assert len(env.vault.versions(env.initial_key.name)) == 1
    # Both clusters: logged in.
    assert "logged in to primary" in found["cluster"] and "logged in to dr" in found["failover_cluster"]


def test_an_empty_source_container_is_read_through_the_sas_by_a_missing_name(app_env):
    env = app_env
    source = env.source_container()
    for blob in list(source.list_blobs()):
        source.delete_blob(blob.name)
    result = _run(env)
    found = {f.check: f for f in result.findings}
    assert found["source_account"].ok, found["source_account"].detail
    assert "the service accepted it (the container is empty)" in found["source_account"].detail


def test_a_wrong_key_in_a_storage_key_secret_is_found(app_env):
    import base64

    env = app_env
    wrong = base64.b64encode(b"not the account key" * 3).decode()
    env.vault.store(env.secret_names["source"], wrong, content_type="text/plain")
    red = _red(_run(env))
    assert set(red) == {"source_account"}, red
    assert "cannot list container" in red["source_account"] and "403" in red["source_account"]
    assert env.secret_names["source"] in red["source_account"]
    assert wrong not in red["source_account"]


def test_key_vault_refusing_writes_is_found_and_nothing_is_written(app_env):
    env = app_env
    before = _probe_secrets(env)
    env.keyvault.add_fault("error", method="PUT", path="/secrets/vfxtdr-preflight-probe-*", status=403, times=None)
    try:
        red = _red(_run(env))
    finally:
        env.keyvault.clear_faults()
    assert set(red) == {"keyvault_write"}, red
    assert "cannot store a secret in" in red["keyvault_write"] and "403" in red["keyvault_write"]
    assert _probe_secrets(env) == before


def test_a_wrong_failover_cluster_password_is_found(app_env):
    env = app_env
    env.vault.store(env.secret_names["dr"], "not the dr password", content_type="text/plain")
    red = _red(_run(env))
    assert set(red) == {"failover_cluster"}, red
    assert "cluster dr" in red["failover_cluster"] and "login" in red["failover_cluster"]
    assert "not the dr password" not in red["failover_cluster"]
