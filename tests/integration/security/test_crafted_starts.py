"""Every orchestration registered in function_app, started through the Durable start webhook with the system key
taken from a status URL the app handed out (what anyone holding such a URL can do), with crafted inputs: plan
parts pointing at a listener that counts connections, the earlier input format, a copy pass aimed at the verified
generation in mirror mode with deletes, unknown clusters and filers, instance ids that are not the workflow's,
garbage. Each run fails with an error naming what it refused; nothing outside the plan is contacted; the verified
backup (listing, ETags, metadata), the catalog and the cluster are exactly as they were."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from shared.runbook.payloads import backup_instance_id, failover_instance_id, readd_instance_id
from shared.runbook.refs import INPUT_FORMAT
from shared.runbook.run_ids import copy_run_id
from tests.fixtures.durable import http_call
from tests.fixtures.secrets import assert_no_leak
from tests.fixtures.trap import Trap, connected_once
from tests.fixtures.workflow import AppEnv
from tests.integration.security.test_crafted_activity_inputs import trapped


def backup_view(env: AppEnv) -> dict[str, Any]:
    """Everything that identifies a generation's blobs: name, ETag, size, MD5, properties, metadata."""
    out: dict[str, Any] = {}
    for gen in ("a", "b"):
        container = env.backup_container(gen)
        if not container.exists():
            out[gen] = None
            continue
        out[gen] = {
            b.name: (
                b.etag,
                b.size,
                bytes(b.content_settings.content_md5 or b""),
                b.content_settings.content_type,
                dict(b.metadata or {}),
            )
            for b in container.list_blobs(include=["metadata"])
        }
    return out


def world(env: AppEnv) -> tuple[Any, ...]:
    catalog = env.container("dr", env.plan.catalog_container)
    documents = {b.name: b.etag for b in catalog.list_blobs()}  # any write changes an ETag
    return (
        backup_view(env),
        documents,
        env.client().filer_state(env.filer_name),
        env.client().capture_core_filer(env.filer_name),
        sorted(env.client("dr").list_core_filers()),
    )


def crafted_starts(env: AppEnv, trap: Trap, backup: dict[str, Any]) -> dict[str, list[tuple[str, Any, str]]]:
    """orchestrator -> [(instance id, input JSON, what the failure must say)]."""
    fs, bait = env.filer_name, trapped(env, trap)
    bid, rid, fid = (
        backup_instance_id("primary", fs),
        readd_instance_id("primary", fs),
        failover_instance_id("primary", fs),
    )
    child = copy_run_id(backup["id"], f"{backup['output']['backup_id']}-final")
    run = {"cluster": "primary", "filer": fs, "instance_id": backup["id"], "run_id": backup["output"]["backup_id"]}
    final = f"{run['run_id']}-final"
    ref = {"cluster": "primary", "filer": fs, "format": INPUT_FORMAT}
    common = [
        ("null", None, "not a"),
        ("text", "x", "not a"),
        ("list", [1], "not a"),
        ("empty", {}, "without a format"),
    ]
    return {
        "backup_orchestrator": [
            *common,
            (bid, {"cluster": "primary", "filer": fs}, "an earlier version"),
            (bid, {**ref, "context": bait["context"]}, "an earlier version"),
            (bid, {**ref, "keyvault_url": f"https://{trap.netloc}"}, "an earlier version"),
            (bid, {**ref, "endpoint": f"http://{trap.netloc}"}, "unknown field"),
            (bid, {**ref, "format": 1}, "reads format 2 only"),
            (bid, {**ref, "dry_run": True}, "a dry run is the backup route's own"),
            (bid, {**ref, "fail_over_to": "nope"}, "no DR cluster 'nope'"),
            ("backup-evil", ref, "'backup-evil' is not the backup run of"),
            (bid, {**ref, "filer": "nope"}, "no filer 'nope'"),
            ("backup-nope-x", {**ref, "cluster": "nope", "filer": "x"}, "no protected cluster 'nope'"),
        ],
        "copy_orchestrator": [
            *common,
            # An earlier version's pass: a mirror with deletes from an empty container into the verified one.
            (child, {"job": bait["job"], "filer": f"primary/{fs}"}, "an earlier version"),
            # Today's format, naming the finished backup and its final pass, but not started by it.
            (
                child,
                {"run": run, "job_id": final, "format": INPUT_FORMAT},
                "a copy pass runs only as the sub-orchestration",
            ),
            (
                "copy-evil",
                {"run": run, "job_id": final, "format": INPUT_FORMAT},
                "a copy pass runs only as the sub-orchestration",
            ),
            (child, {"run": run, "job_id": final, "format": INPUT_FORMAT, "job": bait["job"]}, "an earlier version"),
        ],
        "readd_orchestrator": [
            *common,
            (rid, {"cluster": "primary", "filer": fs}, "an earlier version"),
            (rid, {**ref, "record": {"bucket": "evil/x"}}, "an earlier version"),
            ("readd-evil", ref, "'readd-evil' is not the readd run of"),
            ("readd-primary-nope", {**ref, "filer": "nope"}, "no filer 'nope'"),
        ],
        "failover_orchestrator": [
            *common,
            (fid, {"cluster": "primary", "filer": fs}, "an earlier version"),
            (fid, {**ref, "target_cluster": "nope"}, "no DR cluster 'nope'"),
            (fid, {**ref, "choice": {"container": "evil"}}, "an earlier version"),
            (fid, {**ref, "target": {"management_address": trap.netloc}}, "unknown field"),
            ("failover-evil", ref, "'failover-evil' is not the failover run of"),
            (f"failover-primary-{fs}", {**ref, "verify": "most"}, "is not one of sample, full, none"),
        ],
        "failback_orchestrator": [
            *common,
            (f"failback~primary~{fs}", {"cluster": "primary", "filer": fs}, "an earlier version"),
            (f"failback~primary~{fs}", {**ref, "target_cluster": "dr"}, "an earlier version"),
            (f"failback~primary~{fs}", {**ref, "container": "evil"}, "unknown field"),
            (f"failback~primary~{fs}", ref, "only a filer that failed over is failed back"),
            ("failback-evil", ref, "'failback-evil' is not the failback run of"),
            ("failback~primary~nope", {**ref, "filer": "nope"}, "no filer 'nope'"),
        ],
        "cluster_failover_orchestrator": [
            *common,
            ("cluster-failover~primary", {"cluster": "primary"}, "without a format"),
            (
                "failover-cluster-evil",
                {"cluster": "primary", "format": INPUT_FORMAT},
                "is not the whole-cluster failover of primary",
            ),
            (
                "cluster-failover~primary",
                {"cluster": "primary", "format": INPUT_FORMAT, "verify": "most"},
                "is not one of sample, full, none",
            ),
            (
                "cluster-failover~primary",
                {"cluster": "primary", "format": INPUT_FORMAT, "target": {"management_address": trap.netloc}},
                "unknown field",
            ),
            ("cluster-failover~nope", {"cluster": "nope", "format": INPUT_FORMAT}, "no protected cluster 'nope'"),
        ],
        "failover_verify_orchestrator": [
            *common,
            # Not started by a failover run: refused before any page is read.
            (
                f"failover-primary-{fs}-verify",
                {"run": run, "backup_id": run["run_id"], "format": INPUT_FORMAT},
                "a full check runs only as the sub-orchestration",
            ),
            (
                "verify-evil",
                {"run": run, "backup_id": run["run_id"], "format": INPUT_FORMAT},
                "a full check runs only as the sub-orchestration",
            ),
            (
                f"failover-primary-{fs}-verify",
                {"run": run, "backup_id": "b", "format": INPUT_FORMAT, "job": bait["job"]},
                "an earlier version",
            ),
        ],
        "drill_orchestrator": [
            *common,
            (f"drill~primary~{fs}", {"cluster": "primary", "filer": fs}, "an earlier version"),
            (f"drill~primary~{fs}", {**ref, "scratch": env.filer.backup.containers[0]}, "unknown field"),
            (f"drill~primary~{fs}", {**ref, "context": bait["context"]}, "an earlier version"),
            (f"drill~primary~{fs}", {**ref, "target": "primary"}, "no DR cluster 'primary'"),
            (f"drill~primary~{fs}", {**ref, "reason": "because"}, "is not one of"),
            ("drill~primary~nope", {**ref, "filer": "nope"}, "no filer 'nope'"),
            ("drill-evil", ref, "runs only as drill~primary~"),
            ("drill-evil", {**ref, "reason": "reconcile"}, "runs only as drill~primary~"),
        ],
        "drill_cluster_orchestrator": [
            *common,
            ("cluster-drill~primary", {"cluster": "primary", "filers": [fs]}, "an earlier version"),
            (
                "cluster-drill~primary",
                {"cluster": "primary", "filers": [fs, "elsewhere"], "format": INPUT_FORMAT},
                "does not protect",
            ),
            (
                "cluster-drill~primary",
                {"cluster": "primary", "filers": ["../x"], "format": INPUT_FORMAT},
                "is not a name",
            ),
            ("drills-evil", {"cluster": "primary", "filers": [fs], "format": INPUT_FORMAT}, "runs only as"),
        ],
    }


def test_crafted_starts_of_every_orchestration_fail_closed(app_env: AppEnv, durable_runner: Any, trap: Trap) -> None:
    import function_app
    from devstack.durable.functions import Registry

    env = app_env
    runner = durable_runner(function_app.app, clock=env.clock)
    env.write("/data/precious.bin", b"the only other copy" * 500)
    env.flush()
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    started = reply.json()
    backup = runner.wait_for(started["id"], timeout=240)
    assert backup["runtimeStatus"] == "Completed" and backup["output"]["status"] == "verified", backup
    # The app hands out no Durable webhook URL (its 202 names its own /api/runs/{id}); the system key can
    # still leak some other way (the portal, a log, a copied host key): the attacker here holds it.
    assert "code=" not in reply.body.decode() and runner.system_key not in reply.body.decode()
    key = runner.system_key
    webhook = f"{runner.base_url}/runtime/webhooks/durabletask/orchestrators"

    cases = crafted_starts(env, trap, {"id": started["id"], "output": backup["output"]})
    assert set(cases) == set(Registry.load(function_app.app).orchestrators), "every orchestration needs cases"
    before = world(env)
    assert before[0][backup["output"]["generation"]], "the verified backup holds blobs"
    assert connected_once(trap)
    baseline = trap.connections
    for name, starts in cases.items():
        for given, value, problem in starts:
            instance_id = given if "-" in given or "~" in given else f"crafted-{name}-{given}"
            answer = http_call(
                "POST", f"{webhook}/{name}/{quote(instance_id, safe='')}?code={key}", raw=json.dumps(value).encode()
            )
            assert answer.status == 202, (name, instance_id, answer.body)
            status = runner.wait_for(instance_id, timeout=60)
            output = str(status.get("output"))
            assert status["runtimeStatus"] == "Failed", (name, instance_id, status)
            assert problem in output, (name, instance_id, problem, output)

    assert trap.connections == baseline, "a crafted start made the app connect outside the plan"
    assert world(env) == before
    assert_no_leak(env, runner)
