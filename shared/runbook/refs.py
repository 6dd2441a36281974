"""Run references: what orchestration and activity inputs may carry (plan entity names and run state), and the
refusal of anything else, including the inputs of earlier versions, which carried plan parts.

Whoever holds a status URL holds the Durable system key and can start any orchestrator with any input, so an
input is only ever a reference: a cluster and filer of the plan, an instance id, a run id, a backup id, a page,
a cursor, an approval reference, activity ids. Activities resolve accounts, endpoints, containers, secret names
and limits from the plan snapshot the run recorded at its start (shared/runbook/runs.py) and from the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from shared.core.codec import JsonRecord
from shared.core.errors import InputRefused

# Orchestration inputs carry the format they were written in. Format 2: references only (this version). Inputs
# without one were written by earlier versions, whose orchestration and activity inputs carried plan parts.
INPUT_FORMAT = 2
FORMAT_KEY = "format"

# Keys only the inputs of earlier versions had: a RunContext, a CopyJob, a failover choice, an attach request,
# a BackupRequest given to preflight, a FailoverRequest given to choose_backup (a key a class names as its own
# field is that field, not a sign of age).
LEGACY_KEYS = frozenset(
    {
        "context",
        "job",
        "choice",
        "keyvault_url",
        "record",
        "bucket",
        "server_name",
        "credential",
        "storage_key_secret",
        "result",
        "dry_run",
        "reason",
        "target_cluster",
        "verify",
    }
)

UPGRADE = (
    "the shape of an input of an earlier version of this app, whose inputs carried plan parts (accounts, "
    "endpoints, containers, secret names), or of no version at all; this version takes references only "
    "and does not act on it"
)
UPGRADE_ACTION = (
    "nothing to undo by hand for a removed filer: the timer's reconcile re-adds it; "
    "if the filer's clients are still suspended, unsuspend them; then start the run again"
)

# Run ids and backup ids: `<UTC basic time>-<8 hex>`, or any short name of the same characters (tests).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
# Names and instance ids travel into catalog paths: one path segment, printable, bounded. Instance ids also hold
# `~`, the separator of run ids (shared/runbook/run_ids.py), which no plan name holds.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")


def checked_id(what: str, value: str) -> str:
    if not _ID.fullmatch(value):  # fullmatch: `$` would let a trailing newline through
        raise InputRefused(f"{what} {value[:100]!r} is not an id: 1-80 of letters, digits, '.', '_', '-'")
    return value


def checked_name(what: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise InputRefused(f"{what} {value[:100]!r} is not a name: 1-200 of letters, digits, '.', '_', '-'")
    return value


def _checked_instance(value: str) -> str:
    if not _INSTANCE.fullmatch(value):
        raise InputRefused(f"instance id {value[:100]!r} is not a name: 1-200 of letters, digits, '.', '_', '-', '~'")
    return value


def _legacy_keys(cls: type[JsonRecord], data: dict[str, Any]) -> list[str]:
    own = set(getattr(cls, "__dataclass_fields__", {}))
    return sorted(k for k in data if k in LEGACY_KEYS and k not in own)


class Ref(JsonRecord):
    """An activity input: references only. A key that names no field is refused, and an input shaped as an
    earlier version's (plan parts inside) is refused saying so."""

    UNKNOWN_KEYS: ClassVar[str] = "refuse"
    ERROR: ClassVar[type[Exception]] = InputRefused

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if isinstance(data, dict) and (old := _legacy_keys(cls, data)):
            raise InputRefused(f"{cls.__name__} with {', '.join(old)}: {UPGRADE}", action=UPGRADE_ACTION)
        return super().from_json(data)


class StartInput(Ref):
    """An orchestration input: references only, with the input format it was written in. One without a format
    was written by an earlier version: refused saying so (a run of that version stops at its next step)."""

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if isinstance(data, dict) and FORMAT_KEY not in data:
            raise InputRefused(f"{cls.__name__} without a format: {UPGRADE}", action=UPGRADE_ACTION)
        if isinstance(data, dict) and data[FORMAT_KEY] != INPUT_FORMAT:
            raise InputRefused(
                f"{cls.__name__} of format {str(data[FORMAT_KEY])[:20]!r}: this version reads "
                f"format {INPUT_FORMAT} only"
            )
        return super().from_json(data)


@dataclass(frozen=True)
class RunRef(Ref):
    """Which run an activity works for: the plan's cluster and filer, the orchestration instance, and the run id
    its snapshot names (for a backup run, its backup id). Checked against the snapshot by every activity."""

    cluster: str
    filer: str
    instance_id: str
    run_id: str

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.filer}"

    def _checked(self) -> RunRef:
        checked_name("cluster", self.cluster)
        checked_name("filer", self.filer)
        _checked_instance(self.instance_id)
        checked_id("run id", self.run_id)
        return self


KINDS = ("backup", "readd", "failover", "failback", "drill")
BACKUP_KINDS = ("backup", "failback")  # runs of the backup runbook: a failback is its last re-protect backup
LIFT_FENCE = "lift_fence"  # a readd run's reason when an operator asked it to lift the failover fence
# Why a run started: by hand or on schedule; a drill also as part of a whole-cluster drill, or to clear what a
# drill that stopped without its clean-up left (reconcile); a readd also to lift the failover fence.
REASONS = {"drill": ("manual", "schedule", "cluster", "reconcile"), "readd": ("manual", "schedule", LIFT_FENCE)}
RUN_REASONS = ("manual", "schedule")


@dataclass(frozen=True)
class RunStart(Ref):
    """Activity `begin_run`: record the run's plan snapshot. kind names the workflow (its instance id must be
    that workflow's id for the filer); reason: manual | schedule (drills also cluster | reconcile; a readd also
    lift_fence, when an operator started it with ?override=failed-over: shared/catalog/fence.py);
    target_cluster: a failover's or drill's DR cluster when the request names one (otherwise the plan's
    failover_cluster), or a planned failover's."""

    run: RunRef
    kind: str
    reason: str = "manual"
    target_cluster: str | None = None

    def _checked(self) -> RunStart:
        if self.kind not in KINDS:
            raise InputRefused(f"run kind {self.kind[:40]!r} is not one of {', '.join(KINDS)}")
        reasons = REASONS.get(self.kind, RUN_REASONS)
        if self.reason not in reasons:
            raise InputRefused(f"run reason {self.reason[:40]!r} is not one of {', '.join(reasons)}")
        if self.target_cluster is not None:
            checked_name("target cluster", self.target_cluster)
        return self
