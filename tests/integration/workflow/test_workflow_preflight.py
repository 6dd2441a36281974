"""A broken credential stops a backup in its preflight, before anything is suspended: each one, through the app's
route and the local runner, fails the run naming the credential, leaves the filer as it was (nothing suspended,
flushed, removed, rotated or written), and the dry run reports the same failing checks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from devstack.faultproxy.proxy import FaultProxy
from shared.runbook import services
from shared.runbook.key_secret import key_secret_name
from shared.runbook.payloads import backup_instance_id
from tests.fixtures.copy import FAST_RETRY
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv

# What a run must not have done to the cluster before its preflight passed.
CHANGES = (
    "vserver.suspend",
    "corefiler.flush",
    "corefiler.remove",
    "corefiler.invalidate",
    "vserver.removeJunction",
    "corefiler.generateMasterKey",
    "corefiler.activateMasterKey",
)


def _wrong_storage_key(role: str) -> Callable[[AppEnv, FaultProxy], str]:
    def breaks(env: AppEnv, proxy: FaultProxy) -> str:
        name = env.secret_names[role]
        env.vault.store(name, base64.b64encode(f"not the {role} key".encode() * 3).decode(), content_type="text/plain")
        return name

    return breaks


def _blocked_source(env: AppEnv, proxy: FaultProxy) -> str:
    proxy.block_account(env.filer.source.account)
    return env.filer.source.account


def _vault_refuses_writes(env: AppEnv, proxy: FaultProxy) -> str:
    env.keyvault.add_fault("error", method="PUT", path="/secrets/vfxtdr-preflight-probe-*", status=403, times=None)
    return env.plan.keyvault_url


def _wrong_password(cluster: str) -> Callable[[AppEnv, FaultProxy], str]:
    def breaks(env: AppEnv, proxy: FaultProxy) -> str:
        env.vault.store(env.secret_names[cluster], f"not the {cluster} password", content_type="text/plain")
        return f"cluster {cluster}"

    return breaks


# (what breaks, the checks that fail: the one that names it first)
CASES = {
    "wrong source account key": (_wrong_storage_key("source"), ["source_account"]),
    "wrong backup account key": (
        _wrong_storage_key("backup"),
        ["backup_account", "backup_write", "containers", "attention", "failed_over"],
    ),
    "source account unreachable": (_blocked_source, ["source_account"]),
    "key vault refuses writes": (_vault_refuses_writes, ["keyvault_write"]),
    "wrong primary cluster password": (_wrong_password("primary"), ["cluster", "filer"]),
    "wrong failover cluster password": (_wrong_password("dr"), ["failover_cluster"]),
}


@pytest.fixture
def proxied_env(make_app_env: Callable[..., AppEnv], faults: FaultProxy) -> Iterator[AppEnv]:
    """The app reaches both accounts through the fault proxy (the clusters reach Azurite directly), with fast
    storage retries so that a blocked account fails in seconds."""

    def through_proxy(plan: dict[str, Any]) -> None:
        for role in ("source", "backup"):
            part = plan["filers"][0][role]
            part["blob_endpoint"] = f"{faults.url}/{part['account']}"

    env = make_app_env(edit_plan=through_proxy)
    previous = services.configure(storage_retry=FAST_RETRY)
    try:
        yield env
    finally:
        services.restore(previous)
        env.keyvault.clear_faults()


def catalog_blobs(env: AppEnv, *, snapshots: bool = False) -> dict[str, str]:
    """The catalog's blobs and their etags; without `snapshots`, leaving out the runs' plan snapshots
    (`.../runs/<instance id>.json`), which `begin_run` records before the preflight checks anything."""
    container = env.container("dr", env.context().catalog_container)
    try:
        return {b.name: b.etag for b in container.list_blobs() if snapshots or "/runs/" not in b.name}
    except ResourceNotFoundError:
        return {}


def world(env: AppEnv) -> tuple:
    """What a run stopped by its preflight must leave as it was."""
    client = env.client()
    key_versions = [v.ref for v in env.vault.versions(key_secret_name("primary", env.filer_name))]
    generations = [env.backup_container(g).exists() for g in ("a", "b")]
    return (
        client.filer_state(env.filer_name),
        client.capture_core_filer(env.filer_name),
        sorted(client.call("sim.dirtyFiles", env.filer_name)),
        catalog_blobs(env),
        key_versions,
        generations,
    )


def changes(env: AppEnv) -> list[str]:
    return [c["method"] for c in env.client().call("sim.callLog") if c["method"] in CHANGES]


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_credential_fails_the_run_in_preflight_with_the_filer_untouched(
    proxied_env: AppEnv, faults: FaultProxy, durable_runner: Any, case: str
) -> None:
    import function_app

    env = proxied_env
    breaks, failing = CASES[case]
    env.write("/data/dirty.txt", b"written before the backup, still dirty")  # a flush would write it back
    named = breaks(env, faults)
    before, changed = world(env), changes(env)  # the set-up made the filer and its first key
    runner = durable_runner(function_app.app, clock=env.clock)

    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    if "backup_account" in failing:
        # The route reads the filer's catalog before it starts a run: it refuses, naming the account.
        assert reply.status == 503, reply.body
        assert env.filer.backup.account in reply.json()["error"] and "dryRun" in reply.json()["error"]
        assert runner.statuses() == []
        red = None
    else:
        assert reply.status == 202, reply.body
        status = runner.wait_for(reply.json()["id"], timeout=120)
        assert status["runtimeStatus"] == "Failed", json.dumps(status, indent=1)[:3000]
        assert "preflight failed" in json.dumps(status["output"])
        custom = status["customStatus"]
        assert custom["step"] == "preflight_failed"
        red = {f["check"]: f["detail"] for f in custom["findings"] if not f["ok"]}
        assert sorted(red) == sorted(failing), red
        assert named in red[failing[0]], red  # the finding names the broken credential
        assert "not the" not in json.dumps(status)  # ...by name, never its value

    # Nothing was suspended, flushed, removed, rotated or written; the dirty file is still only in the cache.
    assert world(env) == before
    assert before[2], "the file written before the run is dirty"
    snapshot = f"filers/primary/{env.filer_name}/runs/{backup_instance_id('primary', env.filer_name)}.json"
    if red is not None:  # the one write before the checks: this run's plan snapshot, and nothing else
        assert snapshot in catalog_blobs(env, snapshots=True)
    assert changes(env) == changed

    # The dry run finds the same.
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}?dryRun=true")
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["ok"] is False
    found = {f["check"]: f["detail"] for f in body["findings"] if not f["ok"]}
    assert sorted(found) == sorted(failing) and named in found[failing[0]], found
    assert red is None or found.keys() == red.keys()
    assert "not the" not in json.dumps(body)
    assert world(env) == before and changes(env) == changed
