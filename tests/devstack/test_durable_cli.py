"""`python -m devstack run | trigger | status ID`, app settings and host.json, through the real CLI code."""

from __future__ import annotations

import json
import os

import pytest

from devstack import cli as devstack_cli
from devstack.clock import RealClock
from devstack.durable import Runner
from devstack.durable.cli import list_instances, show_instance
from devstack.durable.settings import load_host_json

APP = "tests.devstack.durable_apps.cli_app"


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CLI_APP_SETTING", raising=False)
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"CLI_APP_SETTING": "from-local-settings"}})
    )
    yield tmp_path
    os.environ.pop("CLI_APP_SETTING", None)


def _main(*argv: str) -> int:
    return devstack_cli.main(list(argv))


def test_run_backup_follows_the_instance_and_prints_its_final_status(state_dir, capsys):
    code = _main("run", "backup", "c1", "f1", "--state-dir", str(state_dir), "--app", APP)
    out, err = capsys.readouterr()
    assert code == 0, err
    final = json.loads(out)
    assert final["instanceId"] == "backup-c1-f1" and final["runtimeStatus"] == "Completed"
    assert final["output"] == {"filer": "f1", "blobs": 3, "setting": "from-local-settings"}
    assert "started backup-c1-f1" in err
    assert '{"filer": "f1", "step": "done"}' in err  # custom status followed live
    assert show_instance(state_dir, "backup-c1-f1", history=True) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["runtimeStatus"] == "Completed"
    assert [e["EventType"] for e in shown["historyEvents"]] == [
        "ExecutionStarted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert shown["historyEvents"][1]["Result"]["blobs"] == 3


def test_run_dry_run_prints_the_route_answer(state_dir, capsys):
    code = _main("run", "backup", "c1", "f1", "--dry-run", "--state-dir", str(state_dir), "--app", APP)
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out) == {"dry_run": True, "findings": []}
    assert list_instances(state_dir) == []


def test_run_reports_refusals_and_failures_with_a_nonzero_exit(state_dir, capsys):
    assert _main("run", "backup", "c9", "nope", "--state-dir", str(state_dir), "--app", APP) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": "unknown filer c9/nope"} and "answered 404" in err
    assert _main("run", "readd", "c1", "f2", "--state-dir", str(state_dir), "--app", APP) == 1
    final = json.loads(capsys.readouterr().out)
    assert final["runtimeStatus"] == "Failed" and "re-add of f2 failed" in final["output"]


def test_run_goes_through_a_running_serve(state_dir, capsys):
    runner = Runner(APP, state_dir, RealClock()).start()
    try:
        (state_dir / "durable.json").write_text(json.dumps({"url": runner.base_url, "pid": os.getpid()}))
        # The serve holds the state dir's lock, so success here means the CLI used it, not its own runner.
        code = _main("run", "readd", "c1", "f1", "--state-dir", str(state_dir), "--app", APP)
        assert code == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["output"] == "re-added"
    finally:
        runner.stop()


def test_a_second_runner_on_the_same_state_dir_is_refused(state_dir):
    runner = Runner(APP, state_dir, RealClock()).start()
    try:
        with pytest.raises(Exception, match="another Durable runner is using"):
            Runner(APP, state_dir, RealClock()).start()
    finally:
        runner.stop()


def test_trigger_fires_a_timer_function_and_follows_what_it_started(state_dir, capsys):
    assert _main("trigger", "nightly", "--state-dir", str(state_dir), "--app", APP) == 0
    finals = json.loads(capsys.readouterr().out)
    assert sorted(f["instanceId"] for f in finals) == ["backup-c1-f1", "backup-c1-f2"]
    assert {f["runtimeStatus"] for f in finals} == {"Completed"}
    # Again: the finished ids are started afresh, and trigger follows them, not the old runs.
    assert _main("trigger", "nightly", "--state-dir", str(state_dir), "--app", APP, "--no-wait") == 0
    assert sorted(json.loads(capsys.readouterr().out)) == ["backup-c1-f1", "backup-c1-f2"]
    assert _main("trigger", "nope", "--state-dir", str(state_dir), "--app", APP) == 2


def test_show_instance_on_unknown_ids_and_empty_state(tmp_path, capsys):
    assert show_instance(tmp_path, "anything", history=False) == 1
    assert "no Durable state" in capsys.readouterr().err


def test_host_json_hub_from_an_app_setting(tmp_path, monkeypatch):
    host = tmp_path / "host.json"
    host.write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {"durableTask": {"hubName": "%TOY_HUB%", "maxConcurrentActivityFunctions": 3}},
            }
        )
    )
    monkeypatch.setenv("TOY_HUB", "ToyHub7")
    config = load_host_json(host)
    assert config.hub_name == "ToyHub7" and config.max_activities == 3
    monkeypatch.delenv("TOY_HUB")
    with pytest.raises(ValueError, match="%TOY_HUB%"):
        load_host_json(host)
    monkeypatch.setenv("TOY_HUB", "bad hub!")
    with pytest.raises(ValueError, match="letters and digits"):
        load_host_json(host)


def test_environment_wins_over_local_settings(state_dir, monkeypatch, capsys):
    monkeypatch.setenv("CLI_APP_SETTING", "from-environment")
    assert _main("run", "backup", "c1", "f2", "--state-dir", str(state_dir), "--app", APP) == 0
    assert json.loads(capsys.readouterr().out)["output"]["setting"] == "from-environment"
