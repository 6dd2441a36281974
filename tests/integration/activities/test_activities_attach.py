"""Activity `attach_step`: each call one idempotent step; refusals that leave the cluster untouched."""

from __future__ import annotations

import pytest

from shared.avere.errors import AvereConfigError, AvereConflict
from shared.plan.model import BackupStorage
from shared.runbook.attach import backup_server_name, readd_request
from shared.runbook.key_secret import KeySecret
from shared.runbook.payloads import FilerStep
from tests.fixtures.workflow import Host, attach_until_done, until


def _remove(env, host: Host) -> None:
    """Flush, remove the junctions and the filer, as a backup run does."""
    ctx = env.context()
    started = host("suspend_and_flush", FilerStep(context=ctx))
    until(lambda: host("flush_status", FilerStep(context=ctx, activity_ids=started.activity_ids)),
          lambda s: s.done, env.clock)
    for step in ("remove_junctions", "remove_filer"):
        ids = host(step, FilerStep(context=ctx)).activity_ids
        until(lambda ids=ids: host("remove_status", FilerStep(context=ctx, activity_ids=ids)), lambda s: s.done,
              env.clock)


def test_readd_an_unencrypted_filer_needs_no_key(make_app_env):
    env, host = make_app_env(encrypted=False), Host()
    env.write("/scratch/notes.txt", b"unencrypted but precious")
    with pytest.raises(AvereConfigError, match="not encrypted"):
        host("rotate_key", FilerStep(context=env.context()))
    record = host("capture_filer", FilerStep(context=env.context(), backup_id="r1"))
    _remove(env, host)
    request = readd_request(env.context(), record, key=None)
    steps = attach_until_done(request, env.clock, host)
    assert "keys" not in {s.phase for s in steps} and steps[-1].done
    assert env.read("/scratch/notes.txt") == b"unencrypted but precious"
    assert host("attach_step", request).done  # once done, a further call changes nothing and says so


def test_refusals_name_the_problem_and_touch_nothing(app_env):
    env, host = app_env, Host()
    env.write("/data/keep.txt", b"keep me")
    record = host("capture_filer", FilerStep(context=env.context(), backup_id="r1"))

    # A filer of that name on another bucket is never touched.
    elsewhere = readd_request(env.context(), record, env.initial_key)
    elsewhere = type(elsewhere).from_json({**type(elsewhere).to_json(elsewhere),
                                           "bucket": f"{record.bucket}-other"})
    with pytest.raises(AvereConflict, match="left untouched"):
        host("attach_step", elsewhere)
    assert env.read("/data/keep.txt") == b"keep me"

    _remove(env, host)
    # Encrypted data needs the key; a key of another filer is refused before anything is created.
    with pytest.raises(AvereConfigError, match="needs the key secret"):
        host("attach_step", readd_request(env.context(), record, key=None))
    other = KeySecret(passphrase="p" * 20, recovery_file="U2FsdGVkX1" + "A" * 60, key_id="k", signature="s",
                      cluster="primary", filer="someone-else")
    wrong = env.vault.store("avere-key-other", other.dumps(), content_type="application/json")
    with pytest.raises(AvereConfigError, match="belongs to filer 'someone-else'"):
        host("attach_step", readd_request(env.context(), record, key=wrong))
    assert env.filer_name not in env.client().list_core_filers()

    # The right key: re-added, keys installed from the recovery file (no new key generated).
    steps = attach_until_done(readd_request(env.context(), record, env.initial_key), env.clock, host)
    assert steps[-1].done and env.read("/data/keep.txt") == b"keep me"
    status = env.client().master_key_status(env.filer_name)
    assert status.active_key_id == env.demo.key.key_id and not status.ready_to_activate


def test_backup_server_name():
    def storage(endpoint: str) -> BackupStorage:
        return BackupStorage(account="bak", blob_endpoint=endpoint, region="eastus2", containers=("x-a", "x-b"),
                             storage_key_secret="k")

    assert backup_server_name(storage("https://bak.blob.core.windows.net")) == "bak.blob.core.windows.net"
    assert backup_server_name(storage("https://bak.blob.core.chinacloudapi.cn")) == "bak.blob.core.chinacloudapi.cn"
    assert backup_server_name(storage("http://127.0.0.1:10000/bak")) == "bak.blob.core.windows.net"
