"""The DR plan: what to protect and how, loaded from VFXTDR_PLAN (JSON) or VFXTDR_PLAN_FILE and validated."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from shared.core import ncrontab
from shared.core.codec import JsonRecord, json_options
from shared.plan import drill as drill_settings
from shared.plan import rules
from shared.plan import validate as chk
from shared.plan.drill import DrillSettings, Probe
from shared.plan.model import (
    DEFAULT_COPY,
    DEFAULT_GUARD,
    BackupStorage,
    Cluster,
    CopySettings,
    Filer,
    GuardSettings,
    SourceStorage,
    TlsTrust,
    default_containers,
    present,
)
from shared.plan.validate import Obj, PlanError, Problem, Problems

__all__ = [
    "BackupStorage",
    "Cluster",
    "CopySettings",
    "DrillSettings",
    "Filer",
    "GuardSettings",
    "Plan",
    "PlanError",
    "Probe",
    "Problem",
    "SourceStorage",
    "TlsTrust",
    "UnknownClusterError",
    "UnknownFilerError",
    "default_containers",
    "load_plan_file",
    "load_plan_from_env",
    "load_plan_text",
    "parse_plan",
]

PLAN_VERSION = 1
STORAGE_AUTH = ("identity", "key")
DEFAULT_CATALOG = "vfxtdr-catalog"
ENV_PLAN = "VFXTDR_PLAN"
ENV_PLAN_FILE = "VFXTDR_PLAN_FILE"
_TOP_KEYS = (
    "version",
    "keyvault_url",
    "schedule",
    "rpo_hours",
    "storage_auth",
    "short_offline_window",
    "catalog_container",
    "copy",
    "guard",
    "clusters",
    "dr_clusters",
    "filers",
    "drill",
)


class UnknownClusterError(LookupError):
    """A cluster name the plan does not declare."""


class UnknownFilerError(LookupError):
    """A filer the plan does not declare."""


@dataclass(frozen=True)
class Plan(JsonRecord):
    """A validated DR plan. It holds Key Vault secret *names* only, so it may travel in payloads."""

    UNKNOWN_KEYS: ClassVar[str] = "refuse"

    keyvault_url: str
    schedule: str
    rpo_hours: float
    storage_auth: str
    clusters: tuple[Cluster, ...]
    filers: tuple[Filer, ...]
    dr_clusters: tuple[Cluster, ...] = ()
    short_offline_window: bool = True
    catalog_container: str = DEFAULT_CATALOG
    copy: CopySettings = DEFAULT_COPY
    guard: GuardSettings = DEFAULT_GUARD
    version: int = PLAN_VERSION
    # Added after the captured payload formats: out of JSON and repr when unset (old payloads read the same).
    drill: DrillSettings | None = field(default=None, repr=False, metadata=json_options(omit=None))

    def cluster(self, name: str) -> Cluster:
        """A protected or DR cluster by name (names are unique across both lists)."""
        for c in (*self.clusters, *self.dr_clusters):
            if c.name == name:
                return c
        known = ", ".join(c.name for c in (*self.clusters, *self.dr_clusters)) or "none"
        raise UnknownClusterError(f"no cluster {name!r} in the plan (known: {known})")

    def dr_cluster(self, name: str) -> Cluster:
        """A cluster usable for failover."""
        for c in self.dr_clusters:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.dr_clusters) or "none"
        raise UnknownClusterError(f"no DR cluster {name!r} in the plan's dr_clusters (known: {known})")

    def filer(self, cluster: str, name: str) -> Filer:
        """A protected filer (UnknownClusterError for an unknown cluster, else UnknownFilerError)."""
        for f in self.filers:
            if f.cluster == cluster and f.name == name:
                return f
        if cluster not in {c.name for c in self.clusters}:
            names = ", ".join(c.name for c in self.clusters) or "none"
            raise UnknownClusterError(f"no protected cluster {cluster!r} in the plan (known: {names})")
        known = ", ".join(f.key for f in self.filers) or "none"
        raise UnknownFilerError(f"no filer {name!r} on cluster {cluster!r} in the plan (known: {known})")

    def filer_by_key(self, key: str) -> Filer:
        """A filer by its "cluster/filer" key."""
        cluster, sep, name = key.partition("/")
        if not sep:
            raise UnknownFilerError(f"{key!r} is not a filer key: expected 'cluster/filer'")
        return self.filer(cluster, name)

    def enabled_filers(self) -> tuple[Filer, ...]:
        return tuple(f for f in self.filers if f.enabled)

    def drill_probe(self, filer: Filer) -> tuple[Probe | None, int]:
        """(the read-back probe, the sample size) of the filer's drills: its own `drill`, else the plan's."""
        return drill_settings.effective(self.drill, filer.drill)

    def drill_parallel(self) -> int:
        """How many filers a whole-cluster drill rehearses at a time."""
        return drill_settings.max_parallel(self.drill)

    def parsed_schedule(self) -> ncrontab.Schedule:
        return ncrontab.parse(self.schedule)

    def warnings(self) -> tuple[str, ...]:
        """Things that are allowed but probably not what the operator wants."""
        out: list[str] = []
        gap = ncrontab.longest_gap(self.schedule)
        gap_hours = gap.total_seconds() / 3600
        if gap_hours > self.rpo_hours:
            out.append(
                f"rpo_hours: the schedule leaves up to {gap_hours:g} h between runs, longer than the "
                f"RPO target of {self.rpo_hours:g} h"
            )
        if not self.filers:
            out.append("filers: none listed, nothing will be backed up")
        elif not self.enabled_filers():
            out.append("filers: every filer is disabled, nothing will be backed up")
        for i, f in enumerate(self.filers):
            if f.failover_cluster:
                target = self.dr_cluster(f.failover_cluster)
                if target.region != f.backup.region:
                    out.append(
                        f"filers[{i}].failover_cluster: {target.name!r} is in {target.region}, "
                        f"its backup in {f.backup.region}: failover will read across regions"
                    )
        return tuple(out)

    def _checked(self) -> Plan:
        """A plan read from JSON (a payload) is held to every rule the plan file is."""
        return parse_plan(self.to_json())


def parse_plan(data: dict) -> Plan:
    """Validate a decoded plan; raise one PlanError listing every problem."""
    problems = Problems()
    o = Obj(data, "", problems, _TOP_KEYS)
    version = o.integer(
        "version", PLAN_VERSION, PLAN_VERSION, message=f"must be {PLAN_VERSION}, the only plan version this app reads"
    )
    kv_url = o.text("keyvault_url", chk.keyvault_url, rule="keyvault-url")
    schedule = o.text("schedule", _schedule_problem, rule="schedule")
    rpo = o.number("rpo_hours", above=0)
    auth = o.text("storage_auth", lambda v: None if v in STORAGE_AUTH else 'must be "identity" or "key"', rule="enum")
    short = o.flag("short_offline_window", default=True)
    catalog = o.text("catalog_container", chk.container_name, default=DEFAULT_CATALOG, rule="container-name")
    copy_obj = o.obj("copy", CopySettings._keys(), required=False)
    copy = CopySettings._read(copy_obj) if copy_obj else DEFAULT_COPY
    guard_obj = o.obj("guard", GuardSettings._keys(), required=False)
    guard = GuardSettings._read(guard_obj) if guard_obj else DEFAULT_GUARD
    drill = drill_settings.read_drill(o, "drill", filer_level=False)
    raw_clusters, raw_dr, raw_filers = (
        _raw_list(o, "clusters"),
        _raw_list(o, "dr_clusters", []),
        _raw_list(o, "filers"),
    )
    clusters = _read_list(o, raw_clusters or [], Cluster)
    dr_clusters = _read_list(o, raw_dr or [], Cluster)
    filers = _read_list(o, raw_filers or [], Filer)
    views = rules.filer_views(raw_filers or [])
    rules.check_references(problems, rules.cluster_names(raw_clusters), rules.cluster_names(raw_dr), views, auth)
    rules.check_storage(problems, views, catalog)
    problems.raise_if_any()
    return Plan(
        keyvault_url=present(kv_url),
        schedule=present(schedule),
        rpo_hours=present(rpo),
        storage_auth=present(auth),
        clusters=tuple(clusters),
        filers=tuple(filers),
        dr_clusters=tuple(dr_clusters),
        short_offline_window=present(short),
        catalog_container=present(catalog),
        copy=present(copy),
        guard=present(guard),
        version=present(version),
        drill=drill,
    )


def _schedule_problem(expr: str) -> str | None:
    try:
        ncrontab.parse(expr)
    except ValueError as exc:
        return f"not a valid NCRONTAB expression: {exc}"
    return None


def _raw_list(o: Obj, key: str, default: Any = chk.REQUIRED) -> list[tuple[str, Any]] | None:
    """(path, item) of a list, or None when it is missing or not a list (already reported)."""
    items = list(o.items(key, default=default))  # records a missing or wrongly typed list
    present = key in o.data
    if (present and not isinstance(o.data[key], list)) or (not present and default is chk.REQUIRED):
        return None
    return items


def _read_list(o: Obj, items: list[tuple[str, Any]], kind: type[Cluster] | type[Filer]) -> list[Any]:
    """The parts that read cleanly; the others have recorded their problems."""
    parts = (kind._read(Obj(item, path, o.problems, kind._keys())) for path, item in items)
    return [p for p in parts if p is not None]


def load_plan_text(text: str, source: str = ENV_PLAN) -> Plan:
    """Parse plan JSON text; duplicate keys are errors (json would silently keep the last one)."""
    problems = Problems()

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                problems.add(source, f"key {key!r} appears twice in one object", "json")
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        # The position only: the message never quotes the text.
        raise PlanError(
            [Problem(source, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "json")]
        ) from None
    except ValueError:  # the only other one json.loads raises: an integer longer than Python converts
        raise PlanError(
            [
                Problem(
                    source,
                    f"not a JSON document this app reads: a number has more than {sys.get_int_max_str_digits()} digits",
                    "json",
                )
            ]
        ) from None
    except RecursionError:
        raise PlanError(
            [Problem(source, "not a JSON document this app reads: arrays or objects nested too deeply", "json")]
        ) from None
    problems.raise_if_any()
    return parse_plan(data)


def load_plan_file(path: str | os.PathLike[str]) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([Problem(str(path), f"cannot read the plan file: {exc.strerror}", "source")]) from None
    except UnicodeDecodeError as exc:
        raise PlanError([Problem(str(path), f"not UTF-8 text: byte {exc.start} cannot be decoded", "json")]) from None
    return load_plan_text(text, str(path))


def load_plan_from_env(environ: Mapping[str, str] | None = None) -> Plan:
    """The plan from the app setting VFXTDR_PLAN (JSON text) or VFXTDR_PLAN_FILE (a path); exactly one."""
    env = os.environ if environ is None else environ
    text, path = env.get(ENV_PLAN, "").strip(), env.get(ENV_PLAN_FILE, "").strip()
    if text and path:
        raise PlanError([Problem(ENV_PLAN, f"both {ENV_PLAN} and {ENV_PLAN_FILE} are set; set only one", "source")])
    if path:
        return load_plan_file(path)
    if text:
        return load_plan_text(text, ENV_PLAN)
    raise PlanError(
        [
            Problem(
                ENV_PLAN, f"no plan: set the app setting {ENV_PLAN} (JSON) or {ENV_PLAN_FILE} (a file path)", "source"
            )
        ]
    )
