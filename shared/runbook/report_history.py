"""A filer's history as the detail route lists it (`GET /api/filers/{cluster}/{filer}`): backups, failovers and
every run, newest first, paged; values picked by name and type like the report's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.catalog.store import ATTACHED, VERIFIED, FilerState
from shared.runbook.report import mapping_of, number, parse_time, run_link, text


def backup_view(entry: Mapping[str, Any], state: FilerState | None) -> dict[str, Any]:
    """A backup entry as listed; `restorable`: a generation holds it verified now (what a failover can use)."""
    backup_id = text(entry.get("backup_id"))
    verified, timings = mapping_of(entry.get("verified")), mapping_of(entry.get("timings"))
    held = (
        state is not None
        and backup_id is not None
        and any(gen.backup_id == backup_id and gen.status in (VERIFIED, ATTACHED) for gen in state.generations.values())
    )
    instance = text(entry.get("instance_id"))
    return {
        "backup_id": backup_id,
        "status": text(entry.get("status"), 40),
        "generation": text(entry.get("generation"), 8),
        "container": text(entry.get("container")),
        "started_at": text(entry.get("started_at"), 40),
        "finished_at": text(entry.get("finished_at"), 40),
        "blobs": number(verified.get("blobs")),
        "copied": number(verified.get("copied")),
        "bytes_copied": number(verified.get("bytes_copied")),
        "timings": {str(k)[:40]: v for k, v in timings.items() if number(v) is not None},
        "error": text(entry.get("error"), 500),
        "restorable": held,
        "instance_id": instance,
        "link": run_link(instance) if instance else None,
    }


def failover_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    instance = text(entry.get("instance_id"))
    return {
        "at": text(entry.get("at"), 40),
        "status": text(entry.get("status"), 40),
        "target_cluster": text(entry.get("target_cluster")),
        "backup_id": text(entry.get("backup_id")),
        "generation": text(entry.get("generation"), 8),
        "container": text(entry.get("container")),
        "instance_id": instance,
        "link": run_link(instance) if instance else None,
    }


def newest_first(items: Sequence[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Sorted by the first of keys each item has as a time, newest first; undated items last."""

    def when(item: dict[str, Any]) -> tuple[bool, datetime]:
        for key in keys:
            moment = parse_time(item.get(key))
            if moment is not None:
                return True, moment
        return False, datetime.min.replace(tzinfo=UTC)

    return sorted(items, key=when, reverse=True)


def timeline(
    backups: Sequence[dict[str, Any]], failovers: Sequence[dict[str, Any]], drills: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every run the catalog recorded, of any kind and outcome, newest first."""
    runs = [_row("backup", b, b["backup_id"], b["started_at"], b["finished_at"]) for b in backups]
    runs += [_row("failover", f, f["backup_id"], f["at"], f["at"]) for f in failovers]
    runs += [_row("drill", d, d["drill_id"], d["started_at"], d["finished_at"]) for d in drills]
    return newest_first(runs, "started_at", "finished_at")


def _row(kind: str, view: dict[str, Any], ident: Any, started: Any, finished: Any) -> dict[str, Any]:
    """One run of the timeline: its kind and id, when it ran, and the view's status, instance id and link."""
    return {
        "kind": kind,
        "id": ident,
        "status": view["status"],
        "started_at": started,
        "finished_at": finished,
        "instance_id": view["instance_id"],
        "link": view["link"],
    }


def paged(items: Sequence[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    """One page (1-based) of a list, with the total so a client knows how many pages there are."""
    start = (page - 1) * size
    return {"total": len(items), "page": page, "pageSize": size, "items": list(items[start : start + size])}
