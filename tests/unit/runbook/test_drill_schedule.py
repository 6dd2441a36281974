"""The timer's drill decisions (pure): each filer's own drill_schedule, off by default; once per occurrence; one
scheduled drill per cluster at a time; skips that name their reason and leave the filer due."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.catalog.store import VERIFIED, FilerState
from shared.plan.load import parse_plan
from shared.runbook.drill_payloads import drill_instance_id
from shared.runbook.drill_schedule import tick
from shared.runbook.payloads import failover_instance_id


def _cluster(name: str, region: str = "westus2") -> dict:
    return {
        "name": name,
        "management_address": "10.0.0.5",
        "region": region,
        "admin_password_secret": f"{name}-pw",
        "tls": {"fingerprint_sha256": "AB:" * 31 + "AB"},
    }


def _filer(cluster: str, name: str, **extra: object) -> dict:
    return {
        "cluster": cluster,
        "name": name,
        "failover_cluster": "dr",
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


WEEKLY = "0 0 4 * * sun"
PLAN = parse_plan(
    {
        "version": 1,
        "keyvault_url": "https://kv1.vault.azure.net",
        "schedule": "0 0 2 * * *",
        "rpo_hours": 24,
        "storage_auth": "identity",
        "clusters": [_cluster("c1"), _cluster("c2")],
        "dr_clusters": [_cluster("dr", "eastus2")],
        "filers": [
            _filer("c1", "f1", drill_schedule=WEEKLY),
            _filer("c1", "f2", drill_schedule=WEEKLY),
            _filer("c2", "g1", drill_schedule=WEEKLY),
            _filer("c2", "plain"),
            _filer("c2", "off", enabled=False, drill_schedule=WEEKLY),
        ],
    }
)
NOW = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)  # a Tuesday: the last occurrence was Sunday the 10th, 04:00
OCC = "2027-01-10T04:00:00Z"


def _verified() -> dict[str, FilerState]:
    states = {}
    for f in PLAN.filers:
        state = FilerState.new(f.backup.containers)
        gen = state.generations["a"]
        gen.status, gen.backup_id, gen.manifest = VERIFIED, "b1", "b1-final"
        state.latest_verified = "a"
        states[f.key] = state
    return states


def test_only_filers_with_a_drill_schedule_are_drilled_one_per_cluster_once_per_occurrence() -> None:
    result = tick(PLAN, _verified(), {}, NOW, set())
    assert [(s.filer.key, s.occurrence) for s in result.start] == [("c1/f1", OCC), ("c2/g1", OCC)]
    assert {s.filer.key: s.reason for s in result.skip} == {
        "c1/f2": "another drill runs on cluster c1 (one scheduled drill at a time)"
    }
    assert result.start[0].instance_id == drill_instance_id("c1", "f1")
    marks = {"c1/f1": OCC, "c2/g1": OCC}
    assert [s.filer.key for s in tick(PLAN, _verified(), marks, NOW, set()).start] == ["c1/f2"]
    done = {**marks, "c1/f2": OCC}
    assert tick(PLAN, _verified(), done, NOW, set()) == tick(PLAN, _verified(), done, NOW, set())
    assert not tick(PLAN, _verified(), done, NOW, set()).start


def test_skips_name_why_and_leave_the_filer_due() -> None:
    states = _verified()
    states["c2/g1"] = FilerState.new(("c2-g1-a", "c2-g1-b"))  # never backed up
    running = {failover_instance_id("c1", "f1"), drill_instance_id("c1", "f2")}
    result = tick(PLAN, states, {}, NOW, running)
    assert result.start == ()
    assert {s.filer.key: s.reason for s in result.skip} == {
        "c1/f1": "a failover of this filer is running",
        "c1/f2": "a drill of this filer is already running",
        "c2/g1": "the filer has no verified backup",
    }
    states = _verified()
    states["c1/f1"].failed_over = {"target_cluster": "dr"}
    skipped = {s.filer.key: s.reason for s in tick(PLAN, states, {}, NOW, set()).skip}
    assert "failed over" in skipped["c1/f1"]
