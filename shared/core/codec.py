"""The one JSON record codec: every payload, plan part and catalog record is a dataclass with to_json/from_json.

`JsonRecord` is the base: `obj.to_json()` (an instance method, so the Durable codec's `type(obj).to_json(obj)`
calls it too) and the classmethod `Cls.from_json(data)` (the Durable codec's `class_.from_json(__data__)`).
Field types drive both directions: records nest, tuples and lists of records, dicts of records, Optional;
str/int/bool must be exactly that type and float takes an int. Per field (`json_options`): another JSON key, a
value for which the key is left out, a field never written, or one dict that keeps the keys no field names.
Per class: `SCHEMA` (a version written as "schema"; a record without one is version 0, rewritten by
`upgrade`), `UNKNOWN_KEYS` ("ignore" or "refuse") and `ERROR` (the exception a bad record raises).

`decode(kind, value)` is how orchestrators and activities read a payload; `plain(value)` is a record as JSON;
`alias_modules` keeps Durable envelopes that name a former module path readable. Standard library only: this is
a leaf module every package of shared/ may import, shared/blobcopy included.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

SCHEMA_KEY = "schema"
ENVELOPE_KEYS = frozenset({"__class__", "__module__", "__data__"})
_ALWAYS = object()  # json_field(omit=...) not given: the field is always written


class RecordError(ValueError):
    """A serialised record does not have the expected shape (names the class and the field)."""


@dataclasses.dataclass(frozen=True)
class _Options:
    key: str | None
    omit: Any
    skip: bool
    extra: bool


def json_options(
    *, key: str | None = None, omit: Any = _ALWAYS, skip: bool = False, extra: bool = False
) -> dict[str, Any]:
    """Codec options for one dataclass field, as its metadata: `field(metadata=json_options(key="n"))`.

    key: its JSON key (default: the field name); omit: a value for which it is left out (it must then be the
    field's default); skip: never written nor read (caches, values only one side knows); extra: a dict that
    receives the keys no field names, written back as they came (what a newer version wrote is kept)."""
    return {"codec": _Options(key, omit, skip, extra)}


Decode = Callable[[Any], Any]
_NONE = type(None)


@dataclasses.dataclass(frozen=True)
class _Reader:
    """How one JSON value is read: as it is when its type is in `ok` (the common case, no call), else through
    `convert`, which converts it or raises naming the field. No `convert`: any value, as it is."""

    ok: frozenset[type]
    convert: Decode | None

    def read(self, value: Any) -> Any:
        return value if self.convert is None or type(value) in self.ok else self.convert(value)


_ANY = _Reader(frozenset(), None)


# Per field, as plain tuples (the loops over thousands of records unpack them):
# read: (name, key, types taken as they are, convert, required); write: (name, key, omit, encode).
_Read = tuple[str, str, frozenset[type], Decode | None, bool]
_Write = tuple[str, str, Any, Decode | None]


@dataclasses.dataclass(frozen=True)
class _Layout:
    reads: tuple[_Read, ...]
    writes: tuple[_Write, ...]
    keys: frozenset[str]
    extra: str | None
    strict: bool  # unknown keys are looked for: refused, or kept in `extra`
    checked: bool  # the class checks more than its types (_checked)


_LAYOUTS: dict[type, _Layout] = {}


def _layout(cls: type) -> _Layout:
    """How a record class reads and writes, worked out once from its fields and their types."""
    layout = _LAYOUTS.get(cls)
    if layout is not None:
        return layout
    hints = typing.get_type_hints(cls)
    error: type[Exception] = getattr(cls, "ERROR", RecordError)
    reads: list[_Read] = []
    writes: list[_Write] = []
    extra = None
    for f in dataclasses.fields(cls):
        options = f.metadata.get("codec") or _Options(None, _ALWAYS, False, False)
        if options.skip:
            continue
        if options.extra:
            extra = f.name
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if options.omit is not _ALWAYS and not has_default:
            raise TypeError(f"{cls.__name__}.{f.name}: a field left out of the JSON needs a default")
        key = options.key or f.name
        reader = _reader(f"{cls.__name__}.{f.name}", hints[f.name], error)
        reads.append((f.name, key, reader.ok, reader.convert, not has_default))
        writes.append((f.name, key, options.omit, _encoder(hints[f.name])))
    keys = {r[1] for r in reads} | ({SCHEMA_KEY} if getattr(cls, "SCHEMA", None) is not None else set())
    layout = _Layout(
        tuple(reads),
        tuple(writes),
        frozenset(keys),
        extra,
        strict=extra is not None or getattr(cls, "UNKNOWN_KEYS", "ignore") == "refuse",
        checked=getattr(cls, "_checked", None) is not getattr(JsonRecord, "_checked", None),
    )
    _LAYOUTS[cls] = layout
    return layout


# --- reading a field ---------------------------------------------------------------------------------------------
_PRIMITIVES = (str, int, bool, float)


def _is_record_type(hint: Any) -> bool:
    return isinstance(hint, type) and callable(getattr(hint, "from_json", None))


def _reader(where: str, hint: Any, error: type[Exception]) -> _Reader:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _optional(where, typing.get_args(hint), error)
    make = _READERS.get(origin or hint)
    if make is not None:
        return make(where, typing.get_args(hint), error)
    if _is_record_type(hint):
        return _Reader(frozenset({hint}), _record(where, hint, error))
    return _ANY  # Any, object, other: JSON as it is


def _optional(where: str, args: tuple[Any, ...], error: type[Exception]) -> _Reader:
    options = [a for a in args if a is not _NONE]
    if len(options) != 1:
        return _ANY  # a union of several types: not checked
    inner = _reader(where, options[0], error)
    if inner.convert is None or len(options) == len(args):
        return inner
    return _Reader(inner.ok | {_NONE}, inner.convert)


def _exactly(kind: type) -> Callable[[str, tuple[Any, ...], type[Exception]], _Reader]:
    def make(where: str, _args: tuple[Any, ...], error: type[Exception]) -> _Reader:
        def refuse(v: Any) -> Any:
            raise error(f"{where} must be {kind.__name__}, got {type(v).__name__}")

        return _Reader(frozenset({kind}), refuse)

    return make


def _float(where: str, _args: tuple[Any, ...], error: type[Exception]) -> _Reader:
    def convert(v: Any) -> float:
        if type(v) is int:  # JSON writes 2.0 as 2 in other languages; bool is not a number here
            return float(v)
        raise error(f"{where} must be float, got {type(v).__name__}")

    return _Reader(frozenset({float}), convert)


def _tuple(where: str, args: tuple[Any, ...], error: type[Exception]) -> _Reader:
    if not args or (len(args) == 2 and args[1] is Ellipsis):  # tuple[X, ...]: any length of X
        return _sequence(where, _reader(where, args[0], error) if args else _ANY, tuple, error)
    items = [_reader(where, a, error) for a in args]  # tuple[X, Y]: exactly that shape

    def fixed(v: Any) -> tuple[Any, ...]:
        if not isinstance(v, list | tuple):
            raise error(f"{where} must be a list")
        if len(v) != len(items):
            raise error(f"{where} must have {len(items)} items, got {len(v)}")
        return tuple(r.read(x) for r, x in zip(items, v, strict=True))

    return _Reader(frozenset(), fixed)


def _list(where: str, args: tuple[Any, ...], error: type[Exception]) -> _Reader:
    return _sequence(where, _reader(where, args[0], error) if args else _ANY, list, error)


def _sequence(where: str, item: _Reader, kind: type, error: type[Exception]) -> _Reader:
    ok, convert = item.ok, item.convert

    def read(v: Any) -> Any:
        if not isinstance(v, list | tuple):
            raise error(f"{where} must be a list")
        if convert is None:
            return kind(v)
        items = [x if type(x) in ok else convert(x) for x in v]
        return tuple(items) if kind is tuple else items

    # A list of anything is taken as it is; a tuple is always made from the JSON list.
    return _Reader(frozenset({list}) if kind is list and convert is None else frozenset(), read)


def _mapping(where: str, args: tuple[Any, ...], error: type[Exception]) -> _Reader:
    value = _reader(where, args[1], error) if len(args) == 2 else _ANY
    ok, convert = value.ok, value.convert

    def read(v: Any) -> Any:
        if not isinstance(v, dict):
            raise error(f"{where} must be an object")
        if convert is None:
            return v
        return {k: x if type(x) in ok else convert(x) for k, x in v.items()}

    return _Reader(frozenset({dict}) if convert is None else frozenset(), read)


_READERS: dict[Any, Callable[[str, tuple[Any, ...], type[Exception]], _Reader]] = {
    str: _exactly(str),
    int: _exactly(int),
    bool: _exactly(bool),
    float: _float,
    tuple: _tuple,
    list: _list,
    dict: _mapping,
}


def _record(where: str, kind: Any, error: type[Exception]) -> Decode:
    def read(v: Any) -> Any:
        if isinstance(v, kind):
            return v
        if not isinstance(v, dict):
            raise error(f"{where} must be an object")
        return kind.from_json(v)

    return read


# --- writing a field --------------------------------------------------------------------------------------
def _encoder(hint: Any) -> Decode | None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _PRIMITIVES:
        return None
    inner: Decode | None
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = _encoder(options[0]) if len(options) == 1 else plain
        return None if inner is None else _none_or(inner)
    if origin is dict or hint is dict:
        inner = _encoder(args[1]) if len(args) == 2 else plain
        return None if inner is None else _each_value(inner)
    variadic = origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis)
    if variadic:
        inner = _encoder(args[0])
        return list if inner is None else _each_item(inner)
    if _is_record_type(hint):
        return _record_json
    return plain  # fixed-shape tuples, Any: by what the value is


def _record_json(value: Any) -> Any:
    return type(value).to_json(value)


def _none_or(inner: Decode) -> Decode:
    return lambda v: None if v is None else inner(v)


def _each_item(inner: Decode) -> Decode:
    return lambda v: [inner(x) for x in v]


def _each_value(inner: Decode) -> Decode:
    return lambda v: {k: inner(x) for k, x in v.items()}


def plain(value: Any) -> Any:
    """A value as plain JSON: a record (anything with the Durable codec's `to_json`) as its dict, a tuple or
    list item by item, a dict value by value.

    Durable payloads go as plain JSON: under the codec's strict typing (AZURE_FUNCTIONS_DURABLE_STRICT_TYPING)
    the worker cannot rebuild a custom object for an activity or orchestration input."""
    if value is None or isinstance(value, str | int | float):
        return value
    to_json = getattr(type(value), "to_json", None)
    if callable(to_json):
        return to_json(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


# --- schema versions ----------------------------------------------------------------------------------------
def with_schema(data: dict[str, Any], version: int) -> dict[str, Any]:
    """A document as written from now on: with its schema version."""
    return {**data, SCHEMA_KEY: version}


def schema_of(data: Mapping[str, Any], newest: int, what: str, error: type[Exception] = RecordError) -> int:
    """The schema version a document was written with: 0 when it has none (written before versions existed).
    One newer than this app reads is refused: writing it back would lose what the newer version meant."""
    version = data.get(SCHEMA_KEY, 0)
    if type(version) is not int or version < 0:
        raise error(f"{what}: schema must be a non-negative integer, got {version!r}")
    if version > newest:
        raise error(
            f"{what} has schema {version}, written by a newer version of this app (this one reads "
            f"up to {newest}): upgrade the app"
        )
    return version


# --- the base class -------------------------------------------------------------------------------------------
class JsonRecord:
    """Base of every record: `to_json()` and `from_json(data)`, driven by the dataclass's fields."""

    __slots__ = ()
    SCHEMA: ClassVar[int | None] = None  # a version written as "schema" (catalog records); None: none
    UNKNOWN_KEYS: ClassVar[str] = "ignore"  # "refuse": a key that names no field is an error
    ERROR: ClassVar[type[Exception]] = RecordError

    def to_json(self) -> dict[str, Any]:
        cls = type(self)
        layout = _LAYOUTS.get(cls) or _layout(cls)
        out: dict[str, Any] = dict(getattr(self, layout.extra)) if layout.extra else {}
        for name, key, omit, encode in layout.writes:
            value = getattr(self, name)
            if omit is not _ALWAYS and value == omit:
                continue
            out[key] = value if encode is None else encode(value)
        if cls.SCHEMA is not None:
            out[SCHEMA_KEY] = cls.SCHEMA
        return out

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise cls.ERROR(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        layout = _LAYOUTS.get(cls) or _layout(cls)
        if cls.SCHEMA is not None:
            version = schema_of(data, cls.SCHEMA, cls.__name__, cls.ERROR)
            if version < cls.SCHEMA:
                data = cls.upgrade(dict(data), version)
        kwargs: dict[str, Any] = {}
        get = data.get
        for name, key, ok, convert, required in layout.reads:
            value = get(key, _ALWAYS)
            if value is _ALWAYS:
                if required:
                    raise cls.ERROR(f"{cls.__name__} is missing field {name!r}")
                continue
            if convert is not None and type(value) not in ok:
                value = convert(value)
            kwargs[name] = value
        if layout.strict:
            unknown = [k for k in data if k not in layout.keys]
            if layout.extra:
                kwargs[layout.extra] = {k: data[k] for k in unknown}
            elif unknown:
                raise cls.ERROR(f"{cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            record = cls(**kwargs)
        except TypeError as exc:
            raise cls.ERROR(f"{cls.__name__}: {exc}") from None
        return record._checked() if layout.checked else record

    @classmethod
    def upgrade(cls, data: dict[str, Any], schema: int) -> dict[str, Any]:
        """Rewrite the JSON of an older schema (0: written before versions) into the current one."""
        return data

    def _checked(self) -> Self:
        """Called on every record read; a class with rules beyond its types checks them here."""
        return self


# --- payloads as orchestrators and activities receive them ---------------------------------------------------
R = TypeVar("R", bound=JsonRecord)


def decode(kind: type[R], value: Any) -> R:
    """A payload as it arrives: the object (the worker's codec rebuilt it), its JSON as a dict or as text
    (strict typing, a hand-made call, the raise_event quirk: text holding JSON), or the Durable codec's
    envelope {"__class__", "__module__", "__data__"} of that class. Anything else is refused (TypeError),
    naming the type expected; a JSON object of the wrong shape raises the record's error."""
    if isinstance(value, kind):
        return value
    for _ in range(2):  # text, or text holding text (double-encoded by the host)
        if not isinstance(value, str | bytes):
            break
        try:
            value = json.loads(value)
        except ValueError:
            raise TypeError(f"expected a {kind.__name__} payload, got text that is not JSON") from None
    if isinstance(value, dict):
        if value.keys() >= ENVELOPE_KEYS:
            if value["__class__"] != kind.__name__:
                raise TypeError(
                    f"expected a {kind.__name__} payload, got the envelope of "
                    f"{value['__module__']}.{value['__class__']}"
                )
            value = value["__data__"]
        return kind.from_json(value)
    raise TypeError(f"expected a {kind.__name__} payload, got {type(value).__name__}")


def alias_modules(moved: Mapping[str, str]) -> None:
    """Let a former module path name the module that holds its classes now.

    The Durable codec writes `type(obj).__module__` into every envelope it stores in orchestration history, and
    on replay resolves it in `sys.modules` only (it never imports). A run started before a module moved replays
    envelopes naming the old path: each old path becomes an alias of the new module, or, where a package now
    has that name, the package answers the moved record classes' names from the new module."""
    for old, new in moved.items():
        target = importlib.import_module(new)
        current = sys.modules.get(old)
        if current is None and _exists(old):
            current = importlib.import_module(old)
        if current is None or current is target:
            sys.modules[old] = target
        else:
            _answer_from(current, target)


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _answer_from(module: types.ModuleType, target: types.ModuleType) -> None:
    """module.X for a record class X of target (PEP 562 __getattr__), after module's own names."""
    previous = module.__dict__.get("__getattr__")

    def __getattr__(name: str) -> Any:
        found = getattr(target, name, None)
        if isinstance(found, type) and callable(getattr(found, "from_json", None)):
            return found
        if previous is not None:
            return previous(name)
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
