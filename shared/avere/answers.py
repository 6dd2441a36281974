"""Strict readers of the cluster answers the runbook decides on: a missing or garbled field is never a default."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from shared.avere.errors import AvereUnexpectedAnswer
from shared.avere.namespace import junction_filer
from shared.avere.records import MasterKeyStatus

# What a core filer's corefiler.get entry must hold before anything is decided from it.
DECIDED = ("adminState", "bucket", "cryptoMode")
# What capture records and re-add replays; a default here would re-add a different filer (or an unencrypted one).
CAPTURED = (*DECIDED, "type", "cloudType", "compressMode", "cloudCredential", "policyName", "sslVerifyMode")
# masterKeyStatus placeholders that mean "no key".
NO_KEY = ("", "NO ACTIVE MASTER KEY", "NONE", "NO MASTER KEY READY TO ACTIVATE")


def struct(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AvereUnexpectedAnswer(f"{what} answered {type(value).__name__}, not a struct")
    return value


def array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise AvereUnexpectedAnswer(f"{what} answered {type(value).__name__}, not an array")
    return value


def _got(data: dict[str, Any], field: str) -> str:
    """What stood in a field, described without its value (which could be a recovery file)."""
    if field not in data:
        return "nothing"
    value = data[field]
    if isinstance(value, str):
        return "an unusable string" if value.strip() else "an empty string"
    return f"a value of type {type(value).__name__}"


def text(data: dict[str, Any], field: str, what: str) -> str:
    """A required, non-empty string field."""
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise AvereUnexpectedAnswer(
            f"{what} has no readable {field} (got {_got(data, field)}): nothing is decided from a guess"
        )
    return value


def filer_entry(answer: Any, name: str, fields: Iterable[str] = DECIDED) -> dict[str, Any]:
    """corefiler.get(name)[name], with `fields` present as non-empty strings."""
    what = f"corefiler.get({name})"
    entry = struct(struct(answer, what).get(name), f"{what}[{name!r}]")
    for field in fields:
        text(entry, field, what)
    return entry


def flag(value: Any) -> bool | None:
    """'yes'/'no' (or an XML-RPC boolean) as the cluster answers flags; None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "1", "no", "false", "0"):
        return value.strip().lower() in ("yes", "true", "1")
    return None


def _key_id(data: dict[str, Any], field: str, what: str) -> str:
    value = data.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise AvereUnexpectedAnswer(
            f"{what} has no readable {field} (got {_got(data, field)}): the key state is unknown"
        )
    return "" if value.strip().upper() in NO_KEY else value.strip()


def key_status(answer: Any, name: str) -> MasterKeyStatus:
    """corefiler.masterKeyStatus: the active and the pending key must be stated (a placeholder says "none")."""
    what = f"corefiler.masterKeyStatus({name})"
    data = struct(answer, what)
    activation = str(data.get("keyActivationTime", "") or "")
    nodes = data.get("nodesWithoutLatestMasterKey") or []
    return MasterKeyStatus(
        active_key_id=_key_id(data, "activeMasterKeyId", what),
        ready_to_activate=_key_id(data, "masterKeyIdReadyToActivate", what),
        recovery_file_signature=str(data.get("recoveryFileSignature", "") or ""),
        activation_time=float(activation) if activation.replace(".", "", 1).isdigit() else None,
        nodes_without_latest_key=tuple(str(n) for n in (nodes if isinstance(nodes, list) else [nodes])),
    )


def junction_entries(answer: Any, vserver: str) -> list[dict[str, Any]]:
    """vserver.listJunctions: every entry names its path and its core filer, or nobody can say whose it is."""
    what = f"vserver.listJunctions({vserver})"
    entries = array(answer, what)
    for i, entry in enumerate(entries):
        struct(entry, f"{what}[{i}]")
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise AvereUnexpectedAnswer(
                f"{what}[{i}] has no readable path (got {_got(entry, 'path')}): the namespace is unknown"
            )
        if not junction_filer(entry):
            raise AvereUnexpectedAnswer(
                f"{what}: junction {path} names no core filer (corefiler/mass): whose junction it is cannot be told"
            )
    return entries


def names(answer: Any, what: str) -> list[str]:
    """A list of names (vserver.list, corefiler.list, node.list)."""
    items = array(answer, what)
    if not all(isinstance(n, str) and n for n in items):
        raise AvereUnexpectedAnswer(f"{what} answered an array that is not all names")
    return list(items)


def number(value: Any) -> float | None:
    """A numeric answer as int, double or decimal string (the cluster's i8 representations); else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None  # NaN and inf are garbage, not counts


def count(value: Any) -> int | None:
    """A non-negative whole count, or None when the answer is missing or not one."""
    result = number(value)
    if result is None or result < 0 or result != int(result):
        return None
    return int(result)


def percent(value: Any, state: str) -> int:
    """Progress for display only (never decides anything): unreadable means 0, success means 100."""
    if state == "success":
        return 100
    result = number(value)
    return 0 if result is None else max(0, min(100, int(result)))
