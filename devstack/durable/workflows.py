"""The `python -m devstack run WORKFLOW` table: each workflow is one HTTP call to the app's own route."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Flag:
    """A command-line switch that becomes a query parameter when given."""

    option: str  # e.g. "--dry-run"
    query: str  # e.g. "dryRun"
    value: str  # e.g. "true"
    help: str


@dataclass(frozen=True)
class Workflow:
    """`run NAME ARGS...` -> METHOD /api/<path with ARGS filled in>[?flags]."""

    name: str
    help: str
    method: str
    path: str  # a template over `args`, e.g. "backups/{cluster}/{filer}" (under the route prefix)
    args: tuple[str, ...]
    flags: tuple[Flag, ...] = field(default_factory=tuple)

    def request_path(self, values: dict[str, str], flags: dict[str, bool]) -> str:
        path = self.path.format(**{name: quote(values[name], safe="") for name in self.args})
        query = {f.query: f.value for f in self.flags if flags.get(f.query)}
        return path + (f"?{urlencode(query)}" if query else "")


# Extend here when the app gains a route worth a command (the workflow's HTTP front owns the routes).
WORKFLOWS: dict[str, Workflow] = {
    "backup": Workflow(
        name="backup",
        help="back up one core filer now (POST /api/backups/{cluster}/{filer})",
        method="POST",
        path="backups/{cluster}/{filer}",
        args=("cluster", "filer"),
        flags=(Flag("--dry-run", "dryRun", "true", "run only the preflight and print its findings"),),
    ),
    "readd": Workflow(
        name="readd",
        help="re-add a removed core filer from its captured record (POST /api/filers/{cluster}/{filer}/readd)",
        method="POST",
        path="filers/{cluster}/{filer}/readd",
        args=("cluster", "filer"),
    ),
    "failover": Workflow(
        name="failover",
        help="fail a core filer over to its DR cluster from its newest verified backup "
        "(POST /api/failovers/{cluster}/{filer})",
        method="POST",
        path="failovers/{cluster}/{filer}",
        args=("cluster", "filer"),
        flags=(
            Flag("--no-verify", "verify", "false", "attach without first checking the backup against its manifest"),
        ),
    ),
    "failback": Workflow(
        name="failback",
        help="bring a failed-over core filer home: its re-protect backup's final delta with the DR filer "
        "removed, attached at its primary cluster (POST /api/failbacks/{cluster}/{filer})",
        method="POST",
        path="failbacks/{cluster}/{filer}",
        args=("cluster", "filer"),
    ),
    "drill": Workflow(
        name="drill",
        help="rehearse a failover of one core filer on its DR cluster from a scratch copy of its newest "
        "verified backup, then clean up (POST /api/drills/{cluster}/{filer})",
        method="POST",
        path="drills/{cluster}/{filer}",
        args=("cluster", "filer"),
    ),
    "drills": Workflow(
        name="drills",
        help="drill every protected filer of a cluster, a few at a time (POST /api/drills/{cluster})",
        method="POST",
        path="drills/{cluster}",
        args=("cluster",),
    ),
}
