"""The base of every plan part: a codec record read from a plan fragment, every problem recorded."""

from __future__ import annotations

from typing import Any, ClassVar, Self, TypeVar

from shared.core.codec import JsonRecord
from shared.plan.validate import Obj, Problems

T = TypeVar("T")


def _nonblank(value: str) -> str | None:
    return None if value.strip() and not any(c.isspace() for c in value) else "must be non-empty, no spaces"


class _Part(JsonRecord):
    """A plan part: a record of the one codec (shared.core.codec), held to the plan's rules when it is read.

    `_read` reads a fragment of the plan file, recording every problem; a part decoded from a payload goes
    through the same rules (`_checked`), so a tampered payload is refused as the plan file would be."""

    UNKNOWN_KEYS: ClassVar[str] = "refuse"

    @classmethod
    def _read(cls, o: Obj) -> Self | None:
        raise NotImplementedError

    @classmethod
    def read_plan_part(cls, data: Any, path: str = "") -> Self:
        """The part a plan fragment describes; PlanError naming every problem."""
        problems = Problems()
        part = cls._read(Obj(data, path, problems, cls._keys()))
        problems.raise_if_any()
        return present(part)

    def _checked(self) -> Self:
        return type(self).read_plan_part(self.to_json())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        raise NotImplementedError


def present(value: T | None) -> T:
    """A value a part read without problems always has (the reader returned None on any problem)."""
    if value is None:
        raise AssertionError("a plan part read without problems lacks a required value")
    return value


def _clean(o: Obj, before: int) -> bool:
    """Whether the fragment is an object and reading it added no problem: then every required value is there."""
    return o.ok and len(o.problems.items) == before
