"""Break glass: run the failover workflow's activities from a workstation when the app itself cannot run.

`python -m tools.breakglass failover CLUSTER FILER [--target DR] [--backup-id ID] [--verify sample|full|none]
[--plan FILE]`

The same activity functions the failover orchestrator calls (orchestrators/failover.py), in the same order and
with the same inputs (references: the run's plan snapshot is recorded by `begin_run`, everything else is resolved
from it and the catalog), under the operator's own Azure credentials (DefaultAzureCredential: `az login`),
recording to the same catalog, and fencing the primary filer first as the app does (the split-brain fence:
README.md). Before anything is written it asks the catalog what the failover route asks, and
more: no verified backup, a backup attached to another cluster, the filer already failed over, a backup run in
progress. It prints each step and the mount addresses and junctions; on failure, the error and exit status 1
(2: refused, the filer's catalog state unchanged; 3: the plan is invalid).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TextIO

from activities import failover as failover_acts
from activities import readd as attach_acts
from activities import runs as runs_acts
from orchestrators.durable_helpers import ATTACH_DEADLINE, ATTACH_MAX_FAILURES
from shared.catalog.store import FilerState
from shared.core import clock
from shared.core.codec import plain
from shared.core.errors import CatalogConflict, DrError, FailoverFailed, InputRefused
from shared.plan.load import ENV_PLAN, ENV_PLAN_FILE, Plan, PlanError
from shared.runbook import services
from shared.runbook.failover import failover_blocker
from shared.runbook.failover_payloads import (
    VERIFY_MODES,
    BackupPageCheck,
    BackupPageRef,
    BackupRef,
    ChooseBackup,
    FailoverChoice,
    FailoverRecordRef,
    FailoverResult,
    FailoverTimes,
    FenceOutcome,
    SampleCheck,
)
from shared.runbook.payloads import AttachRef, AttachStep, RunStarted, failover_instance_id
from shared.runbook.refs import RunRef, RunStart
from shared.runbook.runs import catalog_of

EXIT_FAILED, EXIT_REFUSED, EXIT_PLAN = 1, 2, 3


@dataclass(frozen=True)
class Options:
    cluster: str
    filer: str
    target: str | None = None
    backup_id: str | None = None
    verify: str = "sample"  # the route's modes (shared/runbook/failover_payloads.py:VERIFY_MODES)
    despite_running: str | None = None  # the backup id of a run the operator knows can never finish


class Refused(DrError):
    """The catalog or the plan rules the failover out: nothing was written."""

    kind = "refused"


def _call(fn: Callable[[Any], Any], payload: Any) -> Any:
    """An activity as the host calls it: its input as plain JSON (references only), its typed result back."""
    return fn(plain(payload))


def preflight(plan: Plan, opts: Options) -> str:
    """The DR cluster, when the plan and the catalog allow this failover; Refused naming why not."""
    try:
        filer = plan.filer(opts.cluster, opts.filer)
    except LookupError as exc:
        raise Refused(
            str(exc).strip("'\""),
            filer=f"{opts.cluster}/{opts.filer}",
            state="nothing changed",
            action="name a cluster and filer of the plan",
        ) from None
    target = opts.target or filer.failover_cluster
    if not target:
        raise Refused(
            "the plan names no failover_cluster for the filer",
            filer=filer.key,
            state="nothing changed",
            action="pass --target <dr cluster>",
        )
    if target not in {c.name for c in plan.dr_clusters}:
        raise Refused(
            f"target {target!r} is not one of the plan's dr_clusters",
            filer=filer.key,
            state="nothing changed",
            action="pass a dr_clusters name with --target",
        )
    with catalog_of(plan, filer) as catalog:
        state: FilerState = catalog.load(filer)
    if state.failed_over:
        mark = state.failed_over
        raise Refused(
            f"the filer already failed over to cluster {mark.get('target_cluster')} (backup "
            f"{mark.get('backup_id')}, at {mark.get('at')})",
            filer=filer.key,
            state="nothing changed",
            action="clients mount it there now; fail back before failing over again",
        )
    run = state.last_run or {}
    if run.get("status") == "running" and run.get("backup_id") != opts.despite_running:
        raise Refused(
            f"backup run {run.get('backup_id')} ({run.get('instance_id')}) is in progress per the catalog",
            filer=filer.key,
            state="nothing changed",
            action="if the app runs, fail over through its route (it cancels the backup first); if "
            "the app's region is lost and that run can never finish, pass --despite-running "
            f"{run.get('backup_id')}",
        )
    blocked = failover_blocker(state, opts.backup_id, target)
    if blocked is not None:
        raise Refused(
            blocked.message,
            filer=filer.key,
            state="nothing changed",
            action="choose a verified backup (see the catalog's backups, or GET /api/filers)",
        )
    return target


def _check(ref: RunRef, choice: FailoverChoice, mode: str, say: Callable[[str], None]) -> int:
    """The check the orchestrator makes (orchestrators/failover.py:check_backup); blobs checked. A sample needs
    the manifest digest the backup recorded: without one, the full check."""
    if mode == "none":
        return 0
    if mode == "sample" and choice.digest:
        say("verifying: the manifest against its recorded digest and a sample of blobs")
        sample: SampleCheck = _call(failover_acts.verify_backup_sample, BackupRef(ref, choice.backup_id))
        if sample.problems:
            raise FailoverFailed(
                f"backup {choice.backup_id} failed its sample check: {'; '.join(sample.problems[:3])}",
                filer=ref.key,
                state="nothing attached; the catalog is unchanged",
                action="check it with --verify full, fail over to the other generation "
                "(--backup-id), or investigate the backup account",
            )
        say(f"verifying: sample passed ({sample.checked} blobs)")
        return sample.checked
    if mode == "sample":
        say("verifying: no manifest digest on record, so every page")
    return _verify_pages(ref, choice, say)


def _verify_pages(ref: RunRef, choice: FailoverChoice, say: Callable[[str], None]) -> int:
    """Every manifest page against the backup container, one at a time (orchestrators/failover_verify.py)."""
    page, checked = 0, 0
    while True:
        check: BackupPageCheck = _call(failover_acts.verify_backup_page, BackupPageRef(ref, choice.backup_id, page))
        checked += check.checked
        if check.mismatches or check.missing:
            raise FailoverFailed(
                f"backup {choice.backup_id} does not match its manifest on page {check.page}: "
                f"{check.mismatches} different, {check.missing} missing ({'; '.join(check.problems[:3])})",
                filer=ref.key,
                state="nothing attached; the catalog is unchanged",
                action="fail over to the other generation (--backup-id) or investigate the backup account",
            )
        say(f"verifying: page {page} checked ({checked} blobs so far)")
        if check.last:
            return checked
        page += 1


def _attach(
    ref: RunRef, backup_id: str, poll: float, sleep: Callable[[float], None], say: Callable[[str], None]
) -> AttachStep:
    """attach_step until the filer serves: the orchestrator's bounds (deadline, failures in a row, backoff)."""
    request = AttachRef(ref, backup_id=backup_id)
    waited, failures = 0.0, 0
    deadline = ATTACH_DEADLINE.total_seconds()
    while True:
        try:
            step: AttachStep = _call(attach_acts.attach_step, request)
            failures = 0
        except Exception as err:  # the orchestrator's rule: retry, bounded, then give up
            failures += 1
            reason = str(err).split("\n", 1)[0].strip()
            if failures >= ATTACH_MAX_FAILURES or waited >= deadline:
                raise FailoverFailed(
                    f"attach failed {failures} time(s) in a row: {reason}",
                    filer=ref.key,
                    state="the core filer is not attached",
                    action="check the DR cluster, then run break glass again (it resumes)",
                ) from None
            say(f"attach: retrying after a failure ({reason[:200]})")
            pause = poll * (2**failures)
            sleep(pause)
            waited += pause
            continue
        say(f"attach: {step.phase}" + (f" ({step.detail})" if step.detail and not step.done else ""))
        if step.done:
            return step
        if waited >= deadline:
            raise FailoverFailed(
                f"attach did not finish within {ATTACH_DEADLINE}; phase {step.phase}: {step.detail}",
                filer=ref.key,
                state=f"attach stopped in phase {step.phase}",
                action="check the DR cluster's activities, then run break glass again",
            )
        request = replace(request, activity_ids=step.activity_ids)
        sleep(poll)
        waited += poll


def failover(opts: Options, *, out: TextIO = sys.stdout, sleep: Callable[[float], None] = time.sleep) -> FailoverResult:
    """The failover workflow's activities in the orchestrator's order; raises DrError (Refused: nothing changed)."""

    def say(line: str) -> None:
        print(f"[{clock.to_iso(clock.from_epoch(services.now()))}] {line}", file=out, flush=True)

    plan = services.load_plan()
    target = preflight(plan, opts)
    say(f"catalog allows failing {opts.cluster}/{opts.filer} over to {target}")
    started = clock.from_epoch(services.now())
    phases = _Phases()
    ref = RunRef(
        opts.cluster,
        opts.filer,
        failover_instance_id(opts.cluster, opts.filer),
        f"{clock.to_iso_basic(started)}-{uuid.uuid4().hex[:8]}",
    )
    begun: RunStarted = _call(runs_acts.begin_run, RunStart(ref, "failover", target_cluster=target))
    say(f"run {ref.run_id} recorded its plan snapshot ({ref.instance_id})")
    # The fence first (recorded in the catalog, then client access suspended on the primary cluster; pending when
    # that cluster cannot be reached: the app's timer applies it before it starts anything there).
    fence: FenceOutcome = _call(failover_acts.fence_primary, ref)
    say(f"primary filer fenced: {fence.how or 'not fenced'} ({fence.detail})")
    choice: FailoverChoice = _call(failover_acts.choose_backup, ChooseBackup(ref, opts.backup_id))
    phases.done("choose_s")
    say(f"chosen: backup {choice.backup_id} in container {choice.container} (generation {choice.generation})")
    checked = _check(ref, choice, opts.verify, say)
    phases.done("verify_s")
    chosen = BackupRef(ref, choice.backup_id)
    _call(failover_acts.mark_attached, chosen)
    say(f"catalog: backup {choice.backup_id} marked attached to {choice.target_cluster}")
    cluster = begun.target_cluster or begun.context.cluster
    attached = _attach(ref, choice.backup_id, float(cluster.poll_seconds), sleep, say)
    phases.done("attach_s")
    serving = clock.from_epoch(services.now())
    times: FailoverTimes = _call(
        failover_acts.record_failover,
        FailoverRecordRef(
            ref,
            choice.backup_id,
            requested_at=clock.to_iso(started),
            serving_at=clock.to_iso(serving),
            phases=phases.items(),
        ),
    )
    say(
        f"catalog: failover of {ref.key} to {choice.target_cluster} recorded (RPO {times.rpo_s} s, RTO {times.rto_s} s)"
    )
    return FailoverResult(
        cluster=opts.cluster,
        filer=opts.filer,
        target_cluster=choice.target_cluster,
        backup_id=choice.backup_id,
        container=choice.container,
        mounts=attached.mounts,
        junctions=choice.junctions,
        verify=opts.verify,
        blobs_checked=checked,
        rpo_s=times.rpo_s,
        rto_s=times.rto_s,
        consistent_at=times.consistent_at,
        phases=times.phases,
    )


class _Phases:
    """Seconds each phase took (from the end of the one before), as the orchestrator records them."""

    def __init__(self) -> None:
        self._mark = services.now()
        self._seconds: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = services.now()
        self._seconds[name] = round(now - self._mark, 3)
        self._mark = now

    def items(self) -> tuple[tuple[str, float], ...]:
        return tuple(self._seconds.items())


def _report(result: FailoverResult, out: TextIO) -> None:
    print(
        f"SERVING {result.cluster}/{result.filer} on cluster {result.target_cluster} from backup "
        f"{result.backup_id} (container {result.container})",
        file=out,
    )
    for mount in result.mounts:
        print(
            f"  mount: vserver {mount.vserver} addresses {', '.join(mount.addresses)} paths {', '.join(mount.paths)}",
            file=out,
        )
    print(f"  junctions: {', '.join(result.junctions)}", file=out)
    print(
        f"  checked: {result.verify} ({result.blobs_checked} blobs); RPO {result.rpo_s} s (consistent at "
        f"{result.consistent_at}); RTO {result.rto_s} s",
        file=out,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.breakglass", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fo = sub.add_parser("failover", help="attach a verified backup of a core filer to a DR cluster")
    fo.add_argument("cluster", help="the plan's cluster the filer belongs to")
    fo.add_argument("filer", help="the core filer's name in the plan")
    fo.add_argument("--target", help="a dr_clusters name (default: the filer's failover_cluster)")
    fo.add_argument("--backup-id", help="the backup to attach (default: the newest verified one)")
    fo.add_argument(
        "--verify",
        choices=VERIFY_MODES,
        default="sample",
        help="the check before attaching, as the route's verify: sample (the manifest against its "
        "recorded digest and a sample of blobs; default), full (every blob), none",
    )
    fo.add_argument("--plan", help="the plan file (default: the VFXTDR_PLAN or VFXTDR_PLAN_FILE setting)")
    fo.add_argument(
        "--despite-running",
        metavar="BACKUP_ID",
        help="fail over although the catalog shows this backup run in progress (its app is gone)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    args = _parser().parse_args(argv)
    if args.plan:
        os.environ.pop(ENV_PLAN, None)
        os.environ[ENV_PLAN_FILE] = args.plan
    opts = Options(
        cluster=args.cluster,
        filer=args.filer,
        target=args.target,
        backup_id=args.backup_id,
        verify=args.verify,
        despite_running=args.despite_running,
    )
    try:
        result = failover(opts, out=out, sleep=sleep)
    except PlanError as exc:
        print(f"the plan is invalid:\n{exc}", file=err)
        return EXIT_PLAN
    except (Refused, InputRefused, CatalogConflict) as exc:
        print(f"REFUSED: {exc}", file=err)
        return EXIT_REFUSED
    except DrError as exc:
        print(f"FAILED: {exc}", file=err)
        return EXIT_FAILED
    except Exception as exc:  # Azure, Key Vault, cluster: the first line names the problem
        first = str(exc).splitlines()[0][:500] if str(exc) else ""
        print(
            f"FAILED: {type(exc).__name__}: {first} [the catalog says how far it got: run break glass "
            "again to resume, it picks up an attach this run started]",
            file=err,
        )
        return EXIT_FAILED
    _report(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
