"""Clocks for the local stack: real time, or a virtual clock the local Durable runner moves in tests."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time in epoch seconds (the simulator and the runner take one)."""

    def now(self) -> float: ...


class RealClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """Time that only moves when told to; thread-safe, never goes backwards."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def advance_to(self, epoch: float) -> float:
        with self._lock:
            self._now = max(self._now, epoch)
            return self._now
