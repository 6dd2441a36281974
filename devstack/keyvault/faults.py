"""Test-only fault rules for the Key Vault stand-in: a 5xx, a dropped connection, or a read that returns a
different value than was stored. Set over `/__faults__` (not part of Key Vault's API; the stand-in listens on
loopback only)."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

ACTIONS = ("error", "reset", "corrupt")
CONTROL = "/__faults__"


@dataclass
class Fault:
    """One rule: requests with this method whose path matches `path` (fnmatch) get `action`, `times` times
    (None: until removed). error: answer `status` with Key Vault's error shape; reset: close the connection
    before answering; corrupt: answer normally but with the secret's value altered (a read-back that lies)."""

    action: str
    method: str = "*"
    path: str = "*"
    status: int = 500
    times: int | None = 1
    fired: int = 0
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        return fnmatch.fnmatchcase(method, self.method) and fnmatch.fnmatchcase(path, self.path)


@dataclass
class Faults:
    """The stand-in's rules, shared by its request threads."""

    rules: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        unknown = set(spec) - {"action", "method", "path", "status", "times"}
        if unknown or spec.get("action") not in ACTIONS:
            raise ValueError(
                f"a fault needs action in {ACTIONS} and only method, path, status, times; got {sorted(spec)}"
            )
        with self.lock:
            rule = Fault(**spec, id=self.next_id)
            self.next_id += 1
            self.rules.append(rule)
            return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(r) for r in self.rules]

    def take(self, method: str, path: str) -> Fault | None:
        """The first live rule for this request, counted as fired (a spent rule is dropped)."""
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    if rule.times is not None and rule.fired >= rule.times:
                        self.rules.remove(rule)
                    return rule
        return None
