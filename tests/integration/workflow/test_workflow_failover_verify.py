"""How a failover checks its backup (`?verify=sample|full|none`) and what it records: the manifest digest the
backup recorded, a bounded sample of blobs, the full check in its own bounded sub-orchestration, RPO and RTO."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.blobcopy.state import manifest_index_path, manifest_page_path, pack, unpack
from shared.catalog.store import copy_prefix
from shared.runbook.manifest_check import SAMPLE_PAGES, SAMPLE_SIZE, sample_picks, sample_positions
from shared.runbook.payloads import failover_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_failover import FILES, backup_now, write_files


def fail_over(env: AppEnv, runner: Any, query: str = "") -> dict:
    reply = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}{query}")
    assert reply.status == 202, reply.body
    return runner.wait_for(reply.json()["id"], timeout=180)


def scheduled(status: dict) -> list[str]:
    """Names of the activities and sub-orchestrations the run called (its own history only)."""
    return [
        e.get("FunctionName") or e.get("Name")
        for e in status["historyEvents"]
        if e["EventType"]
        in (
            "TaskScheduled",
            "SubOrchestrationInstanceCreated",
            "TaskCompleted",
            "TaskFailed",
            "SubOrchestrationInstanceCompleted",
            "SubOrchestrationInstanceFailed",
        )
    ]


def catalog_blob(env: AppEnv, path: str) -> Any:
    ctx = env.context()
    return env.container("dr", ctx.catalog_container).get_blob_client(
        copy_prefix(env.plan.clusters[0].name, env.filer_name) + path
    )


def assert_nothing_attached(env: AppEnv, generation: str, before: str) -> None:
    assert env.filer_name not in env.client("dr").list_core_filers()
    state = env.catalog().load(env.filer)
    assert not state.failed_over
    assert state.generations[generation].status == before


def test_sample_check_by_default_records_digest_rpo_and_rto(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    entry = env.catalog().backup(env.filer, backup["backup_id"])
    digest = entry["manifest_digest"]
    assert digest["pages_hashed"] is True and len(digest["sha256"]) == 64
    assert digest["count"] == entry["verified"]["blobs"] > 0
    assert entry["started_at"] <= entry["consistent_at"] <= entry["finished_at"]  # the suspension, within the run

    env.clock.advance(3600)  # an hour of writes the backup does not hold
    status = fail_over(env, runner)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["verify"] == "sample"
    assert out["blobs_checked"] == min(SAMPLE_SIZE, digest["count"])
    names = scheduled(status)
    assert "verify_backup_sample" in names
    assert "verify_backup_page" not in names and "failover_verify_orchestrator" not in names
    # RPO: from the backup's recovery point to serving (the hour and then some); RTO: request to serving.
    assert out["rpo_s"] >= 3600 and out["consistent_at"] == entry["consistent_at"]
    assert 0 < out["rto_s"] < out["rpo_s"]
    phases = dict(out["phases"])
    assert set(phases) == {"choose_s", "verify_s", "attach_s"}
    assert sum(phases.values()) == pytest.approx(out["rto_s"], abs=0.01)
    mark = env.catalog().load(env.filer).failed_over
    assert (mark["rpo_s"], mark["rto_s"], mark["mode"]) == (out["rpo_s"], out["rto_s"], "unplanned")
    assert mark["requested_at"] < mark["serving_at"]
    for path, data in FILES.items():
        assert env.read(path, cluster="dr") == data, path


def test_sample_positions_are_bounded_distinct_and_the_same_for_the_same_seed() -> None:
    big = sample_positions(10_000_000, "failover-x/r1/b1")
    assert len(big) == SAMPLE_SIZE == len(set(big)) and all(0 <= p < 10_000_000 for p in big)
    assert big == sample_positions(10_000_000, "failover-x/r1/b1")
    assert big != sample_positions(10_000_000, "failover-x/r2/b1")
    assert sample_positions(5, "s") == [0, 1, 2, 3, 4]


def test_sample_picks_read_a_bounded_number_of_pages_whatever_the_size() -> None:
    for pages in (1, 3, 21, 2000):  # 5,000 entries a page: up to 10 million blobs
        counts = [5000] * (pages - 1) + [11]
        picks = sample_picks(counts, "failover-x/r1/b1")
        assert 1 <= len(picks) <= min(SAMPLE_PAGES, pages)  # a page picked may draw no blob (the 11-entry one)
        assert sum(len(o) for o in picks.values()) == (11 if pages == 1 else SAMPLE_SIZE)
        assert all(
            0 <= o < counts[s] and len(set(offsets)) == len(offsets) for s, offsets in picks.items() for o in offsets
        )
        assert picks == sample_picks(counts, "failover-x/r1/b1")
    seen = {s for r in range(200) for s in sample_picks([5000] * 21, f"failover-x/r{r}/b1")}
    assert seen == set(range(21))  # every page is checked by some run
    assert sample_picks([0, 7, 0], "s") == {1: list(range(7))}  # empty pages are never picked


def test_sample_check_refuses_a_backup_whose_sampled_blob_is_missing(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    container = env.backup_container(backup["generation"])
    names = sorted(b.name for b in container.list_blobs())
    assert len(names) <= SAMPLE_SIZE  # every blob is in the sample: whichever is damaged is found
    victim = names[len(names) // 2]
    container.delete_blob(victim)
    before = env.catalog().load(env.filer).generations[backup["generation"]].status

    status = fail_over(env, runner)
    assert status["runtimeStatus"] == "Failed"
    message = json.dumps(status["output"])
    assert "failed its sample check" in message and f"{victim}: missing" in message, message
    assert_nothing_attached(env, backup["generation"], before)


@pytest.mark.parametrize("damage", ["index", "page"])
def test_sample_check_refuses_a_manifest_that_no_longer_matches_its_digest(
    app_env: AppEnv, durable_runner, damage: str
) -> None:
    """The index rewritten (one total changed), or a page rewritten under an unchanged index: both refused."""
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    job = env.catalog().backup(env.filer, backup["backup_id"])["manifest"]
    if damage == "index":
        blob = catalog_blob(env, manifest_index_path(job))
        index = unpack(blob.download_blob().readall())
        index["created"] += 1
        blob.upload_blob(pack(index), overwrite=True)
        expected = "no longer matches the digest recorded with the backup"
    else:
        blob = catalog_blob(env, manifest_page_path(job, 0))
        metadata = blob.get_blob_properties().metadata
        entries = unpack(blob.download_blob().readall())
        entries[0]["s"] += 1  # a size the backup never had: the blob check would pass it as different
        blob.upload_blob(pack(entries), overwrite=True, metadata=metadata)
        expected = "manifest page 0 does not match its hash in the index"
    before = env.catalog().load(env.filer).generations[backup["generation"]].status

    status = fail_over(env, runner)
    assert status["runtimeStatus"] == "Failed"
    message = json.dumps(status["output"])
    assert expected in message, message
    assert_nothing_attached(env, backup["generation"], before)


def test_a_backup_recorded_without_a_digest_gets_the_full_check(app_env: AppEnv, durable_runner) -> None:
    """Entries of an earlier version have no manifest digest: a sample cannot rely on it, every page is checked."""
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    catalog = env.catalog()
    entry = catalog.backup(env.filer, backup["backup_id"])
    del entry["manifest_digest"], entry["consistent_at"]
    catalog.put_backup(env.filer, backup["backup_id"], {k: v for k, v in entry.items() if k != "schema"})

    status = fail_over(env, runner)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["blobs_checked"] == entry["verified"]["blobs"]
    assert "failover_verify_orchestrator" in scheduled(status) and "verify_backup_sample" not in scheduled(status)
    assert out["consistent_at"] == entry["started_at"]  # the run's start stands in: an RPO over- not under-stated


def test_verify_none_checks_nothing_and_full_checks_every_blob(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup_now(env, runner)
    bad = http_call("POST", f"{runner.base_url}/api/failovers/primary/{env.filer_name}?verify=most")
    assert bad.status == 400 and "expected sample, full or none" in bad.json()["error"]
    assert runner.statuses() and not [s for s in runner.statuses() if s["instanceId"].startswith("failover")]

    status = fail_over(env, runner, "?verify=false")  # the earlier flag: false is none
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["verify"] == "none" and status["output"]["blobs_checked"] == 0
    names = scheduled(status)
    assert not {"verify_backup_sample", "verify_backup_page", "failover_verify_orchestrator"} & set(names)


def test_the_full_check_continues_as_new_and_checks_every_page(
    make_app_env, durable_runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 2 blobs, 2 pages per execution: the full check's history is bounded; every blob is still checked."""
    import function_app
    from orchestrators import failover_verify

    env = make_app_env(edit_plan=lambda plan: plan["copy"].update(page_size=2, parallel_pages=1))
    write_files(env)
    runner = durable_runner(function_app.app, clock=env.clock)
    backup = backup_now(env, runner)
    entry = env.catalog().backup(env.filer, backup["backup_id"])
    assert entry["manifest_digest"]["pages"] > 4
    monkeypatch.setattr(failover_verify, "VERIFY_BATCH", 1)
    monkeypatch.setattr(failover_verify, "PAGES_PER_EXECUTION", 2)

    status = fail_over(env, runner, "?verify=full")
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["blobs_checked"] == entry["verified"]["blobs"]
    child = runner.status(failover_instance_id("primary", env.filer_name) + "-verify")
    assert child["runtimeStatus"] == "Completed"
    assert child["output"]["executions"] >= 3  # it continued as new, more than once
    assert child["output"]["checked"] == entry["verified"]["blobs"]
