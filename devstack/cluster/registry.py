"""The simulator's method table: name -> implementation, help text, API level; argument checks."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.cluster.engine import Cluster, Session
from devstack.cluster.faults import EINVAL, Fault
from devstack.cluster.inject import Rule

ALIASES = {"mass.": "corefiler."}  # 'mass' is the deprecated name of the corefiler module
SIM_NOTE = "SIMULATOR ONLY - NOT part of the Avere API (a test and demo helper). "


@dataclass
class Request:
    """What one HTTP request's calls decided about its answer beyond the XML-RPC body."""

    mutated: bool = False  # some call changed state: persist, even if the answer is then lost
    drop: bool = False  # close the connection without answering
    status: int = 200  # an HTTP error status instead of the XML-RPC answer
    close: bool = False  # answer, then close this connection
    close_idle: bool = False  # close the server's other idle keep-alive connections too


@dataclass(frozen=True)
class Ctx:
    cluster: Cluster
    session: Session
    method: str = ""
    params: tuple[Any, ...] = ()
    entry: dict[str, Any] = field(default_factory=dict)  # this call's call-log entry
    request: Request = field(default_factory=Request)

    def note(self, **fields: Any) -> None:
        """Add what the call saw to its call-log entry (e.g. numFiles at a remove)."""
        self.entry.update(fields)

    def take(self, action: str) -> Rule | None:
        """Fire (and consume) an injected rule of `action` for this call, noting it in the call log."""
        rule = self.cluster.faults.take(self.method, self.params, (action,))
        if rule is not None:
            self.entry.setdefault("injected", []).append(rule.label)
        return rule


@dataclass(frozen=True)
class Method:
    name: str
    func: Callable[..., Any]
    help: str
    level: str  # 'basic' | 'maintenance' | 'sim'
    readonly: bool

    def bind(self, ctx: Ctx, params: tuple[Any, ...]) -> bool:
        try:
            inspect.signature(self.func).bind(ctx, *params)
        except TypeError:
            return False
        return True


METHODS: dict[str, Method] = {}


def canonical(method: str) -> str:
    """The method's current name ('mass.get' is 'corefiler.get')."""
    for old, new in ALIASES.items():
        if method.startswith(old):
            return new + method[len(old) :]
    return method


def rpc(name: str, *, level: str = "basic", readonly: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Register an implementation; its docstring is what system.methodHelp answers."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        text = inspect.cleandoc(func.__doc__ or "")
        if level == "sim" or name.startswith("sim."):
            text = SIM_NOTE + text
        METHODS[name] = Method(name=name, func=func, help=text, level=level, readonly=readonly)
        return func

    return register


def visible(session: Session) -> list[Method]:
    """Maintenance methods are listed only once the session enabled that API level."""
    return [m for m in METHODS.values() if m.level != "maintenance" or "maintenance" in session.apis]


def text(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise Fault(EINVAL, f"{what} must be a non-empty string")
    return value


def struct(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Fault(EINVAL, f"{what} must be a struct")
    return value


def flag(value: Any, what: str) -> bool:
    """'yes'/'no' strings or XML-RPC booleans, as the cluster accepts both."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "true", "1", "no", "false", "0"):
        return value.lower() in ("yes", "true", "1")
    raise Fault(EINVAL, f"{what} must be 'yes' or 'no'")


def yes_no(value: bool) -> str:
    return "yes" if value else "no"
