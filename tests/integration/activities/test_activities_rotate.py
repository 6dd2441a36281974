"""Activity `rotate_key`: the new key is stored in Key Vault (one JSON secret version) before it is activated."""

from __future__ import annotations

import logging
import secrets

import pytest

from devstack.cluster import keys as sim_keys
from shared.runbook.key_secret import CONTENT_TYPE, KeySecret, key_secret_name
from shared.runbook.rotate_key import KeyRotationFailed, new_passphrase
from tests.fixtures.workflow import Host, start_run


def _backup(env, host, run_id: str = "k1"):
    """A backup run that has begun (its generation reserved): what rotate_key is given."""
    run = start_run(env, host, "backup", run_id)
    host("begin_backup", run)
    return run


def test_passphrases_are_fresh_and_short_enough():
    made = {new_passphrase() for _ in range(50)}
    assert len(made) == 50 and all(0 < len(p) < 50 for p in made)


def test_rotate_stores_then_activates_and_a_rerun_makes_a_newer_key(app_env):
    env, host = app_env, Host()
    name = key_secret_name("primary", env.filer_name)
    run = _backup(env, host)
    first = host("rotate_key", run)
    assert first.secret.name == name and first.secret != env.initial_key
    with env.catalog() as catalog:  # recorded under the backup: what its re-add and its entry read
        assert catalog.key(env.filer, "k1") == (first.secret, first.key_id)
    stored = env.vault.read_ref(first.secret)
    value = KeySecret.loads(stored.value)
    assert stored.content_type == CONTENT_TYPE
    assert stored.tags == {"cluster": "primary", "filer": env.filer_name, "key_id": first.key_id}
    assert (value.key_id, value.cluster, value.filer) == (first.key_id, "primary", env.filer_name)
    assert 0 < len(value.passphrase) < 50 and first.value_bytes == len(stored.value.encode())
    status = env.client().master_key_status(env.filer_name)
    assert status.active_key_id == first.key_id and not status.ready_to_activate

    second = host("rotate_key", run)
    assert second.key_id != first.key_id and second.secret.version != first.secret.version
    assert [v.ref for v in env.vault.versions(name)][:2] == [second.secret, first.secret]
    newest = KeySecret.loads(env.vault.read_ref(second.secret).value)
    held = sim_keys.unseal(newest.passphrase, newest.recovery_file).keys
    assert {env.demo.key.key_id, first.key_id, second.key_id} <= set(held)  # every older key is in it
    assert env.client().master_key_status(env.filer_name).active_key_id == second.key_id


def test_no_activation_when_the_store_fails(app_env):
    env = app_env
    name = key_secret_name("primary", env.filer_name)
    env.delete_secret(name)  # a soft-deleted name refuses new versions
    host = Host()
    run = _backup(env, host)
    with pytest.raises(KeyRotationFailed) as caught:
        host("rotate_key", run)
    assert "NOT activated" in str(caught.value) and "old key stays active" in str(caught.value)
    status = env.client().master_key_status(env.filer_name)
    assert status.active_key_id == env.demo.key.key_id  # still the stored one
    assert status.ready_to_activate  # the new key was generated, never activated


def test_warns_near_key_vaults_size_limit_without_values(app_env, caplog):
    env = app_env
    filer = env.primary.cluster.filer(env.filer_name)
    with env.primary.cluster.lock:  # a filer rotated a few hundred times: its recovery file carries them all
        for _ in range(200):
            filer.keys[secrets.token_hex(4)] = secrets.token_bytes(32).hex()
    caplog.set_level(logging.INFO)
    host = Host()
    rotation = host("rotate_key", _backup(env, host))
    assert rotation.near_limit and rotation.value_bytes > 0.8 * 25 * 1024
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "limit" in r.getMessage()]
    assert len(warnings) == 1 and rotation.secret.name in warnings[0].getMessage()
    value = KeySecret.loads(env.vault.read_ref(rotation.secret).value)
    for line in (value.passphrase, *value.recovery_file.splitlines()[:3]):
        assert line not in caplog.text


def test_no_activation_when_the_vault_reads_back_another_value(app_env):
    env = app_env
    name = key_secret_name("primary", env.filer_name)
    host = Host()
    run = _backup(env, host)
    env.keyvault.clear_faults()
    env.keyvault.add_fault("corrupt", method="GET", path=f"/secrets/{name}/*", times=1)
    try:
        with pytest.raises(KeyRotationFailed) as caught:
            host("rotate_key", run)
    finally:
        env.keyvault.clear_faults()
    assert "different value" in str(caught.value) and "NOT activated" in str(caught.value)
    status = env.client().master_key_status(env.filer_name)
    assert status.active_key_id == env.demo.key.key_id  # the stored, intact key stays active
    assert status.ready_to_activate
