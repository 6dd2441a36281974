"""The production storage path end to end: `storage_auth: identity`. The app reaches both accounts with its managed
identity (bearer tokens from the local identity endpoint) on the HTTPS Azurite with OAuth, and the copy reads the
source through user-delegation SASes; the simulated clusters keep their filers in that same Azurite. A backup and
a failover run through the app's routes and the local runner, and the app never uses an account key."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.azure.storage import StorageAccount
from tests.fixtures.durable import http_call
from tests.fixtures.secrets import assert_no_leak
from tests.fixtures.workflow import AppEnv

FILES = {
    "/data/big.bin": bytes(range(256)) * 9000,
    "/data/nested/file.txt": b"hello from the primary region",
}
DIRTY = {"/scratch/dirty.log": b"written just before the backup, still dirty when it starts"}


def record_storage_auth(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(account, how it is authenticated) of every StorageAccount made from now on: production code reaches
    storage only through StorageAccount, so this is every credential the app used for storage."""
    made: list[tuple[str, str]] = []
    original = StorageAccount.__init__

    def init(self: StorageAccount, name: str, blob_endpoint: str, auth: Any, **kwargs: Any) -> None:
        original(self, name, blob_endpoint, auth, **kwargs)
        made.append((name, self.auth_kind))

    monkeypatch.setattr(StorageAccount, "__init__", init)
    return made


def backup_now(env: AppEnv, runner: Any) -> dict[str, Any]:
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=40)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["status"] == "verified"
    return dict(status["output"])


def copy_sources(env: AppEnv, generation: str) -> dict[str, dict[str, str]]:
    """name -> the SAS terms of the source URL each backup blob was copied from (as the service recorded it)."""
    out = {}
    for blob in env.backup_container(generation).list_blobs():
        source = env.backup_container(generation).get_blob_client(blob.name).get_blob_properties().copy.source
        out[blob.name] = {k: v[0] for k, v in parse_qs(urlsplit(source).query).items()} if source else {}
    return out


def blob_contents(env: AppEnv, container: Any) -> dict[str, tuple[bytes, dict[str, str]]]:
    return {
        b.name: (container.download_blob(b.name).readall(), dict(b.metadata or {}))
        for b in container.list_blobs(include=["metadata"])
    }


@pytest.fixture
def identity_env(make_app_env: Any) -> AppEnv:
    env = make_app_env(storage_auth="identity")
    assert env.plan.storage_auth == "identity" and env.filer.source.key_secret is None
    assert env.filer.source.account_url.startswith("https://") and env.filer.backup.account_url.startswith("https://")
    for path, data in FILES.items():
        env.write(path, data)
    env.flush()
    for path, data in DIRTY.items():
        env.write(path, data)
    return env


def test_backup_with_the_managed_identity_and_user_delegation_sas(
    identity_env: AppEnv, durable_runner: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import function_app

    env = identity_env
    # A tripwire: any read of the backup account's key secret fails (and is counted). With identity auth nothing
    # in a backup reads a storage key; the source account has no key secret at all.
    env.keyvault.add_fault(
        "error", method="GET", path=f"/secrets/{env.secret_names['backup']}*", status=403, times=None
    )
    made = record_storage_auth(monkeypatch)
    runner = durable_runner(function_app.app, clock=env.clock)
    try:
        dry = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}?dryRun=true").json()
        assert dry["ok"], dry
        source_check = next(f["detail"] for f in dry["findings"] if f["check"] == "source_account")
        assert "managed identity" in source_check and "user-delegation SAS" in source_check
        out = backup_now(env, runner)
        rules = env.keyvault.faults()
    finally:
        env.keyvault.clear_faults()
    assert [r["fired"] for r in rules] == [0], rules

    # The app never made an account-key StorageAccount: tokens, and the preflight's reader of its own SAS.
    kinds = {kind for _, kind in made}
    assert "token" in kinds and "key" not in kinds, made

    # Every blob of the backup was copied through a user-delegation SAS: read-only, one container, https.
    gen = out["generation"]
    sources = copy_sources(env, gen)
    assert sources and all(terms for terms in sources.values()), sources
    for name, terms in sources.items():
        assert terms.get("skoid") and terms["sp"] == "r" and terms["sr"] == "c" and terms["spr"] == "https", name
    assert blob_contents(env, env.backup_container(gen)) == blob_contents(env, env.source_container())
    assert env.client().filer_state(env.filer_name) == "online"
    assert env.read("/scratch/dirty.log") == DIRTY["/scratch/dirty.log"]

    # No SAS signature (nor any other secret) reached history, status, the catalog or the logs.
    signatures = {terms["sig"] for terms in sources.values()}
    assert_no_leak(env, runner, logs=caplog.text, state_dir=runner.state_dir, signatures=signatures)


def test_failover_with_the_managed_identity(
    identity_env: AppEnv, durable_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import function_app

    env = identity_env
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    captured = env.client().capture_core_filer(env.filer_name)
    env.close()
    env.primary.stop()  # the primary region is gone

    made = record_storage_auth(monkeypatch)
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=40)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["backup_id"] == backup["backup_id"]

    # The app checked the backup and kept its catalog with its identity only; the DR cluster mounts the
    # backup container with the account key its credential holds (a cluster's way, not the app's).
    kinds = {kind for _, kind in made}
    assert "token" in kinds and "key" not in kinds, made
    dr = env.client("dr")
    assert dr.filer_state(env.filer_name) == "online"
    assert dr.capture_core_filer(env.filer_name).junctions == captured.junctions
    for path, data in {**FILES, **DIRTY}.items():
        assert env.read(path, cluster="dr") == data, path
    assert env.catalog().load(env.filer).failed_over["target_cluster"] == "dr"
