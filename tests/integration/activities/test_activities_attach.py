"""Activity `attach_step`: each call one idempotent step; refusals that leave the cluster untouched."""

from __future__ import annotations

import pytest

from shared.avere.errors import AvereConfigError, AvereConflict
from shared.plan.model import BackupStorage
from shared.runbook.attach import attach_step, backup_server_name, readd_request
from shared.runbook.key_secret import KeySecret
from shared.runbook.payloads import AttachRef, RunStep
from shared.runbook.refs import RunRef
from tests.fixtures.workflow import Host, attach_until_done, start_run, until


def _captured(env, host: Host, run_id: str = "r1") -> tuple[RunRef, object]:
    """A backup run that has begun and captured the filer."""
    run = start_run(env, host, "backup", run_id)
    host("begin_backup", run)
    return run, host("capture_filer", run)


def _remove(env, host: Host, run: RunRef) -> None:
    """Flush, mark the removal, remove the junctions and the filer, as a backup run does."""
    started = host("suspend_and_flush", run)
    until(lambda: host("flush_status", RunStep(run, started.activity_ids)), lambda s: s.done, env.clock)
    host("mark_removed", run)
    for step in ("remove_junctions", "remove_filer"):
        ids = host(step, run).activity_ids
        until(lambda ids=ids: host("remove_status", RunStep(run, ids)), lambda s: s.done, env.clock)


def test_readd_an_unencrypted_filer_needs_no_key(make_app_env):
    env, host = make_app_env(encrypted=False), Host()
    env.write("/scratch/notes.txt", b"unencrypted but precious")
    run, _ = _captured(env, host)
    with pytest.raises(AvereConfigError, match="not encrypted"):
        host("rotate_key", run)
    _remove(env, host, run)
    steps = attach_until_done(AttachRef(run), env.clock, host)
    assert "keys" not in {s.phase for s in steps} and steps[-1].done
    assert env.read("/scratch/notes.txt") == b"unencrypted but precious"
    assert host("attach_step", AttachRef(run)).done  # once done, a further call changes nothing and says so


def test_refusals_name_the_problem_and_touch_nothing(app_env):
    """The attach step itself (shared/runbook/attach.py), given requests no run resolves to."""
    env, host = app_env, Host()
    env.write("/data/keep.txt", b"keep me")
    run, record = _captured(env, host)
    ctx = env.context()

    # A filer of that name on another bucket is never touched.
    elsewhere = readd_request(ctx, record, env.initial_key)
    elsewhere = type(elsewhere)(**{**elsewhere.__dict__, "bucket": f"{record.bucket}-other"})
    with pytest.raises(AvereConflict, match="left untouched"):
        attach_step(elsewhere)
    assert env.read("/data/keep.txt") == b"keep me"

    _remove(env, host, run)
    # Encrypted data needs the key; a key of another filer is refused before anything is created.
    with pytest.raises(AvereConfigError, match="needs the key secret"):
        attach_step(readd_request(ctx, record, key=None))
    with pytest.raises(AvereConfigError, match="needs the key secret"):  # the run rotated none: nor does it
        host("attach_step", AttachRef(run))
    other = KeySecret(
        passphrase="p" * 20,
        recovery_file="U2FsdGVkX1" + "A" * 60,
        key_id="k",
        signature="s",
        cluster="primary",
        filer="someone-else",
    )
    wrong = env.vault.store("avere-key-other", other.dumps(), content_type="application/json")
    with pytest.raises(AvereConfigError, match="belongs to filer 'someone-else'"):
        attach_step(readd_request(ctx, record, key=wrong))
    assert env.filer_name not in env.client().list_core_filers()

    # The right key: re-added, keys installed from the recovery file (no new key generated).
    request = readd_request(ctx, record, env.initial_key)
    for _ in range(100):
        step = attach_step(request)
        if step.done:
            break
        request = type(request)(**{**request.__dict__, "activity_ids": step.activity_ids})
        env.clock.advance(1.0)
    assert step.done and env.read("/data/keep.txt") == b"keep me"
    status = env.client().master_key_status(env.filer_name)
    assert status.active_key_id == env.demo.key.key_id and not status.ready_to_activate


def test_backup_server_name():
    def storage(endpoint: str) -> BackupStorage:
        return BackupStorage(
            account="bak", blob_endpoint=endpoint, region="eastus2", containers=("x-a", "x-b"), storage_key_secret="k"
        )

    assert backup_server_name(storage("https://bak.blob.core.windows.net")) == "bak.blob.core.windows.net"
    assert backup_server_name(storage("https://bak.blob.core.chinacloudapi.cn")) == "bak.blob.core.chinacloudapi.cn"
    assert backup_server_name(storage("http://127.0.0.1:10000/bak")) == "bak.blob.core.windows.net"
