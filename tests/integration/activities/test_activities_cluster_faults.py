"""Runbook steps on a cluster that loses answers or garbles fields: writes are applied once and the step
completes; a decision needs the field it decides on (capture, removal, attach, health, preflight)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from devstack.cluster import keys as sim_keys
from shared.avere.errors import AvereUnexpectedAnswer
from shared.runbook.key_secret import KeySecret
from shared.runbook.payloads import AttachRef, RunStep
from shared.runbook.refs import RunRef
from tests.fixtures.secrets import find_leaks
from tests.fixtures.workflow import POLICY, VSERVER, AppEnv, Host, attach_until_done, start_run, until
from tests.integration.activities.test_activities_attach import _remove


def _backup(env: AppEnv, host: Host, run_id: str = "r1") -> RunRef:
    """A backup run that has begun (its generation reserved): what the filer steps are given."""
    run = start_run(env, host, "backup", run_id)
    host("begin_backup", run)
    return run


def _inject(env: AppEnv, method: str, **rule: Any) -> None:
    env.client().call("sim.injectFault", {"method": method, **rule})


def _ran(env: AppEnv, method: str, since: int) -> list[list[str] | None]:
    """The injected labels of each call of `method` since `since` (None: ran without a fault)."""
    return [e.get("injected") for e in env.client().call("sim.callLog", since) if e["method"] == method]


def _mark(env: AppEnv) -> int:
    return len(env.client().call("sim.callLog"))


def _leaks(env: AppEnv, host: Host, caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = {"logs": caplog.text, **{f"result {i} of {name}": text for i, (name, text) in enumerate(host.results)}}
    return find_leaks(env, texts)


def test_a_readd_whose_answers_are_lost_completes_with_nothing_made_twice(
    app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env, host = app_env, Host()
    env.write("/scratch/notes.txt", b"kept through it all")
    run = _backup(env, host)
    host("rotate_key", run)  # the key the run's re-add installs from its recovery file
    record = host("capture_filer", run)
    _remove(env, host, run)
    for rule in env.client().call("nfs.listRules", VSERVER, POLICY, ""):  # the re-add has a rule to add back
        env.client().call("nfs.removeRule", rule["id"])
    lost = {"action": "drop", "when": "after"}
    for method in ("corefiler.createCloudFiler", "corefiler.uploadKeyRecoveryFile", "nfs.addRule"):
        _inject(env, method, **lost)
    _inject(env, "vserver.addJunction", **lost, count=2)
    _inject(env, "corefiler.modify", action="http", status=502, when="after")  # an idempotent setter: re-sent
    since = _mark(env)
    steps = attach_until_done(AttachRef(run), env.clock, host)
    assert steps[-1].done and env.client().call("sim.listFaults")["rules"] == []  # every answer was lost once
    assert _ran(env, "corefiler.createCloudFiler", since) == [["drop-after"]]
    assert _ran(env, "corefiler.uploadKeyRecoveryFile", since) == [["drop-after"]]
    assert _ran(env, "nfs.addRule", since) == [["drop-after"]]
    assert _ran(env, "vserver.addJunction", since) == [["drop-after"], ["drop-after"]]
    assert len(env.client().call("nfs.listRules", VSERVER, POLICY, "")) == 1
    after = env.client().capture_core_filer(env.filer_name)
    assert after.junctions == record.junctions and after.export_policies == record.export_policies
    assert env.read("/scratch/notes.txt") == b"kept through it all"
    assert "answer was lost" in caplog.text and not _leaks(env, host, caplog)


def test_a_rotation_whose_answers_are_lost_stores_and_activates_exactly_one_key(
    app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env, host = app_env, Host()
    run = _backup(env, host)
    for method in ("corefiler.generateMasterKey", "corefiler.activateMasterKey"):
        _inject(env, method, action="drop", when="after")
    since = _mark(env)
    rotation = host("rotate_key", run)
    assert _ran(env, "corefiler.generateMasterKey", since) == [["drop-after"]]  # one key, fetched back
    assert _ran(env, "corefiler.activateMasterKey", since) == [["drop-after"]]
    value = KeySecret.loads(env.vault.read_ref(rotation.secret).value)
    assert sim_keys.unseal(value.passphrase, value.recovery_file).latest == rotation.key_id == value.key_id
    status = env.client().master_key_status(env.filer_name)
    assert status.active_key_id == rotation.key_id and not status.ready_to_activate
    # The recovery file came back through downloadKeyRecoveryFile: it is in no log line and no result.
    assert "answer was lost" in caplog.text and not _leaks(env, host, caplog)


@pytest.mark.parametrize("field", ["cryptoMode", "bucket", "compressMode", "cloudCredential", "policyName"])
def test_capture_refuses_an_answer_without_a_setting_it_records(app_env: AppEnv, field: str) -> None:
    env, host = app_env, Host()
    run = _backup(env, host)
    _inject(env, "corefiler.get", action="rewrite", path=[env.filer_name, field], op="drop", count=5)
    with pytest.raises(AvereUnexpectedAnswer, match=f"no readable {field}"):
        host("capture_filer", run)
    env.client().call("sim.clearFaults")
    with env.catalog() as catalog:
        assert catalog.record(env.filer, "r1") is None  # nothing was recorded from a guess


def test_remove_status_is_not_done_while_junctions_cannot_be_told_apart(app_env: AppEnv) -> None:
    env, host = app_env, Host()
    run = _backup(env, host)
    host("capture_filer", run)
    started = host("suspend_and_flush", run)
    until(lambda: host("flush_status", RunStep(run, started.activity_ids)), lambda s: s.done, env.clock)
    host("mark_removed", run)  # removing needs the catalog's record of the removal first
    ids = host("remove_junctions", run).activity_ids
    env.wait(ids)
    # Junctions of another filer remain, and the listing no longer says whose they are.
    env.client().call("vserver.addJunction", VSERVER, "/other", env.filer_name, "/", {})
    for key in ("*.corefiler", "*.mass"):
        _inject(env, "vserver.listJunctions", action="rewrite", path=key, op="drop", count=3)
    status = host("remove_status", RunStep(run, ids))
    assert not status.done and "names no core filer" in status.detail and status.admin_state == "unknown"
    env.client().call("sim.clearFaults")
    status = host("remove_status", RunStep(run, ids))
    assert not status.done and status.junctions == 1  # read again: the junction is this filer's after all


def test_a_missing_admin_state_is_never_settled_nor_removed(app_env: AppEnv) -> None:
    env, host = app_env, Host()
    run = _backup(env, host)
    host("capture_filer", run)
    host("mark_removed", run)  # the catalog may put it back: only the cluster's answer is missing
    _inject(env, "corefiler.get", action="rewrite", path=[env.filer_name, "adminState"], op="drop", count=100)
    status = host("remove_status", RunStep(run, ("success",)))
    assert not status.done and "no readable adminState" in status.detail
    with pytest.raises(AvereUnexpectedAnswer, match="adminState"):
        host("remove_filer", run)
    env.client().call("sim.clearFaults")
    assert env.client().filer_state(env.filer_name) == "online"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("adminState", "no readable adminState"),
        ("clientSuspend", "no readable clientSuspend"),
        ("cryptoMode", "no readable cryptoMode"),
    ],
)
def test_an_attached_filer_is_never_healthy_on_a_missing_field(app_env: AppEnv, path: str, reason: str) -> None:
    env = app_env
    assert env.client().health(env.filer_name).healthy
    _inject(env, "corefiler.get", action="rewrite", path=[env.filer_name, path], op="drop", count=100)
    health = env.client().health(env.filer_name)
    env.client().call("sim.clearFaults")
    assert not health.healthy and any(reason in r for r in health.reasons), health


def test_no_healthy_without_a_readable_active_key_and_attach_never_says_done(app_env: AppEnv) -> None:
    env, host = app_env, Host()
    run = _backup(env, host)
    host("capture_filer", run)
    request = AttachRef(run)  # the run's re-add of the record it captured, on a filer still attached
    assert host("attach_step", request).done  # attached and serving: the step says so
    _inject(env, "corefiler.masterKeyStatus", action="rewrite", path="activeMasterKeyId", op="drop", count=100)
    health = env.client().health(env.filer_name)
    assert not health.healthy and "no readable activeMasterKeyId" in health.reasons[0]
    with pytest.raises(AvereUnexpectedAnswer):  # the key step cannot tell whether keys are installed
        host("attach_step", request)
    env.client().call("sim.clearFaults")
    _inject(env, "corefiler.get", action="rewrite", path=[env.filer_name, "cryptoMode"], op="drop", count=100)
    with pytest.raises(AvereUnexpectedAnswer, match="cryptoMode"):
        host("attach_step", request)
    env.client().call("sim.clearFaults")
    assert host("attach_step", request).done


def test_preflight_fails_on_a_filer_answer_without_its_state_or_crypto_mode(app_env: AppEnv) -> None:
    env, host = app_env, Host()
    run = start_run(env, host, "backup", "p1")
    for field in ("adminState", "cryptoMode"):
        _inject(env, "corefiler.get", action="rewrite", path=[env.filer_name, field], op="drop", args=[env.filer_name])
        found = host("preflight", run)
        red = {f.check: f.detail for f in found.findings if not f.ok}
        assert not found.ok and f"no readable {field}" in red["filer"], red
    assert host("preflight", run).ok


def test_preflight_counts_a_filer_whose_bucket_cannot_be_read_as_a_problem(app_env: AppEnv) -> None:
    """The split-brain check reads every filer's bucket on every cluster: one it cannot read might be on a
    backup container, so it is a problem, never skipped."""
    env, host = app_env, Host()
    run = start_run(env, host, "backup", "p1")
    # Only the bulk read of the containers check (a list of names), not the filer check's own read.
    _inject(env, "corefiler.get", action="rewrite", path="*.bucket", op="drop", args=[[env.filer_name]])
    found = host("preflight", run)
    red = {f.check: f.detail for f in found.findings if not f.ok}
    assert set(red) == {"containers"} and "its bucket cannot be read" in red["containers"], red
    assert env.client().call("sim.listFaults")["rules"] == []


@pytest.mark.parametrize(
    "rewrite",
    [
        {"path": "state", "op": "drop"},
        {"path": "state", "op": "set", "value": "complete"},
        {"path": "", "op": "set", "value": {}},
    ],
)
def test_a_flush_activity_in_an_unknown_state_is_not_done(app_env: AppEnv, rewrite: dict[str, Any]) -> None:
    env, host = app_env, Host()
    run = _backup(env, host)
    started = host("suspend_and_flush", run)
    env.wait(started.activity_ids)  # the flush is over and the filer clean: only the activity's answer is off
    _inject(env, "cluster.getActivity", action="rewrite", count=100, **rewrite)
    status = host("flush_status", RunStep(run, started.activity_ids))
    env.client().call("sim.clearFaults")
    assert not status.done and not status.failed and status.dirty_files == 0
    assert host("flush_status", RunStep(run, started.activity_ids)).done


def test_rotation_refuses_a_filer_answer_without_its_crypto_mode(app_env: AppEnv) -> None:
    from shared.runbook.rotate_key import KeyRotationFailed

    env, host = app_env, Host()
    run = _backup(env, host)
    _inject(env, "corefiler.get", action="rewrite", path=[env.filer_name, "cryptoMode"], op="drop", count=100)
    since = _mark(env)
    with pytest.raises(KeyRotationFailed, match="no readable cryptoMode") as err:
        host("rotate_key", run)
    env.client().call("sim.clearFaults")
    assert "old key stays active" in str(err.value)  # not "the filer is not encrypted": that would be a guess
    assert _ran(env, "corefiler.generateMasterKey", since) == []
    assert env.client().master_key_status(env.filer_name).active_key_id == env.demo.key.key_id
