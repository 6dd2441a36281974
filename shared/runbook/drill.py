"""Drills' catalog side: which backup a drill rehearses, its pinned generation, names, and the drill record.

A drill copies a verified backup into a scratch container of the backup account, attaches the copy to a DR
cluster under names that cannot collide with production, reads files back, records the RTO and the backup's
age, and cleans up. Its record is `filers/<cluster>/<filer>/drills/<drill_id>.json` in the catalog: every
drill activity resolves what it acts on from the run's plan snapshot (begin_run) and that record, never from its
input.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from shared.avere.records import ExportPolicyRecord, FilerRecord, JunctionRecord
from shared.azure.keyvault import SecretRef
from shared.catalog.generations import pin_generation, unpin
from shared.catalog.store import VERIFIED, Catalog, FilerState, filer_prefix
from shared.core.clock import parse_iso
from shared.core.codec import JsonRecord, json_options
from shared.core.errors import CatalogConflict, InputRefused
from shared.plan.load import Cluster, Filer, Plan, UnknownClusterError
from shared.runbook import services, signals
from shared.runbook.blockers import Blocker, Reason
from shared.runbook.copy import manifest_index
from shared.runbook.drill_payloads import (
    DrillBegin,
    DrillChoice,
    DrillCleaned,
    DrillClusterPlan,
    DrillFilers,
    DrillFinish,
    DrillRef,
    StaleDrill,
)
from shared.runbook.payloads import RunContext
from shared.runbook.refs import RunRef
from shared.runbook.runs import RunSnapshot, load_run, open_run_catalog

log = logging.getLogger("vfxtdr.drill")

SCHEMA = 1
PREFIX = "drill-"  # of scratch containers, drill filers and their export policies (shared.plan.rules reserves it)
RUNNING, PASSED, UNVERIFIED, FAILED, CANCELLED = "running", "passed", "unverified", "failed", "cancelled"
OUTCOMES = (PASSED, UNVERIFIED, FAILED, CANCELLED)
MAX_PHASES = 20


# --- names (pure) ------------------------------------------------------------------------------------------------
def drill_filer_name(filer: str) -> str:
    """The drill's core filer on the DR cluster: never the production filer's name."""
    return f"{PREFIX}{filer}"


def junction_prefix(filer: str) -> str:
    """Every junction of a drill lies under this path, apart from the namespace clients of production use."""
    return f"/.drill/{filer}"


def drill_policy(filer: str, policy: str) -> str:
    """A drill's copy of an export policy: the captured rules under a name production never uses."""
    return f"{PREFIX}{filer}-{policy}"


def scratch_prefix(cluster: str, filer: str) -> str:
    """The start of every scratch container of this filer's drills (a hash of the filer key keeps two filers of
    the same name on different clusters apart)."""
    base = re.sub(r"[^a-z0-9]+", "-", filer.lower()).strip("-")[:30].rstrip("-") or "filer"
    digest = hashlib.sha256(f"{cluster}/{filer}".encode()).hexdigest()[:8]
    return f"{PREFIX}{base}-{digest}-"


def scratch_container(cluster: str, filer: str, drill_id: str) -> str:
    return scratch_prefix(cluster, filer) + drill_id[-8:]


def drill_record_of(record: FilerRecord, filer: str) -> FilerRecord:
    """The captured record as the drill attaches it: junctions under the drill prefix, drill-named policies."""
    prefix = junction_prefix(filer)

    def junction(j: JunctionRecord) -> JunctionRecord:
        return replace(j, path=prefix + j.path, policy=drill_policy(filer, j.policy) if j.policy else "")

    return replace(
        record,
        junctions=tuple(junction(j) for j in record.junctions),
        export_policies=tuple(
            ExportPolicyRecord(p.vserver, drill_policy(filer, p.name), p.rules) for p in record.export_policies
        ),
    )


# --- the record ------------------------------------------------------------------------------------------------
def drill_path(cluster: str, filer: str, drill_id: str) -> str:
    return f"{filer_prefix(cluster, filer)}drills/{drill_id}.json"


def drills_prefix(cluster: str, filer: str) -> str:
    return f"{filer_prefix(cluster, filer)}drills/"


_DRILL_RECORD = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}\.json$")


def copy_state_prefix(cluster: str, filer: str, drill_id: str) -> str:
    """Where the scratch copy keeps its page state and manifest (deleted with the scratch container)."""
    return f"{drills_prefix(cluster, filer)}{drill_id}/copy/"


@dataclass
class DrillRecord(JsonRecord):
    """One drill as the catalog keeps it: what it rehearsed, where, how long each phase took, and its outcome."""

    SCHEMA: ClassVar[int | None] = SCHEMA

    drill_id: str
    instance_id: str
    cluster: str
    filer: str
    reason: str
    started_at: str
    status: str
    backup_id: str
    generation: str
    container: str
    backup_account: str
    target_cluster: str
    scratch: str
    drill_filer: str
    junction_prefix: str
    manifest: str
    consistent_at: str
    rpo_basis: str
    rpo_s: float
    key: SecretRef | None = None
    extras: bool = False
    phases: dict[str, float] = field(default_factory=dict)
    rto_s: float | None = None
    rto_without_copy_s: float | None = None
    readback: dict[str, Any] | None = None
    cleanup: dict[str, Any] | None = None
    error: str = ""
    finished_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, metadata=json_options(extra=True))


def read_record(catalog: Catalog, ref: DrillRef) -> DrillRecord | None:
    data = catalog.read_json(drill_path(ref.cluster, ref.filer, ref.drill_id))[0]
    return DrillRecord.from_json(data) if data is not None else None


def load_record(catalog: Catalog, ref: DrillRef) -> DrillRecord:
    """The drill's record; a drill id the catalog does not hold for this filer is refused."""
    record = read_record(catalog, ref)
    if record is None:
        raise CatalogConflict(
            f"the catalog holds no drill {ref.drill_id} of {ref.key}",
            filer=ref.key,
            state="nothing changed",
            action="start a drill with POST /api/drills/...",
        )
    return record


def write_record(catalog: Catalog, record: DrillRecord) -> None:
    catalog.write_json(drill_path(record.cluster, record.filer, record.drill_id), record.to_json())


def list_records(catalog: Catalog, filer: Filer) -> list[DrillRecord]:
    """Every drill record of the filer, oldest first."""
    prefix = drills_prefix(filer.cluster, filer.name)
    paths = [p for p in catalog.list_paths(prefix) if _DRILL_RECORD.match(p[len(prefix) :])]
    records = [DrillRecord.from_json(catalog.read_json(p)[0]) for p in paths]
    return sorted(records, key=lambda r: r.started_at)


# --- the run's snapshot and the catalog ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Where:
    """A drill's plan parts, as the run's plan snapshot (begin_run) holds them."""

    snapshot: RunSnapshot
    plan: Plan
    filer: Filer
    context: RunContext

    def catalog(self) -> Catalog:
        return open_run_catalog(self.snapshot)


def resolve(run: RunRef) -> Where:
    """The drill run's snapshot (InputRefused when the run is not a drill run on record)."""
    snapshot = load_run(run, "drill")
    plan = snapshot.plan
    return Where(
        snapshot=snapshot, plan=plan, filer=plan.filer(snapshot.cluster, snapshot.filer), context=snapshot.context()
    )


def drill_blocker(state: FilerState, backup_id: str | None) -> Blocker | None:
    """Why the catalog rules a drill out, or None. The route asks this before starting; `drill_begin` too."""
    if state.failed_over:
        return Blocker(
            Reason.FAILED_OVER,
            f"the filer failed over to cluster {state.failed_over.get('target_cluster')}: there is nothing to rehearse",
        )
    if backup_id:
        g = state.generation_of(backup_id)
        if g is None:
            return Blocker(
                Reason.UNKNOWN_BACKUP,
                f"backup {backup_id} is not held by either backup container (it "
                "was overwritten by a later run, or never existed)",
            )
        gen = state.generations[g]
        if gen.status != VERIFIED or not gen.manifest:
            return Blocker(Reason.NOT_VERIFIED, f"backup {backup_id} is {gen.status}, not verified")
        return None
    if not any(gen.status == VERIFIED and gen.manifest for gen in state.generations.values()):
        return Blocker(Reason.NO_VERIFIED_BACKUP, "the filer has no verified backup")
    return None


def _newest_complete(where: Where, state: FilerState) -> str | None:
    order = [g for g in (state.latest_verified, *state.generations) if g]
    for g in dict.fromkeys(order):
        gen = state.generations[g]
        if gen.status == VERIFIED and gen.manifest:
            index = manifest_index(where.context, gen.manifest)
            if index is not None and index.state == "complete":
                return g
    return None


def consistent_point(entry: dict[str, Any] | None, backup_id: str) -> tuple[str, str]:
    """(when the backup's data was consistent, how that is known): the moment the filer was removed for it; an
    entry written before that was recorded gives its start, which can only make the RPO look older."""
    if entry and isinstance(entry.get("consistent_at"), str):
        return entry["consistent_at"], "the filer's removal for the backup"
    if entry and isinstance(entry.get("started_at"), str):
        return entry["started_at"], "the backup's start (its entry records no removal time)"
    raise CatalogConflict(
        f"the catalog holds no entry for backup {backup_id}",
        filer="?",
        state="nothing changed",
        action="drill another backup",
    )


def begin(request: DrillBegin) -> DrillChoice:
    """Choose the backup (the named one, else the newest verified with a complete manifest), pin its generation
    (no backup writes it while the drill reads it), and write the drill record. Idempotent per drill id."""
    ref = request.ref
    where = resolve(ref.run)
    filer, plan, snapshot = where.filer, where.plan, where.snapshot
    if ref.drill_id != ref.run.run_id or snapshot.reason == "reconcile":
        raise InputRefused(
            f"drill {ref.drill_id} is not what run {ref.run.run_id} begins: a drill run begins its "
            "own drill (a reconcile run only cleans up)",
            filer=ref.key,
        )
    if snapshot.target_cluster is None:
        raise InputRefused(f"run {ref.run.run_id} resolved no DR cluster", filer=ref.key)
    target = plan.dr_cluster(snapshot.target_cluster)
    instance_id, started_at = ref.run.instance_id, snapshot.started_at
    with where.catalog() as catalog:
        existing = read_record(catalog, ref)
        if existing is not None:
            if existing.instance_id != instance_id or existing.status != RUNNING:
                raise CatalogConflict(
                    f"drill {ref.drill_id} of {ref.key} exists ({existing.status})",
                    filer=ref.key,
                    state="nothing changed",
                    action="start a new drill",
                )
            return _choice(where, existing, target)
        state = catalog.load(filer)
        blocked = drill_blocker(state, request.backup_id)
        if blocked is not None:
            raise CatalogConflict(
                blocked.message,
                filer=ref.key,
                state="nothing changed",
                action="back the filer up first, or name a verified backup",
            )
        g = state.generation_of(request.backup_id) if request.backup_id else _newest_complete(where, state)
        gen = state.generations.get(g) if g else None
        if g is None or gen is None or not gen.backup_id:
            raise CatalogConflict(
                "the filer has no verified backup with a complete manifest",
                filer=ref.key,
                state="nothing changed",
                action="back the filer up first",
            )
        backup_id = gen.backup_id
        captured = catalog.record(filer, backup_id)
        if captured is None:
            raise CatalogConflict(
                f"the catalog holds no filer record for backup {backup_id}",
                filer=ref.key,
                state="nothing changed",
                action="drill another backup",
            )
        if captured.encrypted and gen.key is None:
            raise CatalogConflict(
                f"backup {backup_id} is encrypted but the catalog names no key for it",
                filer=ref.key,
                state="nothing changed",
                action="drill another backup",
            )
        consistent_at, basis = consistent_point(catalog.backup(filer, backup_id), backup_id)
        manifest = gen.manifest or ""
        catalog.update(
            filer,
            lambda s: pin_generation(
                s, backup_id, drill_id=ref.drill_id, instance_id=instance_id, at=started_at, filer=ref.key
            ),
        )
        age = (parse_iso(started_at) - parse_iso(consistent_at)).total_seconds()
        record = DrillRecord(
            drill_id=ref.drill_id,
            instance_id=instance_id,
            cluster=ref.cluster,
            filer=ref.filer,
            reason=snapshot.reason,
            started_at=started_at,
            status=RUNNING,
            backup_id=backup_id,
            generation=g,
            container=gen.container,
            backup_account=filer.backup.account,
            target_cluster=target.name,
            scratch=scratch_container(ref.cluster, ref.filer, ref.drill_id),
            drill_filer=drill_filer_name(ref.filer),
            junction_prefix=junction_prefix(ref.filer),
            manifest=manifest,
            consistent_at=consistent_at,
            rpo_basis=basis,
            rpo_s=round(max(age, 0.0), 3),
            key=gen.key,
            extras=gen.extras,
        )
        write_record(catalog, record)
    log.info(
        "drill %s of %s: backup %s (generation %s, consistent at %s) onto cluster %s",
        ref.drill_id,
        ref.key,
        backup_id,
        g,
        consistent_at,
        target.name,
    )
    return _choice(where, record, target)


def _choice(where: Where, record: DrillRecord, target: Cluster) -> DrillChoice:
    probe, _ = where.plan.drill_probe(where.filer)
    return DrillChoice(
        drill_id=record.drill_id,
        backup_id=record.backup_id,
        generation=record.generation,
        container=record.container,
        scratch=record.scratch,
        target_cluster=record.target_cluster,
        drill_filer=record.drill_filer,
        junction_prefix=record.junction_prefix,
        probe=probe is not None,
        rpo_s=record.rpo_s,
        cluster_poll_seconds=target.poll_seconds,
    )


def stale_pin(run: RunRef) -> StaleDrill:
    """The drill a pin of the filer names (the timer starts a reconcile run only when no drill of the filer runs)."""
    where = resolve(run)
    if where.snapshot.reason != "reconcile":
        raise InputRefused(
            f"run {run.run_id} is a {where.snapshot.reason} drill: only a reconcile run cleans up after another drill",
            filer=run.key,
        )
    with where.catalog() as catalog:
        pins = catalog.load(where.filer).pins
        drill_id = next((str(p["drill_id"]) for p in pins.values() if isinstance(p.get("drill_id"), str)), None)
        ref = DrillRef.from_json({"run": run.to_json(), "drill_id": drill_id}) if drill_id else None
        record = read_record(catalog, ref) if ref else None
    poll = 10.0
    if record is not None:
        with contextlib.suppress(UnknownClusterError):
            poll = where.plan.dr_cluster(record.target_cluster).poll_seconds
    return StaleDrill(drill_id=drill_id, poll_seconds=poll)


def cluster_plan(request: DrillFilers) -> DrillClusterPlan:
    """A whole-cluster drill's filers, each one a protected filer of that cluster in the plan (a crafted input
    naming anything else is refused before any drill starts); the plan's parallelism."""
    plan = services.load_plan()
    known = {f.name for f in plan.filers if f.cluster == request.cluster}
    unknown = [f for f in request.filers if f not in known]
    if unknown or len(set(request.filers)) != len(request.filers):
        raise CatalogConflict(
            f"the request names filers the plan does not protect on cluster {request.cluster} "
            f"(or names one twice): {', '.join(unknown) or 'a duplicate'}",
            filer=f"{request.cluster}/*",
            state="nothing started",
            action="POST /api/drills/{cluster} again",
        )
    return DrillClusterPlan(filers=request.filers, parallel=plan.drill_parallel())


def finish(request: DrillFinish) -> dict[str, Any] | None:
    """The outcome, RTO and phases into the drill record; a failed drill logs VFXTDR_DRILL_FAILED once. Passed
    needs the record's read-back to have passed (drill_readback wrote it)."""
    ref = request.ref
    if request.status not in OUTCOMES:
        raise InputRefused(f"drill status {request.status[:40]!r} is not one of {', '.join(OUTCOMES)}", filer=ref.key)
    where = resolve(ref.run)
    own_run(where, ref)
    at = services.now_iso()
    with where.catalog() as catalog:
        record = read_record(catalog, ref)
        if record is None and request.status != FAILED:  # failed: drill_begin chose nothing, wrote no record
            raise InputRefused(
                f"the catalog holds no drill {ref.drill_id} of {ref.key} to record as {request.status}", filer=ref.key
            )
        if record is not None:
            if record.instance_id != ref.run.instance_id:
                raise InputRefused(f"drill {ref.drill_id} is not the drill of {ref.run.instance_id}", filer=ref.key)
            passed = (record.readback or {}).get("status") == PASSED
            if request.status == PASSED and not passed:
                raise InputRefused(
                    f"drill {ref.drill_id} cannot be recorded as passed: its record holds no passed read-back",
                    filer=ref.key,
                )
            phases = dict(request.phases[:MAX_PHASES])
            record.status, record.phases, record.rto_s = request.status, phases, request.rto_s
            copy = phases.get("copy_s")
            record.rto_without_copy_s = (
                round(request.rto_s - copy, 3) if request.rto_s is not None and copy is not None else None
            )
            record.error, record.finished_at = request.error[:2000], at
            write_record(catalog, record)
    if request.status == FAILED:
        signals.emit(
            log,
            [
                signals.drill_failed(
                    ref.key,
                    drill_id=ref.drill_id,
                    instance_id=ref.run.instance_id,
                    error=request.error[:500] or "the drill failed",
                )
            ],
        )
    return record.to_json() if record is not None else None


def own_run(where: Where, ref: DrillRef) -> None:
    """A drill run acts on its own drill; only a reconcile run names another (the one it cleans up after)."""
    if ref.drill_id != ref.run.run_id and where.snapshot.reason != "reconcile":
        raise InputRefused(
            f"drill {ref.drill_id} is not run {ref.run.run_id}'s drill: a drill run acts on its own drill only",
            filer=ref.key,
        )


def cleaned(request: DrillCleaned) -> dict[str, Any] | None:
    """The clean-up's outcome into the record, and the generation unpinned (whatever the outcome: nothing of the
    drill reads it any more). A clean-up that left something behind fails the drill."""
    ref = request.ref
    where = resolve(ref.run)
    own_run(where, ref)
    at = services.now_iso()
    with where.catalog() as catalog:
        record = read_record(catalog, ref)
        if record is None or record.instance_id != ref.run.instance_id:
            raise InputRefused(f"the catalog holds no drill {ref.drill_id} of {ref.run.instance_id}", filer=ref.key)
        catalog.update(where.filer, lambda s: unpin(s, ref.drill_id))
        already_failed = record is not None and record.status == FAILED
        if record is not None:
            record.cleanup = {
                "ok": request.ok,
                "at": at,
                "cleanup_s": request.cleanup_s,
                "detail": request.detail[:2000],
            }
            if record.status == RUNNING:  # it never finished: stopped from outside, cleaned up after (reconcile)
                record.status, record.finished_at = CANCELLED, at
                record.error = "the drill stopped before it finished (terminated); cleaned up after it by the timer"
            if not request.ok:
                record.status = FAILED
                record.error = "; ".join(e for e in (record.error, f"clean-up failed: {request.detail}") if e)[:2000]
            write_record(catalog, record)
    if not request.ok and not already_failed:
        signals.emit(
            log,
            [
                signals.drill_failed(
                    ref.key,
                    drill_id=ref.drill_id,
                    instance_id=ref.run.instance_id,
                    error=f"clean-up failed: {request.detail[:500]}",
                )
            ],
        )
    return record.to_json() if record is not None else None
