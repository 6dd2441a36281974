"""Activity inputs as the worker hands them over: the payload object, or its JSON form (dict or text)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

T = TypeVar("T")


def payload(kind: type[T], value: Any) -> T:
    """The worker's codec rebuilds payload objects whose module is loaded; strict typing or a hand-made call
    may give the plain JSON instead. Anything else is refused with the type it expected."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TypeError(f"expected a {kind.__name__} payload, got text that is not JSON") from None
    if isinstance(value, dict):
        if {"__class__", "__module__", "__data__"} <= set(value):
            value = value["__data__"]
        return kind.from_json(value)  # type: ignore[attr-defined]
    raise TypeError(f"expected a {kind.__name__} payload, got {type(value).__name__}")
