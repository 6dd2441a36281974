"""App settings for a local run: local.settings.json `Values` into os.environ, and host.json's durableTask."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("devstack.durable")

DEFAULT_HUB = "TestHubName"  # what Core Tools uses when host.json names no hub
DEFAULT_MAX_ACTIVITIES = 10

# extensions.durableTask.overridableExistingInstanceStates: which existing instances a start with the same id
# may replace. NonRunningStates is the default of Durable 2.x and 3.x (extension bundle 4.x carries 3.x).
ANY_STATE = "AnyState"
NON_RUNNING_STATES = "NonRunningStates"
OVERRIDABLE_KEY = "overridableExistingInstanceStates"


# The stack's own CA: the app must trust it to reach the local stand-ins, whatever bundle the shell names.
STACK_TRUST = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def load_settings(path: Path | None) -> list[str]:
    """Put a local.settings.json file's `Values` into os.environ; return the names set.

    As Core Tools does, a variable already in the environment wins (and the file's value is skipped) —
    except the CA bundle settings, which name the local stack's CA and so must win (logged).
    """
    if path is None or not Path(path).exists():
        return []
    try:
        values = json.loads(Path(path).read_text()).get("Values") or {}
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{path} is not a local.settings.json file: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: `Values` must be an object of strings")
    applied = []
    for name, value in values.items():
        if name in os.environ and name not in STACK_TRUST:
            log.info("skipping %s from %s: it is already set in the environment", name, path)
            continue
        if name in os.environ and os.environ[name] != value:
            log.info("%s from %s replaces the environment's: the app must trust the stack's CA", name, path)
        os.environ[name] = "" if value is None else str(value)
        applied.append(name)
    return applied


@dataclass(frozen=True)
class HostConfig:
    """The durableTask settings the runner honours."""

    hub_name: str = DEFAULT_HUB
    max_activities: int = DEFAULT_MAX_ACTIVITIES
    route_prefix: str = "api"
    overridable_states: str = NON_RUNNING_STATES


def load_host_json(path: Path | None) -> HostConfig:
    if path is None or not Path(path).exists():
        return HostConfig()
    data = json.loads(Path(path).read_text())
    durable = ((data.get("extensions") or {}).get("durableTask")) or {}
    hub = _resolve(str(durable.get("hubName") or DEFAULT_HUB))
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,49}", hub):
        raise ValueError(f"{path}: task hub name {hub!r} must be 3-50 letters and digits, starting with a letter")
    max_activities = int(durable.get("maxConcurrentActivityFunctions") or DEFAULT_MAX_ACTIVITIES)
    if max_activities < 1:
        raise ValueError(f"{path}: maxConcurrentActivityFunctions must be at least 1")
    prefix = ((data.get("extensions") or {}).get("http") or {}).get("routePrefix", "api")
    return HostConfig(
        hub_name=hub,
        max_activities=max_activities,
        route_prefix=str(prefix),
        overridable_states=_overridable_states(path, durable),
    )


def _overridable_states(path: Path, durable: dict) -> str:
    """The setting's value by name, matched without regard to case as .NET binds configuration and enums;
    absent means NonRunningStates. A number or any other name is refused (the host would not start)."""
    raw = next((v for k, v in durable.items() if k.lower() == OVERRIDABLE_KEY.lower()), None)
    if raw is None:
        return NON_RUNNING_STATES
    for name in (ANY_STATE, NON_RUNNING_STATES):
        if isinstance(raw, str) and raw.strip().lower() == name.lower():
            return name
    raise ValueError(f"{path}: durableTask.{OVERRIDABLE_KEY} must be {ANY_STATE} or {NON_RUNNING_STATES}, got {raw!r}")


def _resolve(value: str) -> str:
    """`%NAME%` app-setting references, as the host resolves them."""

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"host.json refers to app setting %{name}%, which is not set")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", lookup, value)
