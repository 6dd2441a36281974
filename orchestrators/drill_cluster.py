"""Drill every protected filer of a cluster (`drills-{cluster}`): each filer its own drill under its usual instance
id `drill-{cluster}-{filer}` (so one run per filer still holds), a bounded number at a time, one result per filer.
One filer's failure never stops the others; it is named in the result with its error. The overall time is the
run's output (`overall_s`), beside each filer's RTO and the backup age it rehearsed.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities import drill as drill_acts
from orchestrators.durable_helpers import Gen, RunStatus, activity, failed, now, reason, run_input, seconds_since
from shared.core.clock import to_iso
from shared.core.codec import plain
from shared.core.errors import InputRefused
from shared.runbook.drill_payloads import (
    DRILL,
    DrillClusterPlan,
    DrillClusterRequest,
    DrillFilers,
    DrillRequest,
    drill_cluster_instance_id,
    drill_instance_id,
)

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def drill_cluster_orchestrator(context: df.DurableOrchestrationContext) -> Gen[Any]:
    req = run_input(context, DrillClusterRequest)
    own = drill_cluster_instance_id(req.cluster)
    if context.instance_id != own:
        raise InputRefused(
            f"a drill of cluster {req.cluster} runs only as {own}, not {context.instance_id[:200]}",
            filer=f"{req.cluster}/*",
        )
    started = now(context)
    status = RunStatus(context, "drills", req.cluster, started)
    status.step("planning")
    plan: DrillClusterPlan = yield activity(
        context, drill_acts.drill_cluster_filers, DrillFilers(req.cluster, req.filers)
    )
    results: dict[str, dict[str, Any]] = {
        name: {"filer": name, "status": "skipped", "error": why} for name, why in req.skipped
    }
    waiting = list(plan.filers)
    running: list[tuple[str, Any]] = []
    while waiting or running:
        while waiting and len(running) < plan.parallel:
            name = waiting.pop(0)
            task = context.call_sub_orchestrator(
                DRILL, plain(DrillRequest(req.cluster, name, reason="cluster")), drill_instance_id(req.cluster, name)
            )
            running.append((name, task))
        status.step("drilling", running=[n for n, _ in running], waiting=len(waiting), done=len(results))
        winner = yield context.task_any([t for _, t in running])
        name = next(n for n, t in running if t == winner)
        running = [(n, t) for n, t in running if t != winner]
        results[name] = _result(req.cluster, name, winner)
    rows = [results[n] for n in sorted(results)]
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in sorted({r["status"] for r in rows})}
    overall = seconds_since(context, started)
    status.step("done", overall_s=overall, **counts)
    return {
        "cluster": req.cluster,
        "started": to_iso(started),
        "finished": to_iso(now(context)),
        "overall_s": overall,
        "counts": counts,
        "filers": rows,
    }


def _result(cluster: str, name: str, task: Any) -> dict[str, Any]:
    """One filer's line: its drill's outcome, or the error it failed with."""
    instance = drill_instance_id(cluster, name)
    err = failed(task)
    if err is not None:
        return {"filer": name, "instance_id": instance, "status": "failed", "error": reason(err)[:1000]}
    out = task.result if isinstance(task.result, dict) else {}
    return {
        "filer": name,
        "instance_id": instance,
        "status": out.get("status", "failed"),
        "drill_id": out.get("drill_id"),
        "backup_id": out.get("backup_id"),
        "rto_s": out.get("rto_s"),
        "rto_without_copy_s": out.get("rto_without_copy_s"),
        "rpo_s": out.get("rpo_s"),
        "files_checked": out.get("files_checked"),
        "error": out.get("error"),
    }
