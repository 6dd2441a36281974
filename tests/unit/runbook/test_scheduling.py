"""The timer's decisions (pure): due filers under the NCRONTAB, skips with reasons, one per cluster, reconcile."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from shared.catalog.store import ATTACHED, FilerState
from shared.core import ncrontab
from shared.core.clock import to_iso as iso
from shared.plan.load import parse_plan
from shared.runbook.payloads import backup_instance_id, failover_instance_id, readd_instance_id
from shared.runbook.schedule import latest_occurrence, reconcile, tick


def _cluster(name: str, region: str = "westus2") -> dict:
    return {
        "name": name,
        "management_address": "10.0.0.5",
        "region": region,
        "admin_password_secret": f"{name}-pw",
        "tls": {"ca_file": "/etc/ssl/avere-ca.pem"},
    }


def _filer(cluster: str, name: str, **extra: object) -> dict:
    return {
        "cluster": cluster,
        "name": name,
        **extra,
        "source": {
            "account": "src",
            "container": f"{cluster}-{name}",
            "region": "westus2",
            "blob_endpoint": "https://src.blob.core.windows.net",
        },
        "backup": {
            "account": "bak",
            "region": "eastus2",
            "storage_key_secret": "bak-key",
            "blob_endpoint": "https://bak.blob.core.windows.net",
            "containers": [f"{cluster}-{name}-a", f"{cluster}-{name}-b"],
        },
    }


def plan_dict(clusters: list[dict], dr_clusters: list[dict], filers: list[dict]) -> dict:
    """A whole plan document around these clusters and filers (the settings every unit test here shares)."""
    return {
        "version": 1,
        "keyvault_url": "https://kv1.vault.azure.net",
        "schedule": "0 0 2 * * *",
        "rpo_hours": 24,
        "storage_auth": "identity",
        "clusters": clusters,
        "dr_clusters": dr_clusters,
        "filers": filers,
    }


PLAN = parse_plan(
    {
        "version": 1,
        "keyvault_url": "https://kv1.vault.azure.net",
        "schedule": "0 0 2 * * *",
        "rpo_hours": 24,
        "storage_auth": "identity",
        "clusters": [_cluster("c1"), _cluster("c2")],
        "filers": [_filer("c1", "f1"), _filer("c1", "f2"), _filer("c2", "g1"), _filer("c2", "off", enabled=False)],
    }
)
NOW = datetime(2027, 1, 5, 3, 0, tzinfo=UTC)
OCC = "2027-01-05T02:00:00Z"


def _states(**changes) -> dict[str, FilerState]:
    states = {f.key: FilerState.new(f.backup.containers) for f in PLAN.filers}
    for key, change in changes.items():
        change(states[key.replace("__", "/")])
    return states


def _started(result) -> list[str]:
    return [s.filer.key for s in result.start]


def _skipped(result) -> dict[str, str]:
    return {s.filer.key: s.reason for s in result.skip}


@pytest.mark.parametrize(
    ("expr", "now", "expected"),
    [
        ("0 0 2 * * *", "2027-01-05T03:00:00", "2027-01-05T02:00:00"),
        ("0 0 2 * * *", "2027-01-05T01:59:59", "2027-01-04T02:00:00"),
        ("0 0 2 * * *", "2027-01-05T02:00:00", "2027-01-05T02:00:00"),
        ("* * * * * *", "2027-01-05T02:00:07.5", "2027-01-05T02:00:07"),
        ("0 30 4 * * mon", "2027-01-05T03:00:00", "2027-01-04T04:30:00"),
        ("0 0 0 29 2 *", "2027-03-01T00:00:00", "2024-02-29T00:00:00"),
    ],
)
def test_latest_occurrence(expr, now, expected):
    got = latest_occurrence(ncrontab.parse(expr), datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert got == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", ["0 */7 * * * *", "15 10 3 * * 1-5", "*/20 5-6 * * * *"])
def test_latest_occurrence_matches_a_brute_force_search(expr):
    schedule = ncrontab.parse(expr)
    rng = random.Random(expr)
    for _ in range(5):
        now = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 20 * 86400))
        t = now
        while not schedule.matches(t):
            t -= timedelta(seconds=1)
        assert latest_occurrence(schedule, now) == t


def test_due_filers_start_one_per_cluster():
    result = tick(PLAN, _states(), NOW, running=())
    assert result.occurrence == OCC
    assert _started(result) == ["c1/f1", "c2/g1"]
    assert _skipped(result) == {"c1/f2": "another backup runs on cluster c1 (one at a time)"}
    assert [s.instance_id for s in result.start] == ["backup~c1~f1", "backup~c2~g1"]
    assert all(s.occurrence == OCC for s in result.start)
    assert "c2/off" not in _started(result) + list(_skipped(result))  # disabled: never scheduled
    parallel = tick(PLAN, _states(), NOW, running=(), one_per_cluster=False)
    assert _started(parallel) == ["c1/f1", "c1/f2", "c2/g1"]


def test_not_due_again_until_the_next_occurrence():
    def scheduled(state: FilerState) -> None:
        state.last_scheduled = OCC

    states = _states(c1__f1=scheduled, c2__g1=scheduled)
    result = tick(PLAN, states, NOW, running=())
    assert [f.key for f in result.not_due] == ["c1/f1", "c2/g1"]
    assert _started(result) == ["c1/f2"]  # still due from this occurrence: it was deferred, not skipped
    later = tick(PLAN, states, NOW + timedelta(days=1), running=())
    assert later.occurrence == "2027-01-06T02:00:00Z" and not later.not_due


def test_skips_say_why():
    def attention(state: FilerState) -> None:
        state.needs_attention = {"since": "t", "error": "boom"}

    def failed_over(state: FilerState) -> None:
        state.failed_over = {"target_cluster": "dr"}

    def attached(state: FilerState) -> None:
        state.generations["a"].status = ATTACHED

    result = tick(PLAN, _states(c1__f1=attention, c1__f2=failed_over, c2__g1=attached), NOW, running=())
    assert not result.start
    skipped = _skipped(result)
    assert "needs attention" in skipped["c1/f1"]
    assert skipped["c1/f2"] == "it failed over to cluster dr"
    assert "attached" in skipped["c2/g1"]

    running = {backup_instance_id("c1", "f1"), failover_instance_id("c2", "g1")}
    result = tick(PLAN, _states(), NOW, running=running)
    skipped = _skipped(result)
    assert skipped["c1/f1"] == "a backup of this filer is already running"
    assert skipped["c1/f2"] == "another backup runs on cluster c1 (one at a time)"
    assert skipped["c2/g1"] == "a failover of this filer is running"


def test_reconcile_re_adds_what_this_app_removed_unless_a_run_holds_it():
    def removed(state: FilerState) -> None:
        state.removed_by_app = {"since": "t", "instance_id": "backup-c1-f1"}

    states = _states(c1__f1=removed, c2__g1=removed)
    assert [f.key for f in reconcile(PLAN, states, running=())] == ["c1/f1", "c2/g1"]
    held = {backup_instance_id("c1", "f1"), readd_instance_id("c2", "g1")}
    assert reconcile(PLAN, states, running=held) == []
    result = tick(PLAN, states, NOW, running=())
    assert [f.key for f in result.readd] == ["c1/f1", "c2/g1"]
    assert "waits for its re-add" in _skipped(result)["c1/f1"]


def test_iso_is_sortable_text():
    a, b = datetime(2027, 1, 5, 2, tzinfo=UTC), datetime(2027, 1, 5, 10, tzinfo=UTC)
    assert iso(a) == "2027-01-05T02:00:00Z" and iso(a) < iso(b)


def test_a_run_under_the_id_an_earlier_version_gave_still_holds_its_filer():
    from shared.runbook.run_ids import legacy_run_id

    def removed(state: FilerState) -> None:
        state.removed_by_app = {"since": "t", "instance_id": "backup-c1-f1"}

    running = {legacy_run_id("backup", "c1", "f1"), legacy_run_id("readd", "c2", "g1")}
    result = tick(PLAN, _states(c1__f1=removed, c2__g1=removed), NOW, running=running)
    skipped = _skipped(result)
    assert skipped["c1/f1"] == "a backup of this filer is already running"
    assert skipped["c1/f2"] == "another backup runs on cluster c1 (one at a time)"
    assert skipped["c2/g1"] == "a re-add of this filer is running"
    assert not result.start and not result.readd  # reconcile leaves both to the runs that hold them


def test_a_fenced_filer_is_fenced_first_held_removed_and_never_scheduled():
    from shared.catalog.fence import SUSPENDED, begin_fence, settle_fence

    def fenced_removed(state: FilerState) -> None:
        state.removed_by_app = {"since": "t", "instance_id": "backup~c1~f1"}
        begin_fence(state, instance_id="failover~c1~f1", target="dr", by="", at="t")

    def fenced_suspended(state: FilerState) -> None:
        begin_fence(state, instance_id="failover~c2~g1", target="dr", by="", at="t")
        settle_fence(state, how=SUSPENDED, detail="suspended", at="t")

    def failed_over_before_fences(state: FilerState) -> None:
        state.failed_over = {"target_cluster": "dr"}

    states = _states(c1__f1=fenced_removed, c2__g1=fenced_suspended, c1__f2=failed_over_before_fences)
    result = tick(PLAN, states, NOW, running=())
    assert [f.key for f in result.fence] == ["c1/f1", "c1/f2"]  # pending: not applied yet; g1 is suspended
    assert result.readd == () and not result.start
    assert [(h.filer.key, "override=failed-over" in h.reason) for h in result.held] == [("c1/f1", True)]
    assert reconcile(PLAN, states, running=()) == []
    assert "fenced after a failover to cluster dr" in _skipped(result)["c2/g1"]


def test_a_filer_serving_at_dr_is_re_added_there_unless_a_failback_attached_it_at_the_primary():
    """A re-protect backup (or a failback that attached nothing at the primary) left the DR filer removed: the tick
    re-adds it at DR and starts no re-protect backup meanwhile; once a failback marked a re-protect generation
    attached to the primary, it may serve there: never re-added at DR, and the tick says why."""

    def failed_over(state: FilerState) -> None:
        state.failed_over = {"target_cluster": "dr", "generation": "a"}
        state.generations["a"].status = ATTACHED

    states = _states(c1__f1=failed_over)
    rp = FilerState.new(("a", "b"))
    rp.removed_by_app = {"since": "t", "instance_id": "failback~c1~f1", "backup_id": "x", "record": None}
    assert [f.key for f in reconcile(PLAN, states, (), {"c1/f1": rp})] == ["c1/f1"]
    assert reconcile(PLAN, states, (), {}) == []  # the primary side's marks are the fence's: held
    result = tick(PLAN, states, NOW, running=(), reprotect={"c1/f1": rp})
    assert [f.key for f in result.readd] == ["c1/f1"]
    assert "removed at the DR cluster" in _skipped(result)["c1/f1"]
    assert reconcile(PLAN, states, ("failback~c1~f1",), {"c1/f1": rp}) == []

    rp.generations["b"].status = ATTACHED
    rp.generations["b"].attached_to = {"target_cluster": "c1", "instance_id": "failback~c1~f1"}
    result = tick(PLAN, states, NOW, running=(), reprotect={"c1/f1": rp})
    assert result.readd == ()
    held = [h.reason for h in result.held if h.filer.key == "c1/f1"]
    assert len(held) == 1 and "failback~c1~f1" in held[0] and "two clusters" in held[0], held
