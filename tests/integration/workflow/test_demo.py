"""`python -m devstack demo` end to end in a temp state dir, and the pure pieces its output is built from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.demo.app import ProgressView, history_lines, run_seconds
from devstack.demo.checks import BlobFacts, DemoFailed, inventory_differences
from devstack.demo.files import AWKWARD_NAMES, LATE_DELETE, early_files, late_files, new_rng
from devstack.demo.run import Demo, clean_state_dir
from devstack.durable.workflows import WORKFLOWS
from devstack.stack.lifecycle import REPO_ROOT

DEMO_TIMEOUT = 280


def _secrets_in(state: Path) -> dict[str, str]:
    """Every secret value the stack had, from what the demo leaves in its state dir (stack.json is gone)."""
    found: dict[str, str] = {}
    vault = json.loads((state / "keyvault" / "secrets.json").read_text())
    for name, secret in vault["secrets"].items():
        for version, item in secret["versions"].items():
            value = str(item["value"])
            found[f"{name}/{version}"] = value
            if item.get("contentType", "").startswith("application/vnd.vfxtdr.avere-key"):
                key = json.loads(value)
                found[f"{name}/{version} passphrase"] = key["passphrase"]
                for i, line in enumerate(key["recovery_file"].splitlines()):
                    if len(line) >= 16:
                        found[f"{name}/{version} recovery line {i}"] = line
    settings = json.loads((state / "local.settings.json").read_text())["Values"]
    found["identity header"] = settings["IDENTITY_HEADER"]
    for cluster in ("primary", "dr"):
        found[f"{cluster} admin password"] = json.loads((state / "clusters" / cluster / "admin.json").read_text())[
            "password"
        ]
    first = json.loads((state / "clusters" / "primary" / "demo_filer.json").read_text())
    found["initial passphrase"] = first["passphrase"]
    return found


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line or environment names text (how docs/devstack.md finds leftovers)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if text.encode() in (proc / part).read_bytes():
                    pids.append(int(proc.name))
                    break
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_the_demo_passes_end_to_end_and_leaves_its_state_for_inspection(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    env = {k: v for k, v in os.environ.items() if k != "DEVSTACK_CLUSTER_SPEEDUP"}  # real time, as `make demo`
    done = subprocess.run(
        [sys.executable, "-m", "devstack", "demo", "--state-dir", str(state)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["failed_step"] is None
    assert result["files_checked"] == result["files_identical"] >= 120
    assert 0 < result["precopy_s"] < result["backup_s"]
    assert 0 < result["filer_offline_s"] < result["backup_s"]
    assert result["failover_s"] > 0 and result["backup_blobs"] > 200  # several listing pages of 50
    # The rehearsal before the outage: served from a scratch copy, read back by the probe stand-in, timed.
    assert result["drill_rto_s"] > 0 and 0 < result["drill_files_checked"] <= 20
    assert 0 <= result["drill_copy_s"] < result["drill_rto_s"] and result["drill_rpo_s"] > 0
    for heading in (
        "clean start",
        "back up through the app",
        "the backup run's history",
        "rehearse: drill the backup on the DR cluster",
        "lose the primary region",
        "fail over to the DR cluster",
        "read every file back through the DR cluster",
        "summary",
    ):
        assert heading in done.stdout
    assert "pre-copy: listed" in done.stdout and "delta copy: listed" in done.stdout  # live copy progress
    assert "scratch copy: listed" in done.stdout and "ETags and metadata unchanged" in done.stdout

    secrets = _secrets_in(state)
    assert len(secrets) >= 10
    leaked = [what for what, value in secrets.items() if value in output]
    assert leaked == []
    durable = (state / "durable.sqlite3").read_bytes()
    assert [what for what, value in secrets.items() if value.encode() in durable] == []

    assert not (state / "stack.json").exists()  # the stack was stopped ...
    assert _processes_naming(str(state)) == []  # ... every process of it
    for instance in (
        result["backup_instance"],
        result["drill_instance"],
        result["failover_instance"],
    ):  # ... and the runs can be inspected
        shown = subprocess.run(
            [sys.executable, "-m", "devstack", "status", instance, "--history", "--state-dir", str(state)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert status["runtimeStatus"] == "Completed" and status["historyEvents"]


# --- the pieces, without a stack ---------------------------------------------------------------------------
def test_clean_start_refuses_a_directory_that_is_not_a_state_dir_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoFailed, match="not a devstack state dir"):
        clean_state_dir(tmp_path, print)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_clean_start_removes_a_stopped_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    (state / ".stack.lock").write_text("")
    said: list[str] = []
    assert clean_state_dir(state, said.append) is True
    assert not state.exists() and said == [f"removed the previous state in {state}"]
    assert clean_state_dir(state, said.append) is False


def test_a_failed_step_stops_the_demo_and_the_last_line_says_so(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("not a state dir")
    lines: list[str] = []
    code = Demo(tmp_path, out=lines.append).run()
    assert code == 1
    last = json.loads(lines[-1])
    assert last["ok"] is False and last["failed_step"] == "clean start"
    assert last["files_checked"] == 0 and last["files_identical"] == 0
    assert any("FAILED" in line and "not a devstack state dir" in line for line in lines)
    assert (tmp_path / "keep.txt").exists()


def test_the_file_set_is_the_same_every_run_and_has_what_the_demo_promises() -> None:
    first, again = early_files(new_rng()), early_files(new_rng())
    assert first == again
    sizes = sorted(len(d) for d in first.values())
    assert sizes[-1] > 5 * 1024 * 1024 and sizes[-2] > 3 * 1024 * 1024  # several 1 MiB objects each
    assert 0 in sizes
    assert sum(1 for p in first if p.count("/") >= 10) >= 1
    assert all(any(p.endswith("/" + name) for p in first) for name in AWKWARD_NAMES)
    late = late_files(new_rng())
    assert set(late) & set(first)  # one late write changes a file flushed before
    assert LATE_DELETE in first and LATE_DELETE not in late


def test_progress_lines_show_each_pass_with_its_own_totals() -> None:
    view = ProgressView()
    base = {"run": "backup", "filer": "primary/f"}
    assert view.line({**base, "step": "precopy"}) == "precopy"
    totals = {
        "blobs_listed": 120,
        "blobs_to_copy": 120,
        "blobs_copied": 120,
        "bytes_to_copy": 3 << 20,
        "bytes_copied": 3 << 20,
        "pending": 0,
        "eta_s": None,
    }
    flush = view.line({**base, **totals, "step": "flush"})
    assert flush is not None and "pre-copy: listed 120, copied 120/120 blobs, 3.0 MiB/3.0 MiB" in flush
    assert view.line({**base, **totals, "step": "flush"}) is None  # nothing changed: no line
    started = view.line({**base, **totals, "step": "copy"})
    assert started is not None and "listed 120" not in started  # the pre-copy's totals are not the delta's
    delta = view.line({**base, **totals, "blobs_listed": 130, "blobs_to_copy": 4, "blobs_copied": 4, "step": "copy"})
    assert delta is not None and "delta copy: listed 130, copied 4/4 blobs" in delta
    first = {**base, "remove_percent": 100, "step": "removing_filer"}  # 100: the junctions' removal
    assert view.line(first) == "removing_filer     started"
    assert view.line(dict(first)) is None
    assert view.line({**first, "remove_percent": 3, "elapsed_s": 9.1}) == "removing_filer     3%"


def test_history_lines_fold_a_poll_loop_and_keep_times() -> None:
    def event(kind: str, second: float, name: str = "") -> dict:
        return {
            "EventType": kind,
            "Timestamp": f"2030-01-01T00:00:{second:09.6f}Z",
            **({"FunctionName": name} if name else {}),
        }

    events = [event("ExecutionStarted", 0, "backup_orchestrator")]
    for i in range(4):
        events += [
            event("TaskCompleted", 1 + i, "flush_status"),
            event("TimerCreated", 1 + i + 0.01),
            event("TimerFired", 2 + i),
        ]
    events += [event("TaskCompleted", 6, "complete_backup"), event("ExecutionCompleted", 6.5)]
    lines = history_lines(events)
    assert len(lines) == 1 + 1 + 3 + 2
    assert "flush_status" in lines[2] and "x4, the last at +5.00s" in lines[2]
    assert lines[-1].replace(" ", "").startswith("+6.50sExecutionCompleted")
    assert run_seconds(events) == 6.5


def test_inventory_differences_name_missing_extra_and_changed_properties() -> None:
    def facts(size: int = 1, md5: str = "aa", meta: tuple = ()) -> BlobFacts:
        return BlobFacts(size, md5, "application/octet-stream", None, None, None, None, meta)

    source = {"a": facts(), "b": facts(), "c": facts(meta=(("AvereKind", "inode"),))}
    assert inventory_differences(source, dict(source)) == []
    backup = {"a": facts(), "c": facts(md5="bb", meta=(("averekind", "inode"),)), "x": facts()}
    assert inventory_differences(source, backup) == ["missing b", "extra x", "c: md5, metadata differ"]


def test_run_failover_is_one_post_to_the_failover_route() -> None:
    wf = WORKFLOWS["failover"]
    assert (wf.method, wf.args) == ("POST", ("cluster", "filer"))
    assert wf.request_path({"cluster": "primary", "filer": "demo filer"}, {}) == "failovers/primary/demo%20filer"
    assert wf.request_path({"cluster": "p", "filer": "f"}, {"verify": True}) == "failovers/p/f?verify=false"


def test_run_drill_is_one_post_to_the_drill_route() -> None:
    wf = WORKFLOWS["drill"]
    assert (wf.method, wf.args) == ("POST", ("cluster", "filer"))
    assert wf.request_path({"cluster": "primary", "filer": "demo filer"}, {}) == "drills/primary/demo%20filer"
    whole = WORKFLOWS["drills"]
    assert (whole.method, whole.args) == ("POST", ("cluster",))
    assert whole.request_path({"cluster": "primary"}, {}) == "drills/primary"


def test_drill_progress_lines_name_the_scratch_copy_and_the_read_back() -> None:
    view = ProgressView()
    base = {
        "run": "drill",
        "filer": "primary/f",
        "backup_id": "b1",
        "generation": "a",
        "rpo_s": 60.0,
        "scratch": "drill-f-1a2b3c4d-9f8e7d6c",
        "target_cluster": "dr",
    }
    chosen = view.line({**base, "step": "chosen"})
    assert chosen is not None and "scratch drill-f-1a2b3c4d-9f8e7d6c -> cluster dr" in chosen and "60.0s old" in chosen
    totals = {
        "blobs_listed": 10,
        "blobs_to_copy": 10,
        "blobs_copied": 10,
        "bytes_to_copy": 1 << 20,
        "bytes_copied": 1 << 20,
        "pending": 0,
    }
    copied = view.line({**base, **totals, "step": "scratch_copy"})
    assert copied is not None and "scratch copy: listed 10, copied 10/10 blobs" in copied
    read = view.line(
        {
            **base,
            **totals,
            "step": "read_back",
            "readback": "passed",
            "files_ok": 3,
            "files_checked": 3,
            "bytes_read": 2 << 20,
        }
    )
    assert read is not None and "passed: 3/3 files, 2.0 MiB read whole by the probe" in read
