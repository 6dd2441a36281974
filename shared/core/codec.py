"""The project's JSON codec for frozen dataclass records (the Durable codec's to_json/from_json)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import fields
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T", bound="JsonRecord")


class RecordError(ValueError):
    """A serialised record does not have the expected shape (names the class and the field)."""


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(cls_name: str, name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(o for o in options if o is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        return _decode_tuple(cls_name, name, typing.get_args(hint), value)
    if isinstance(hint, type) and callable(getattr(hint, "from_json", None)):
        # Any record type of the project nests: plan parts, copy-engine descriptors, other JsonRecords.
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise RecordError(f"{cls_name}.{name} must be an object")
        return hint.from_json(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool) and (type(value) is not hint):
        raise RecordError(f"{cls_name}.{name} must be {hint.__name__}, got {type(value).__name__}")
    return value


def _decode_tuple(cls_name: str, name: str, args: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise RecordError(f"{cls_name}.{name} must be a list")
    if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: any length of X
        return tuple(_decode(cls_name, name, args[0], v) for v in value)
    if len(args) != len(value):  # tuple[X, Y]: exactly that shape
        raise RecordError(f"{cls_name}.{name} must have {len(args)} items, got {len(value)}")
    return tuple(_decode(cls_name, name, item, v) for item, v in zip(args, value, strict=True))


def plain(value: Any) -> Any:
    """A record (anything with the Durable codec's `to_json`, static or not) as plain JSON; a tuple as a list.

    Durable payloads go as plain JSON: under the codec's strict typing (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING)
    the worker cannot rebuild a custom object for an activity or orchestration input."""
    if callable(getattr(type(value), "to_json", None)):
        return type(value).to_json(value)
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


class JsonRecord:
    """Durable codec convention: `to_json` is a staticmethod taking the object, `from_json` a classmethod."""

    @staticmethod
    def to_json(obj: JsonRecord) -> dict[str, Any]:
        return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise RecordError(f"{cls.__name__} must be a JSON object")
        hints = _hints(cls)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                    continue
                raise RecordError(f"{cls.__name__} is missing field {f.name!r}")
            kwargs[f.name] = _decode(cls.__name__, f.name, hints[f.name], data[f.name])
        return cls(**kwargs)
