"""The filer report (pure): its state, where it serves, the RPO age, badge and breach, live runs' progress, and the
history views; every value it copies is picked by name and type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.catalog.store import ATTACHED, FAILED, VERIFIED, WRITING, FilerState, Generation
from shared.plan.load import parse_plan
from shared.runbook import report as rep
from shared.runbook import report_history as hist
from shared.runbook.report import FilerFacts, RunInfo
from tests.unit.runbook.test_scheduling import _cluster, _filer

PLAN = parse_plan(
    {
        "version": 1,
        "keyvault_url": "https://kv1.vault.azure.net",
        "schedule": "0 0 2 * * *",
        "rpo_hours": 24,
        "storage_auth": "identity",
        "clusters": [_cluster("c1")],
        "dr_clusters": [_cluster("dr", "eastus2")],
        "filers": [_filer("c1", "f1", failover_cluster="dr"), _filer("c1", "off", enabled=False)],
    }
)
FILER = PLAN.filer("c1", "f1")
NOW = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
HOUR = 3600


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def verified_state(hours_ago: float = 3, backup_id: str = "b1", generation: str = "a") -> FilerState:
    state = FilerState.new(FILER.backup.containers)
    state.generations[generation] = Generation(
        container=FILER.backup.containers["ab".index(generation)],
        status=VERIFIED,
        backup_id=backup_id,
        verified_at=at(hours_ago - 1),
        manifest=f"{backup_id}-final",
    )
    state.latest_verified = generation
    state.last_run = {
        "backup_id": backup_id,
        "status": "verified",
        "instance_id": "backup-c1-f1",
        "started_at": at(hours_ago),
        "finished_at": at(hours_ago - 1),
    }
    return state


def entry(hours_ago: float = 3, backup_id: str = "b1", **extra: Any) -> dict[str, Any]:
    return {
        "backup_id": backup_id,
        "status": "verified",
        "started_at": at(hours_ago),
        "generation": "a",
        "instance_id": "backup-c1-f1",
        "verified": {"blobs": 10, "copied": 4, "bytes_copied": 4096},
        "record": {"name": "f1", "secret": "never shown"},
        "key": {"name": "kv-secret", "version": "v1"},
        **extra,
    }


def facts(state: FilerState | None, backup: dict | None = None, **kw: Any) -> FilerFacts:
    return FilerFacts(FILER, state, backup, **kw)


def report(f: FilerFacts) -> dict[str, Any]:
    return rep.report(PLAN, f, NOW)


def backup_run(step: str = "copy", **fields: Any) -> RunInfo:
    return RunInfo("backup-c1-f1", "backup", "Running", {"run": "backup", "filer": "c1/f1", "step": step, **fields})


@pytest.mark.parametrize(
    ("hours_ago", "badge", "breach"),
    [
        (3, "green", False),
        (24, "green", False),
        (24.5, "amber", True),
        (36, "amber", True),
        (36.5, "red", True),
        (500, "red", True),
    ],
)
def test_the_badge_and_the_breach_follow_the_age_of_the_newest_verified_backup(hours_ago, badge, breach):
    out = report(facts(verified_state(hours_ago), entry(hours_ago)))
    assert out["state"] == "protected" and out["serving_cluster"] == "c1"
    assert out["rpo"]["badge"] == badge and out["rpo"]["breach"] is breach
    assert out["rpo"]["age_s"] == round(hours_ago * HOUR) and out["rpo"]["target_hours"] == 24
    assert out["last_backup"]["backup_id"] == "b1" and out["last_backup"]["age_s"] == round(hours_ago * HOUR)


def test_the_age_counts_from_the_start_of_the_backup_run_not_its_verification():
    state = verified_state(30)
    state.generations["a"].verified_at = at(1)  # verified an hour ago, but the run began 30 h ago
    out = report(facts(state, entry(30)))
    assert out["rpo"]["age_hours"] == 30 and out["rpo"]["badge"] == "amber"


def test_a_backup_running_turns_red_amber_only_for_an_old_backup():
    old = report(facts(verified_state(40), entry(40), running=[backup_run()]))
    assert old["state"] == "running" and old["rpo"]["badge"] == "amber" and old["rpo"]["breach"] is True
    fresh = report(facts(verified_state(3), entry(3), running=[backup_run()]))
    assert fresh["rpo"]["badge"] == "green"
    readd = RunInfo("readd-c1-f1", "readd", "Running", {"run": "readd", "step": "attach"})
    assert report(facts(verified_state(40), entry(40), running=[readd]))["rpo"]["badge"] == "red"


@pytest.mark.parametrize(
    "broken",
    [
        None,  # no entry
        {"backup_id": "other", "status": "verified", "started_at": "2030-01-10T09:00:00Z"},  # another backup's
        {"backup_id": "b1", "status": "failed", "started_at": "2030-01-10T09:00:00Z"},  # not verified
        {"backup_id": "b1", "status": "verified", "started_at": "yesterday"},  # no usable time
        {"backup_id": "b1", "status": "verified", "started_at": "2030-01-10T09:00:00"},  # no zone
    ],
)
def test_a_verified_generation_without_a_matching_entry_is_no_verified_backup(broken):
    state = verified_state(3)
    state.last_scheduled = "2030-01-10T02:00:00Z"
    out = report(facts(state, broken))
    assert out["state"] == "unprotected" and out["last_backup"] is None
    assert out["rpo"] == {
        "target_hours": 24,
        "age_s": None,
        "age_hours": None,
        "badge": "red",
        "reason": "no verified backup",
        "breach": True,
    }


def test_no_verified_backup_is_a_breach_only_once_a_run_was_tried_and_none_runs():
    new = FilerState.new(FILER.backup.containers)
    out = report(facts(new))
    assert out["state"] == "unprotected" and out["rpo"]["badge"] == "red" and out["rpo"]["breach"] is False
    new.last_scheduled = "2030-01-10T02:00:00Z"
    assert report(facts(new, running=[backup_run()]))["rpo"]["breach"] is False  # the first run is under way
    assert report(facts(new))["rpo"]["breach"] is True


def test_needs_attention_is_red_with_the_readd_action_and_serves_nowhere():
    state = verified_state(3)
    state.needs_attention = {
        "since": at(1),
        "error": "createCloudFiler failed 4 times",
        "instance_id": "x",
        "record": {"name": "f1"},
        "key": {"name": "k", "version": "v"},
    }
    out = report(facts(state, entry(3), running=[RunInfo("readd-c1-f1", "readd", "Running", {"step": "attach"})]))
    assert out["state"] == "needs_attention" and out["serving_cluster"] is None
    assert out["rpo"]["badge"] == "red" and out["rpo"]["breach"] is False  # the backup itself is recent
    assert out["attention"] == {
        "since": at(1),
        "error": "createCloudFiler failed 4 times",
        "action": "fix the cluster, then POST /api/filers/c1/f1/readd",
    }
    assert "POST /api/filers/c1/f1/readd" in out["state_detail"]
    assert [r["kind"] for r in out["running"]] == ["readd"]


def test_failed_over_serves_from_the_target_and_its_attached_backup_is_no_backup():
    state = verified_state(3)
    state.generations["a"].status = ATTACHED
    state.generations["a"].attached_to = {"target_cluster": "dr", "backup_id": "b1"}
    state.failed_over = {"target_cluster": "dr", "backup_id": "b1", "instance_id": "failover-c1-f1"}
    out = report(facts(state, None))
    assert out["state"] == "failed_over" and out["serving_cluster"] == "dr"
    assert out["rpo"]["badge"] == "red" and out["last_backup"] is None and "dr" in out["state_detail"]
    # Attached but not recorded as serving (a failover stopped mid-attach): nobody is known to serve it.
    state.failed_over = None
    out = report(facts(state, None))
    assert out["state"] == "failed_over" and out["serving_cluster"] is None and "dr" in out["state_detail"]


def _failed_over() -> FilerState:
    state = verified_state(30)
    state.generations["a"].status = ATTACHED
    state.generations["a"].attached_to = {"target_cluster": "dr", "backup_id": "b1"}
    state.failed_over = {"target_cluster": "dr", "backup_id": "b1", "instance_id": "failover-c1-f1", "generation": "a"}
    return state


def _reprotect(hours_ago: float | None) -> FilerState:
    """The re-protect side's state: one verified re-protect backup `hours_ago`, or none."""
    rp = FilerState.new(("src-rp-a", "src-rp-b"))
    if hours_ago is not None:
        rp.generations["a"] = Generation(
            container="src-rp-a", status=VERIFIED, backup_id="rp1", verified_at=at(hours_ago - 1)
        )
        rp.latest_verified = "a"
    return rp


@pytest.mark.parametrize(("hours_ago", "state", "badge"), [(None, "failed_over", "red"), (3, "reprotected", "green")])
def test_serving_at_dr_the_rpo_counts_from_the_newest_verified_reprotect_backup(hours_ago, state, badge):
    backup = None if hours_ago is None else entry(hours_ago, backup_id="rp1")
    out = report(facts(_failed_over(), backup, reprotect=_reprotect(hours_ago)))
    assert out["state"] == state and out["serving_cluster"] == "dr"
    assert out["rpo"]["badge"] == badge
    assert (out["last_backup"] or {}).get("backup_id") == (None if hours_ago is None else "rp1")
    assert ("failback" in out["state_detail"]) is (hours_ago is not None)


def test_a_failback_in_progress_and_the_reprotect_sides_marks_show():
    failback = RunInfo("failback~c1~f1", "failback", "Running", {"run": "failback", "step": "copy"})
    out = report(facts(_failed_over(), entry(3, backup_id="rp1"), running=[failback], reprotect=_reprotect(3)))
    assert out["state"] == "failing_back" and "c1" in out["state_detail"]
    removed = _reprotect(3)
    removed.removed_by_app = {"instance_id": "backup~c1~f1", "record": {"name": "f1"}}
    out = report(facts(_failed_over(), entry(3, backup_id="rp1"), reprotect=removed))
    assert out["state"] == "awaiting_readd" and out["serving_cluster"] is None and "dr" in out["state_detail"]
    removed.needs_attention = {"since": at(1), "error": "re-add failed"}
    out = report(facts(_failed_over(), entry(3, backup_id="rp1"), reprotect=removed))
    assert out["state"] == "needs_attention" and out["serving_cluster"] is None and out["rpo"]["badge"] == "red"
    assert out["attention"]["error"] == "re-add failed" and "readd" in out["attention"]["action"]


def test_the_other_verified_generation_still_counts_after_a_failover():
    state = verified_state(3)
    state.generations["a"].status = ATTACHED
    state.generations["b"] = Generation(container="c1-f1-b", status=VERIFIED, backup_id="b0", verified_at=at(27))
    out = report(facts(state, entry(28, backup_id="b0")))
    assert out["last_backup"]["backup_id"] == "b0" and out["last_backup"]["generation"] == "b"
    assert out["rpo"]["badge"] == "amber"


def test_removed_without_a_run_awaits_its_readd_and_unknown_catalog_is_red():
    state = verified_state(3)
    state.removed_by_app = {"instance_id": "backup-c1-f1", "record": {"name": "f1"}}
    out = report(facts(state, entry(3)))
    assert out["state"] == "awaiting_readd" and out["serving_cluster"] is None and out["rpo"]["badge"] == "red"
    out = report(facts(None, problem="ServiceRequestError reading the catalog of c1/f1"))
    assert out["state"] == "unknown" and out["rpo"]["badge"] == "red" and out["rpo"]["breach"] is True
    assert "ServiceRequestError" in out["state_detail"]


def test_a_disabled_filer_says_so():
    off = PLAN.filer("c1", "off")
    out = rep.report(PLAN, FilerFacts(off, FilerState.new(off.backup.containers)), NOW)
    assert out["state"] == "disabled" and out["enabled"] is False


def test_progress_is_picked_by_name_and_type_from_the_custom_status():
    run = backup_run(
        "copy",
        blobs_to_copy=40,
        blobs_copied=12,
        bytes_to_copy=4 << 20,
        bytes_copied=1 << 20,
        pending=3,
        eta_s=90,
        started="2030-01-10T11:00:00Z",
        elapsed_s=60.5,
        record={"name": "f1"},
        error="boom",
        findings=[1],
        blobs_listed=True,
        pages=-1,
        flush_percent=float("nan"),
        copy_instance="backup-c1-f1-x-final",
    )
    out = report(facts(verified_state(3), entry(3), running=[run]))
    view = out["running"][0]
    assert view == {
        "instance_id": "backup-c1-f1",
        "kind": "backup",
        "runtime_status": "Running",
        "step": "copy",
        "phase": None,
        "started": "2030-01-10T11:00:00Z",
        "elapsed_s": 60.5,
        "progress": {
            "blobs_to_copy": 40,
            "blobs_copied": 12,
            "bytes_to_copy": 4 << 20,
            "bytes_copied": 1 << 20,
            "pending": 3,
            "eta_s": 90,
        },
        "link": "/api/runs/backup-c1-f1",
    }
    assert out["state"] == "running" and out["state_detail"] == "in progress: backup"
    # A custom status that is not an object (a Pending run has none) shows the run without progress.
    bare = report(facts(verified_state(3), entry(3), running=[RunInfo("x y/z", "failover", "Pending", "text")]))
    assert bare["running"][0]["kind"] == "failover" and bare["running"][0]["progress"] == {}
    assert bare["running"][0]["link"] == "/api/runs/x%20y%2Fz"


def test_nothing_but_picked_fields_leaves_the_catalog():
    text = json.dumps(report(facts(verified_state(3), entry(3))))
    assert "never shown" not in text and "kv-secret" not in text and "record" not in text


def test_the_last_drill_and_its_rto():
    drills = [
        {"drill_id": "d1", "status": "passed", "started_at": at(200), "rto_s": 1800, "instance_id": "drill-1"},
        {"drill_id": "d2", "status": "failed", "started_at": at(20), "rto_s": "fast"},
        {"drill_id": "d3", "status": "passed", "started_at": "not a time", "rto_s": 10},
    ]
    out = report(facts(verified_state(3), entry(3), drills=drills))
    assert out["last_drill"]["drill_id"] == "d2" and out["last_drill"]["rto_s"] is None
    assert report(facts(verified_state(3), entry(3), drills=drills[:1]))["last_drill"] == {
        "drill_id": "d1",
        "status": "passed",
        "started_at": at(200),
        "finished_at": None,
        "rto_s": 1800,
        "target_cluster": None,
        "instance_id": "drill-1",
        "link": "/api/runs/drill-1",
    }
    assert report(facts(verified_state(3), entry(3)))["last_drill"] is None


def test_run_ids_include_the_catalogs_running_backup_and_running_drills():
    state = verified_state(3)
    assert set(rep.run_ids(FILER, state)) == {
        "backup~c1~f1",
        "readd~c1~f1",
        "failover~c1~f1",
        "failback~c1~f1",
        "backup-c1-f1",
        "readd-c1-f1",
        "failover-c1-f1",
    }
    state.last_run = {"status": "running", "instance_id": "backup-c1-f1-20300110"}
    assert rep.run_ids(FILER, state)["backup-c1-f1-20300110"] == "backup"
    assert rep.drill_ids(
        [{"status": "running", "instance_id": "drill-c1-f1"}, {"status": "passed", "instance_id": "old"}]
    ) == {"drill-c1-f1": "drill"}


def test_history_views_sort_newest_first_and_page():
    state = verified_state(3, backup_id="b3")
    state.generations["b"] = Generation(container="c1-f1-b", status=FAILED, backup_id="b2")
    backups = [
        hist.backup_view(entry(h, backup_id=f"b{i}", status=s), state)
        for i, (h, s) in enumerate([(50, "verified"), (27, "failed"), (3, "verified")], start=1)
    ]
    backups = hist.newest_first(backups, "started_at")
    assert [b["backup_id"] for b in backups] == ["b3", "b2", "b1"]
    assert [b["restorable"] for b in backups] == [True, False, False]
    assert "record" not in backups[0] and "key" not in backups[0]
    failovers = [
        hist.failover_view(
            {
                "at": at(1),
                "target_cluster": "dr",
                "backup_id": "b3",
                "status": "serving",
                "instance_id": "failover-c1-f1",
            }
        )
    ]
    runs = hist.timeline(backups, failovers, [rep.drill_view({"drill_id": "d", "started_at": at(10)})])
    assert [(r["kind"], r["id"]) for r in runs] == [
        ("failover", "b3"),
        ("backup", "b3"),
        ("drill", "d"),
        ("backup", "b2"),
        ("backup", "b1"),
    ]
    assert hist.paged(runs, 2, 2) == {"total": 5, "page": 2, "pageSize": 2, "items": runs[2:4]}
    assert hist.paged(runs, 4, 2)["items"] == []


def test_a_writing_generation_is_not_a_backup():
    state = FilerState.new(FILER.backup.containers)
    state.generations["a"] = Generation(container="c1-f1-a", status=WRITING, backup_id="b9")
    assert rep.newest_verified(state) is None


def test_the_report_shows_where_the_filer_lives():
    out = report(facts(verified_state(3), entry(3)))
    assert out["home"] == {
        "side": "primary",
        "cluster": "c1",
        "container": FILER.source.container,
        "generation": None,
        "since": None,
        "retired": [],
    }
    failed_over = verified_state(3)
    g = next(iter(failed_over.generations))
    failed_over.generations[g].status = ATTACHED
    failed_over.failed_over = {"target_cluster": "dr1", "generation": g}
    home = report(facts(failed_over, entry(3)))["home"]
    assert (home["side"], home["cluster"], home["generation"]) == ("dr", "dr1", g)
    assert home["container"] == failed_over.generations[g].container
    assert report(FilerFacts(FILER, None, problem="unreadable"))["home"] is None
