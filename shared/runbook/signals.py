"""The stable log event names alerts match on, and the one-line JSON form every such line takes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Each name starts its log line, followed by one JSON object: `EVENT {"filer": ..., ...}`. Renaming one breaks
# the operators' alert rules: add new names, never change these. docs/operations.md documents every field.
FILER_STATUS = "VFXTDR_FILER_STATUS"  # every filer, every tick: its state and RPO age
RPO_BREACH = "VFXTDR_RPO_BREACH"  # a filer's newest verified backup is older than rpo_hours, or it has none
TICK = "VFXTDR_TICK"  # once per completed tick: the app is alive and its schedule runs
NEEDS_ATTENTION = "VFXTDR_NEEDS_ATTENTION"  # a re-add failed: the filer is left removed and needs a person
DRILL_FAILED = "VFXTDR_DRILL_FAILED"  # a failover drill did not pass

EVENTS = (FILER_STATUS, RPO_BREACH, TICK, NEEDS_ATTENTION, DRILL_FAILED)


@dataclass(frozen=True)
class Signal:
    """One structured log line: its event name, level and JSON fields (secret-free by construction: callers
    pass plan names, catalog ids, states and numbers only)."""

    event: str
    level: int
    fields: Mapping[str, Any]

    def line(self) -> str:
        return f"{self.event} {json.dumps(dict(self.fields), sort_keys=True, separators=(',', ':'))}"


def emit(log: logging.Logger, signals: Iterable[Signal]) -> None:
    for signal in signals:
        log.log(signal.level, "%s", signal.line())


def status_fields(report: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a filer's status line, from its report (shared/runbook/report.py)."""
    rpo = report["rpo"]
    backup = report.get("last_backup") or {}
    return {
        "filer": report["key"],
        "cluster": report["cluster"],
        "name": report["filer"],
        "state": report["state"],
        "serving_cluster": report["serving_cluster"],
        "rpo_target_hours": rpo["target_hours"],
        "rpo_age_s": rpo["age_s"],
        "rpo_age_hours": rpo["age_hours"],
        "badge": rpo["badge"],
        "breach": rpo["breach"],
        "last_backup_id": backup.get("backup_id"),
        "last_backup_started_at": backup.get("started_at"),
        "running": [{"instance_id": r["instance_id"], "kind": r["kind"]} for r in report["running"]],
    }


def for_tick(reports: Sequence[Mapping[str, Any]], *, started: int, skipped: int, readd: int) -> list[Signal]:
    """What one tick logs: a status line per filer, a breach line per filer in breach, then the heartbeat."""
    out: list[Signal] = []
    breaches = 0
    for report in reports:
        fields = status_fields(report)
        out.append(Signal(FILER_STATUS, logging.INFO, fields))
        if report["rpo"]["breach"]:
            breaches += 1
            why = "no verified backup" if fields["rpo_age_s"] is None else "newest verified backup older than target"
            out.append(
                Signal(
                    RPO_BREACH,
                    logging.WARNING,
                    {
                        "filer": fields["filer"],
                        "state": fields["state"],
                        "reason": why,
                        "rpo_target_hours": fields["rpo_target_hours"],
                        "rpo_age_s": fields["rpo_age_s"],
                        "rpo_age_hours": fields["rpo_age_hours"],
                        "last_backup_id": fields["last_backup_id"],
                    },
                )
            )
    out.append(
        Signal(
            TICK,
            logging.INFO,
            {"filers": len(reports), "breaches": breaches, "started": started, "skipped": skipped, "readd": readd},
        )
    )
    return out


def needs_attention(filer: str, *, instance_id: str, error: str) -> Signal:
    """The line a filer left removed logs once, when it is marked (its FILER_STATUS lines say so every tick)."""
    return Signal(NEEDS_ATTENTION, logging.ERROR, {"filer": filer, "instance_id": instance_id, "error": error})


def drill_failed(filer: str, **fields: Any) -> Signal:
    """The line a failed drill logs (the drill workflow calls this; fields: drill_id, instance_id, error ...)."""
    return Signal(DRILL_FAILED, logging.ERROR, {"filer": filer, **fields})


def parse(line: str) -> tuple[str, dict[str, Any]] | None:
    """(event, fields) of a signal line, or None when the line is not one (what an alert query does)."""
    event, sep, rest = line.partition(" ")
    if event not in EVENTS or not sep:
        return None
    try:
        fields = json.loads(rest)
    except ValueError:
        return None
    return (event, fields) if isinstance(fields, dict) else None
