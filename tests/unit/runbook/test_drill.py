"""Drills' pure parts: names that cannot collide with production, the catalog's rules for a drill request, the
backup's consistent point, the probe's answer judged fail-closed, and crafted payloads refused."""

from __future__ import annotations

import json
import re

import pytest

from shared.avere.records import CachePolicyRecord, ExportPolicyRecord, ExportRule, FilerRecord, JunctionRecord
from shared.catalog.store import ATTACHED, VERIFIED, WRITING, FilerState
from shared.core.codec import decode
from shared.core.errors import InputRefused
from shared.runbook.blockers import Reason
from shared.runbook.drill import (
    consistent_point,
    drill_blocker,
    drill_filer_name,
    drill_record_of,
    junction_prefix,
    scratch_container,
    scratch_prefix,
)
from shared.runbook.drill_payloads import DrillBegin, DrillFinish, DrillRef, DrillRequest, DrillStep
from shared.runbook.drill_probe import judge
from shared.runbook.refs import INPUT_FORMAT, RunRef

RULE = ExportRule("network", "10.0.0.0/8", "rw", "root_squash", "-2", False, "", True, False)


def captured() -> FilerRecord:
    return FilerRecord(
        name="projects",
        cloud_type="azure",
        bucket="src/projects",
        server_name="src.blob.core.windows.net",
        credential_name="cred",
        credential_type="azure-storage",
        crypto_mode="DISABLED",
        compress_mode="LZ4",
        ssl_verify_mode="DISABLED",
        https="yes",
        port="443",
        proxy="",
        nearline="no",
        network="",
        cache_policy=CachePolicyRecord("Full Caching", "read-write", 0, 30, 30, False, builtin=True),
        junctions=(
            JunctionRecord("vs", "/projects", "/", "p", True, "", "posix", "", "", ""),
            JunctionRecord("vs", "/scratch", "/", "s", False, "lab", "posix", "", "", "modebits"),
        ),
        export_policies=(ExportPolicyRecord("vs", "lab", (RULE,)),),
    )


def test_the_drill_attaches_under_names_production_never_uses() -> None:
    drill = drill_record_of(captured(), "projects")
    assert drill.name == "projects"  # the key secret still has to be this filer's
    assert [j.path for j in drill.junctions] == ["/.drill/projects/projects", "/.drill/projects/scratch"]
    assert [j.policy for j in drill.junctions] == ["", "drill-projects-lab"]
    assert drill.export_policies == (ExportPolicyRecord("vs", "drill-projects-lab", (RULE,)),)  # rules as captured
    assert [(j.subdir, j.permissions) for j in drill.junctions] == [("p", ""), ("s", "modebits")]
    assert drill_filer_name("projects") == "drill-projects" and junction_prefix("projects") == "/.drill/projects"


def test_scratch_containers_are_valid_reserved_and_apart_for_two_filers_of_one_name() -> None:
    drill_id = "20270115T080000Z-1a2b3c4d"
    one = scratch_container("primary", "Projects_2025.final", drill_id)
    other = scratch_container("secondary", "Projects_2025.final", drill_id)
    for name in (one, other):
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", name), name
        assert name.startswith("drill-projects-2025-final-") and name.endswith("-1a2b3c4d")
    assert one != other and not one.startswith(scratch_prefix("secondary", "Projects_2025.final"))
    long = scratch_container("c", "x" * 64, drill_id)
    assert len(long) <= 63


def test_the_catalog_rules_a_drill_out_with_the_reason_the_route_answers() -> None:
    state = FilerState.new(("fs-a", "fs-b"))
    assert drill_blocker(state, None).reason is Reason.NO_VERIFIED_BACKUP
    a = state.generations["a"]
    a.status, a.backup_id, a.manifest = WRITING, "w", None
    assert drill_blocker(state, "w").reason is Reason.NOT_VERIFIED
    assert drill_blocker(state, "typo").reason is Reason.UNKNOWN_BACKUP
    a.status, a.manifest = VERIFIED, "w-final"
    assert drill_blocker(state, None) is None and drill_blocker(state, "w") is None
    a.status = ATTACHED
    assert drill_blocker(state, "w").reason is Reason.NOT_VERIFIED
    state.failed_over = {"target_cluster": "dr"}
    assert drill_blocker(state, None).reason is Reason.FAILED_OVER


def test_the_consistent_point_is_the_removal_else_the_start_which_only_makes_the_backup_look_older() -> None:
    entry = {"started_at": "2027-01-01T00:00:00Z", "consistent_at": "2027-01-01T00:05:00Z"}
    assert consistent_point(entry, "b") == ("2027-01-01T00:05:00Z", "the filer's removal for the backup")
    at, basis = consistent_point({"started_at": "2027-01-01T00:00:00Z"}, "b")
    assert at == "2027-01-01T00:00:00Z" and "start" in basis


PATHS = ["/.drill/fs/data", "/.drill/fs/scratch"]


def answer(*files: dict, version: int = 1) -> bytes:
    return json.dumps({"version": version, "files": list(files)}).encode()


def ok(path: str, size: int = 10) -> dict:
    return {"path": path, "status": "ok", "bytes": size}


def test_the_probe_answer_passes_only_with_every_file_read_whole_under_the_drills_junctions() -> None:
    passed = judge(200, answer(ok("/.drill/fs/data/a"), ok("/.drill/fs/scratch/b", 5)), PATHS, 20)
    assert (passed.status, passed.files_checked, passed.files_ok, passed.bytes_read) == ("passed", 2, 2, 15)
    failed = judge(
        200,
        answer(
            ok("/.drill/fs/data/a"),
            {"path": "/.drill/fs/data/b", "status": "error", "error": "I/O error: tag mismatch"},
        ),
        PATHS,
        20,
    )
    assert failed.status == "failed" and failed.files_ok == 1 and "tag mismatch" in failed.problems[0]
    cases = {
        "outside the junctions": judge(200, answer(ok("/demo/projects/a")), PATHS, 20),
        "prefix trick": judge(200, answer(ok("/.drill/fs/database/a")), PATHS, 20),
        "no files": judge(200, answer(), PATHS, 20),
        "no byte count": judge(200, answer({"path": "/.drill/fs/data/a", "status": "ok"}), PATHS, 20),
        "more than asked": judge(200, answer(ok("/.drill/fs/data/a"), ok("/.drill/fs/data/b")), PATHS, 1),
        "wrong version": judge(200, answer(ok("/.drill/fs/data/a"), version=2), PATHS, 20),
        "not JSON": judge(200, b"<html>", PATHS, 20),
        "HTTP error": judge(401, b'{"error": "bad key"}', PATHS, 20),
        "bool bytes": judge(200, answer({"path": "/.drill/fs/data/a", "status": "ok", "bytes": True}), PATHS, 20),
    }
    for why, result in cases.items():
        assert result.status == "failed", why
        assert result.detail, why


def test_crafted_drill_payloads_are_refused_naming_the_problem() -> None:
    run = {"cluster": "c", "filer": "f", "instance_id": "drill-c-f", "run_id": "20270115T080000Z-1a2b3c4d"}
    ref = {"run": run, "drill_id": "20270115T080000Z-1a2b3c4d"}
    assert decode(DrillRef, ref) == DrillRef(
        RunRef("c", "f", "drill-c-f", "20270115T080000Z-1a2b3c4d"), "20270115T080000Z-1a2b3c4d"
    )
    start = {"cluster": "c", "filer": "f", "format": INPUT_FORMAT}
    with pytest.raises(InputRefused, match="not a drill id"):
        decode(DrillRef, {**ref, "drill_id": "../../state"})
    with pytest.raises(InputRefused, match="not a drill id"):
        decode(DrillRef, {**ref, "drill_id": "20270115T080000Z-1a2b3c4d\n"})  # fullmatch, not match
    with pytest.raises(InputRefused, match="not a name"):
        decode(DrillRef, {**ref, "run": {**run, "filer": "../x"}})
    with pytest.raises(InputRefused, match="unknown field"):
        decode(DrillRef, {**ref, "container": "vfxtdr-catalog"})
    with pytest.raises(InputRefused, match="an earlier version"):
        decode(DrillStep, {"ref": ref, "bucket": "acct/prod"})
    with pytest.raises(InputRefused, match="unknown field"):
        decode(DrillRequest, {**start, "scratch": "prod-a"})
    with pytest.raises(InputRefused, match="reason"):
        decode(DrillRequest, {**start, "reason": "because"})
    with pytest.raises(InputRefused, match="without a format"):
        decode(DrillRequest, {"cluster": "c", "filer": "f"})
    with pytest.raises(InputRefused, match="unknown field"):
        decode(DrillBegin, {"ref": ref, "generation": "a"})
    with pytest.raises(InputRefused, match="unknown field"):
        decode(DrillFinish, {"ref": ref, "status": "passed", "readback": {"status": "passed"}})
