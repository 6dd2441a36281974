"""Injected faults (sim.injectFault): rules that fail, cut off, garble or change what a method call does."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from devstack.cluster.faults import EINVAL, Fault

# action -> the one method it applies to (None: any method)
ACTIONS: dict[str, str | None] = {
    "fault": None,  # answer an XML-RPC fault
    "drop": None,  # close the connection without an answer
    "http": None,  # answer an HTTP error status instead of XML-RPC
    "rewrite": None,  # drop or replace a field of the answer
    "leaveDirty": "corefiler.flush",  # the flush completes but leaves files dirty
    "loseDirty": "corefiler.remove",  # the remove discards dirty data instead of writing it back
}
TRANSPORT = ("drop", "http")
TIMED = ("fault", "drop", "http")  # the actions that take `when`
WHEN = ("before", "after")
OPS = ("drop", "set")


@dataclass
class Rule:
    """One injected fault: which calls it matches, what it does, and how many more times it fires."""

    id: str
    method: str
    action: str
    count: int = 1
    when: str = ""  # 'before' | 'after' for fault, drop and http; '' otherwise
    args: list[Any] = field(default_factory=list)
    code: int = 0
    text: str = ""
    status: int = 0
    path: list[str] = field(default_factory=list)
    op: str = ""
    value: Any = None
    files: int = 0
    legacy: bool = False  # made by the positional sim.injectFault(method, code, text, count)

    @property
    def label(self) -> str:
        """What the call log says fired: 'fault-before', 'drop-after', 'rewrite', 'leaveDirty', ..."""
        return f"{self.action}-{self.when}" if self.when else self.action

    def matches(self, method: str, params: Sequence[Any]) -> bool:
        return self.count > 0 and self.method == method and list(params[: len(self.args)]) == self.args

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "method": self.method, "action": self.action, "count": self.count}
        if self.when:
            out["when"] = self.when
        if self.args:
            out["args"] = list(self.args)
        if self.action == "fault":
            out.update(code=self.code, text=self.text)
        elif self.action == "http":
            out["status"] = self.status
        elif self.action == "rewrite":
            out.update(path=list(self.path), op=self.op)
            if self.op == "set":
                out["value"] = self.value
        elif self.action == "leaveDirty":
            out["files"] = self.files
        return out


def _int(spec: dict[str, Any], key: str, default: int | None = None) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Fault(EINVAL, f"{key} must be an integer")
    return value


def _path(value: Any) -> list[str]:
    """'a.b.*' or ['a.b', 'c'] (a list when a key holds dots, e.g. a filer named 'acct.container')."""
    if isinstance(value, str):
        return [] if value in ("", "$") else value.split(".")
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise Fault(EINVAL, "path must be a dotted string or a list of keys")


def parse_rule(rule_id: str, spec: dict[str, Any], known: set[str]) -> Rule:
    """A Rule from the struct form of sim.injectFault; EINVAL names what is wrong with it."""
    allowed = {"method", "action", "count", "when", "args", "code", "text", "status", "path", "op", "value", "files"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise Fault(EINVAL, f"unknown fault option(s): {', '.join(unknown)}")
    method = spec.get("method")
    if not isinstance(method, str) or method not in known:
        raise Fault(EINVAL, f"method must name a cluster method, got {method!r}")
    action = spec.get("action")
    if action not in ACTIONS:
        raise Fault(EINVAL, f"action must be one of {', '.join(ACTIONS)}")
    only = ACTIONS[action]
    if only is not None and method != only:
        raise Fault(EINVAL, f"action '{action}' applies to {only} only")
    count = _int(spec, "count", 1)
    if count < 1:
        raise Fault(EINVAL, "count must be >= 1 (sim.clearFaults removes rules)")
    args = spec.get("args", [])
    if not isinstance(args, list):
        raise Fault(EINVAL, "args must be a list of leading parameters")
    rule = Rule(id=rule_id, method=method, action=action, count=count, args=list(args))
    if action in TIMED:
        rule.when = spec.get("when", "before")
        if rule.when not in WHEN:
            raise Fault(EINVAL, "when must be 'before' or 'after'")
    elif "when" in spec:
        raise Fault(EINVAL, f"action '{action}' takes no 'when'")
    _action_options(rule, spec)
    return rule


def _action_options(rule: Rule, spec: dict[str, Any]) -> None:
    action = rule.action
    if action == "fault":
        rule.code = _int(spec, "code")
        rule.text = spec.get("text", "")
        if not isinstance(rule.text, str) or not rule.text:
            raise Fault(EINVAL, "a fault needs a non-empty text")
    elif action == "http":
        rule.status = _int(spec, "status", 500)
        if not 500 <= rule.status <= 599:
            raise Fault(EINVAL, "status must be an HTTP 5xx code")
    elif action == "rewrite":
        rule.path, rule.op = _path(spec.get("path")), spec.get("op", "")
        if rule.op not in OPS:
            raise Fault(EINVAL, "op must be 'drop' or 'set'")
        if rule.op == "set" and "value" not in spec:
            raise Fault(EINVAL, "op 'set' needs a value")
        if rule.op == "drop" and not rule.path:
            raise Fault(EINVAL, "the whole answer cannot be dropped; set it to a value instead")
        rule.value = spec.get("value")
    elif action == "leaveDirty":
        rule.files = _int(spec, "files", 1)
        if rule.files < 1:
            raise Fault(EINVAL, "files must be >= 1")


def rewrite(value: Any, path: Sequence[str], op: str, new: Any) -> bool:
    """Drop or set what `path` names inside value (in place); True when anything matched.

    A segment is a struct key, a list index, or '*' for every key or element. 'set' on a missing key of
    an existing struct adds it. The root (empty path) is handled by the caller.
    """
    if isinstance(value, dict):
        return _rewrite_struct(value, path, op, new)
    if isinstance(value, list):
        return _rewrite_array(value, path, op, new)
    return False


def _rewrite_struct(value: dict[str, Any], path: Sequence[str], op: str, new: Any) -> bool:
    head, rest = path[0], path[1:]
    hit = False
    for key in list(value) if head == "*" else [head]:
        if rest:
            hit = (key in value and rewrite(value[key], rest, op, new)) or hit
        elif op == "set":
            value[key] = copy.deepcopy(new)
            hit = True
        elif key in value:
            del value[key]
            hit = True
    return hit


def _rewrite_array(value: list[Any], path: Sequence[str], op: str, new: Any) -> bool:
    head, rest = path[0], path[1:]
    if head == "*":
        indexes = list(range(len(value)))
    elif head.lstrip("-").isdigit() and -len(value) <= int(head) < len(value):
        indexes = [int(head) % len(value)]
    else:
        return False
    if rest:
        hits = [rewrite(value[i], rest, op, new) for i in indexes]  # every element, no short cut
        return any(hits)
    for i in sorted(indexes, reverse=True):
        if op == "drop":
            del value[i]
        else:
            value[i] = copy.deepcopy(new)
    return bool(indexes)


class FaultBook:
    """The cluster's injected faults, in injection order. Not persisted: a restart clears them."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._next = 1

    def new_id(self) -> str:
        rule_id = f"fault-{self._next}"
        self._next += 1
        return rule_id

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)

    def set_legacy(self, method: str, code: int, text: str, count: int) -> None:
        """The positional form: replaces earlier positional rules for the method; count 0 only clears."""
        self.rules = [r for r in self.rules if not (r.legacy and r.method == method)]
        if count > 0:
            self.add(
                Rule(
                    id=self.new_id(),
                    method=method,
                    action="fault",
                    when="before",
                    count=count,
                    code=code,
                    text=text,
                    legacy=True,
                )
            )

    def clear(self, method: str | None = None) -> int:
        keep = [r for r in self.rules if method is not None and r.method != method]
        removed = len(self.rules) - len(keep)
        self.rules = keep
        return removed

    def find(self, method: str, params: Sequence[Any], actions: Sequence[str], when: str = "") -> Rule | None:
        return next(
            (
                r
                for r in self.rules
                if r.action in actions and (not when or r.when == when) and r.matches(method, params)
            ),
            None,
        )

    def consume(self, rule: Rule) -> None:
        rule.count -= 1
        if rule.count <= 0:
            self.rules.remove(rule)

    def take(self, method: str, params: Sequence[Any], actions: Sequence[str], when: str = "") -> Rule | None:
        """The first live rule for this call among `actions` (and `when`), one firing consumed."""
        rule = self.find(method, params, actions, when)
        if rule is not None:
            self.consume(rule)
        return rule

    def apply_rewrites(self, method: str, params: Sequence[Any], result: Any) -> tuple[Any, list[str]]:
        """The answer after every matching rewrite rule that changes it; labels of the rules that fired."""
        fired: list[str] = []
        for rule in [r for r in self.rules if r.action == "rewrite" and r.matches(method, params)]:
            if not rule.path:
                result = copy.deepcopy(rule.value)
            else:
                candidate = copy.deepcopy(result)
                if not rewrite(candidate, rule.path, rule.op, rule.value):
                    continue  # nothing to change in this answer: the rule waits for one it changes
                result = candidate
            self.consume(rule)
            fired.append(rule.label)
        return result, fired
