"""Run ids (Durable instance ids): made from plan names only, one per (kind, cluster, filer), never shared.

A run id is `{kind}~{cluster}~{filer}`, and a copy pass of a backup run `{backup run id}~{job id}`. The plan's
names are letters, digits, `_`, `.` and `-` (shared/plan/validate.py `object_name`), never `~`, so the parts
split back exactly: two different (kind, cluster, filer) never give the same id. `~` is unreserved in URLs and
allowed in instance ids by every Durable storage provider (Azure Storage refuses only `/ \\ # ?` and control
characters), so the ids read as they are in /api/runs/{id}.

Versions before this one used `{kind}-{cluster}-{filer}` (and `{parent}-{job id}` for copy passes), where
`prod-east/fs1` and `prod/east-fs1` collide. Runs started under those ids may still be running after an
upgrade: `filer_run_ids` lists them beside the current ids, so such a run still counts as running for its
filer (over-counting, when two filers share a legacy id, only holds a start back), and `parse_run_id`
recognises them for the run routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEP = "~"
BACKUP, READD, FAILOVER, FAILBACK, COPY = "backup", "readd", "failover", "failback", "copy"
KINDS = (BACKUP, READD, FAILOVER, FAILBACK)  # the runs a door starts for a filer; COPY runs are a backup's passes
LEGACY_KINDS = (BACKUP, READD, FAILOVER, "drill")  # kinds runs had before these ids (a failback never had another)
COPYING = (BACKUP, FAILBACK)  # the runs whose copy passes are sub-orchestrations `{run id}~{job id}`
DRILL = "drill"  # a drill of a filer: on the DR cluster only, so it holds back no run of the primary (not in KINDS)
# Runs of a whole cluster: `{kind}~{cluster}`, their filers' runs under their own ids.
CLUSTER_FAILOVER, CLUSTER_DRILL = "cluster-failover", "cluster-drill"

# The plan's name rule (shared/plan/validate.py object_name), as a full match.
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
# A copy pass's job id: `{backup id}-pre|final`, the backup id `YYYYMMDDTHHMMSSZ-<8 hex>` (orchestrators/backup.py).
# A pass run again once its overwrites were approved (orchestrators/change_guard.py) ends in `~1` (`-1` legacy).
_JOB = r"\d{8}T\d{6}Z-[0-9a-f]{8}-(?:pre|final)(?:[~-]1)?"
_CURRENT = re.compile(
    rf"(?P<kind>backup|readd|failover|failback|drill)~(?P<cluster>{_NAME})~(?P<filer>{_NAME})"
    rf"(?:~(?P<job>{_JOB}))?"
)
_CLUSTER = re.compile(rf"(?P<kind>cluster-failover|cluster-drill)~(?P<cluster>{_NAME})")
_LEGACY = re.compile(rf"(?P<kind>backup|readd|failover|drill)-(?P<names>[A-Za-z0-9_.-]+?)(?:-(?P<job>{_JOB}))?")


@dataclass(frozen=True)
class RunId:
    """What a run id says: the kind of run, its filer (None for a legacy id: it cannot be split), and for a copy
    pass the backup run it belongs to."""

    id: str
    kind: str  # backup | readd | failover | failback | drill | copy | cluster-failover | cluster-drill
    cluster: str | None
    filer: str | None
    parent: str | None = None  # a copy pass: its backup run
    legacy: bool = False


def _check(kind: str, cluster: str, filer: str) -> None:
    if kind not in (*KINDS, DRILL):
        raise ValueError(f"run kind {kind!r} is not one of {', '.join((*KINDS, DRILL))}")
    for what, name in (("cluster", cluster), ("filer", filer)):
        if not re.fullmatch(_NAME, name):
            raise ValueError(f"{what} name {name!r} is not a plan name (letters, digits, '_', '.', '-')")


def run_id(kind: str, cluster: str, filer: str) -> str:
    """The id of the one run of this kind a filer may have at a time."""
    _check(kind, cluster, filer)
    return f"{kind}{SEP}{cluster}{SEP}{filer}"


def legacy_run_id(kind: str, cluster: str, filer: str) -> str:
    """The id versions before this one gave the same run (ambiguous: read only, never started)."""
    _check(kind, cluster, filer)
    return f"{kind}-{cluster}-{filer}"


def filer_run_ids(cluster: str, filer: str, kinds: tuple[str, ...] = KINDS) -> tuple[str, ...]:
    """Every id under which a run of these kinds of the filer may be running: the current and the legacy one."""
    return tuple(
        i
        for kind in kinds
        for i in (
            run_id(kind, cluster, filer),
            *((legacy_run_id(kind, cluster, filer),) if kind in LEGACY_KINDS else ()),
        )
    )


def cluster_run_id(kind: str, cluster: str) -> str:
    """The id of a whole-cluster run (failover or drill) of a protected cluster."""
    if kind not in (CLUSTER_FAILOVER, CLUSTER_DRILL) or not re.fullmatch(_NAME, cluster):
        raise ValueError(f"no cluster run {kind!r} of {cluster!r}")
    return f"{kind}{SEP}{cluster}"


def copy_run_id(parent: str, job_id: str, attempt: int = 0) -> str:
    """A copy pass of backup run `parent` (attempt 1: the pass run again once its overwrites were approved). A
    legacy parent keeps the legacy form, so a run started before the upgrade replays with the child id it
    recorded."""
    sep = SEP if SEP in parent else "-"
    return f"{parent}{sep}{job_id}" + (f"{sep}{attempt}" if attempt else "")


def is_current(instance_id: str) -> bool:
    """Whether the id was made by this version (a run that replays this version's steps from its start)."""
    return SEP in instance_id


def parse_run_id(text: str) -> RunId | None:
    """What the id names, when this app (this version or an earlier one) makes such ids; None otherwise."""
    return _current(text) if SEP in text else _legacy(text)


def _current(text: str) -> RunId | None:
    found = _CURRENT.fullmatch(text)
    if found is None:
        whole = _CLUSTER.fullmatch(text)
        return RunId(text, whole["kind"], whole["cluster"], None) if whole else None
    cluster, filer, job = found["cluster"], found["filer"], found["job"]
    if not job:
        return RunId(text, found["kind"], cluster, filer)
    return RunId(text, COPY, cluster, filer, parent=text[: -len(job) - 1]) if found["kind"] in COPYING else None


def _legacy(text: str) -> RunId | None:
    old = _LEGACY.fullmatch(text)
    if old is None or not _two_names(old["names"]):
        return None
    if not old["job"]:
        return RunId(text, old["kind"], None, None, legacy=True)
    if old["kind"] != BACKUP:
        return None
    return RunId(text, COPY, None, None, parent=text[: -len(old["job"]) - 1], legacy=True)


def _two_names(text: str) -> bool:
    """`{cluster}-{filer}` for at least one split at a `-` (which one, a legacy id cannot say)."""
    return any(
        re.fullmatch(_NAME, text[:i]) and re.fullmatch(_NAME, text[i + 1 :]) for i, ch in enumerate(text) if ch == "-"
    )
