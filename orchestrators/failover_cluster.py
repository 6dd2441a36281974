"""Whole-cluster failover (a regional outage): every protected filer of a cluster fails over, each as its own
failover run under its usual instance id (`failover-{cluster}-{filer}`: the one-run-per-filer rules hold),
at most PARALLEL at a time. One filer's failure does not stop the others; the result names it, and holds one
entry per filer and the overall RTO (request to the last filer serving).
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import failover as failover_acts
from orchestrators.durable_helpers import Gen, RunStatus, activity, failed, now, reason, run_input, seconds_since
from shared.core.codec import plain
from shared.core.errors import InputRefused
from shared.runbook.failover_payloads import ClusterFailoverRequest, ClusterName, FailoverRequest, FilerNames
from shared.runbook.payloads import FAILOVER, cluster_failover_instance_id, failover_instance_id

bp = df.Blueprint()

PARALLEL = 4  # filers failing over at once: each drives its own attach on the DR cluster


@bp.orchestration_trigger(context_name="context")
def cluster_failover_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, ClusterFailoverRequest)
    expected = cluster_failover_instance_id(req.cluster)
    if context.instance_id != expected:
        raise InputRefused(
            f"instance {context.instance_id[:200]!r} is not the whole-cluster failover of "
            f"{req.cluster[:200]}: that is {expected[:200]!r}"
        )
    started = now(context)
    status = RunStatus(context, "cluster_failover", req.cluster, started)
    filers: FilerNames = yield activity(context, failover_acts.cluster_filers, ClusterName(req.cluster))
    queue = list(filers.names)
    running: dict[Any, str] = {}
    results: dict[str, dict[str, Any]] = {}
    status.step("failing_over", filers=len(queue))
    while queue or running:
        while queue and len(running) < PARALLEL:
            name = queue.pop(0)
            request = FailoverRequest(
                cluster=req.cluster, filer=name, target_cluster=req.target_cluster, verify=req.verify
            )
            task = context.call_sub_orchestrator(FAILOVER, plain(request), failover_instance_id(req.cluster, name))
            running[task] = name
        done = yield context.task_any(list(running))
        name = running.pop(done)
        err = failed(done)
        results[name] = (
            {"filer": name, "status": "failed", "error": reason(err)[:1000]}
            if err is not None
            else {"filer": name, "status": "serving", **_summary(done.result)}
        )
        status.update(
            serving=sum(r["status"] == "serving" for r in results.values()),
            failed=sum(r["status"] == "failed" for r in results.values()),
        )
    ordered = [results[n] for n in filers.names]
    failures = [r["filer"] for r in ordered if r["status"] == "failed"]
    overall = "serving" if not failures else "partial" if len(failures) < len(ordered) else "failed"
    status.step(overall, failed=failures)
    return {
        "cluster": req.cluster,
        "target_cluster": req.target_cluster,
        "verify": req.verify,
        "status": overall,
        "rto_s": seconds_since(context, started),
        "filers": ordered,
        "failed": failures,
    }


def _summary(result: Any) -> dict[str, Any]:
    data = result if isinstance(result, dict) else {}
    return {k: data.get(k) for k in ("target_cluster", "backup_id", "rpo_s", "rto_s", "mounts")}
