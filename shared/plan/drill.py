"""The plan's drill settings: the read-back probe, the sample size, whole-cluster parallelism, drill schedules."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.core import ncrontab
from shared.core.codec import json_options
from shared.core.netutil import is_loopback_host
from shared.plan import validate as chk
from shared.plan.part import _clean, _nonblank, _Part, present
from shared.plan.validate import Obj

DEFAULT_SAMPLE_SIZE = 20
DEFAULT_MAX_PARALLEL = 2
DEFAULT_PROBE_TIMEOUT = 600.0
# A probe call is one activity: it must end well inside the host's functionTimeout (30 minutes).
MAX_PROBE_TIMEOUT = 1500.0


def probe_url(value: str) -> str | None:
    """The probe's endpoint: https (plain http only on loopback, for the local stand-in), no credentials."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an https URL such as https://probe.internal.example/read"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, fragment or credentials (the probe's key is a Key Vault secret)"
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        return "must use https (plain http is accepted only on loopback)"
    return None


def schedule_problem(expr: str) -> str | None:
    try:
        ncrontab.parse(expr)
    except ValueError as exc:
        return f"not a valid NCRONTAB expression: {exc}"
    return None


@dataclass(frozen=True)
class Probe(_Part):
    """The operator's read-back endpoint: its URL, the Key Vault secret holding its key, its time limit."""

    url: str
    key_secret: str
    ca_file: str | None = field(default=None, metadata=json_options(omit=None))
    timeout_seconds: float = DEFAULT_PROBE_TIMEOUT

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("url", "key_secret", "ca_file", "timeout_seconds")

    @classmethod
    def _read(cls, o: Obj) -> Probe | None:
        before = len(o.problems.items)
        url = o.text("url", probe_url, rule="url")
        secret = o.text("key_secret", chk.secret_name, rule="secret-name")
        ca = o.text("ca_file", _nonblank, default=None)
        timeout = o.number("timeout_seconds", low=10, high=MAX_PROBE_TIMEOUT, default=DEFAULT_PROBE_TIMEOUT)
        if not _clean(o, before):
            return None
        return cls(url=present(url), key_secret=present(secret), ca_file=ca, timeout_seconds=float(present(timeout)))


@dataclass(frozen=True)
class DrillSettings(_Part):
    """`drill` of the plan (defaults for every filer) or of one filer (overrides; no `max_parallel` there).

    A None field says nothing: the filer's value, else the plan's, else the default applies."""

    probe: Probe | None = field(default=None, metadata=json_options(omit=None))
    sample_size: int | None = field(default=None, metadata=json_options(omit=None))
    max_parallel: int | None = field(default=None, metadata=json_options(omit=None))

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("probe", "sample_size", "max_parallel")

    @classmethod
    def _read(cls, o: Obj, filer_level: bool = False) -> DrillSettings | None:
        before = len(o.problems.items)
        probe_obj = o.obj("probe", Probe._keys(), required=False)
        probe = Probe._read(probe_obj) if probe_obj else None
        sample = o.integer("sample_size", 1, 1000) if "sample_size" in o.data else None
        parallel = o.integer("max_parallel", 1, 20) if "max_parallel" in o.data else None
        if filer_level and "max_parallel" in o.data:
            o.problems.add(
                o.at("max_parallel"), "belongs in the plan's top-level drill (whole-cluster drills)", "drill"
            )
        if not _clean(o, before):
            return None
        return cls(probe=probe, sample_size=sample, max_parallel=parallel)


def read_drill(o: Obj, key: str, *, filer_level: bool) -> DrillSettings | None:
    """The `drill` object at this level of the plan, or None when absent (problems recorded)."""
    sub = o.obj(key, DrillSettings._keys(), required=False)
    return DrillSettings._read(sub, filer_level) if sub else None


def effective(plan_level: DrillSettings | None, filer_level: DrillSettings | None) -> tuple[Probe | None, int]:
    """(the probe, the sample size) a filer's drill uses: the filer's setting, else the plan's, else defaults."""
    levels = [s for s in (filer_level, plan_level) if s is not None]
    probe = next((s.probe for s in levels if s.probe is not None), None)
    sample = next((s.sample_size for s in levels if s.sample_size is not None), DEFAULT_SAMPLE_SIZE)
    return probe, sample


def max_parallel(plan_level: DrillSettings | None) -> int:
    return plan_level.max_parallel if plan_level and plan_level.max_parallel else DEFAULT_MAX_PARALLEL
