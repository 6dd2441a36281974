"""The one record codec: field options, schema versions and upgrades, unknown keys, module aliases."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from azure.functions._durable_functions import _deserialize_custom_object, _serialize_custom_object

from shared.core.codec import JsonRecord, RecordError, alias_modules, json_options, plain


@dataclass(frozen=True)
class Part(JsonRecord):
    name: str
    size: float = 0.0


@dataclass
class Doc(JsonRecord):
    SCHEMA: ClassVar[int | None] = 2

    title: str = field(metadata=json_options(key="t"))
    parts: dict[str, Part] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    kind: str = field(default="plain", metadata=json_options(omit="plain"))
    cache: str | None = field(default=None, metadata=json_options(skip=True))
    extra: dict[str, Any] = field(default_factory=dict, metadata=json_options(extra=True))

    @classmethod
    def upgrade(cls, data: dict[str, Any], schema: int) -> dict[str, Any]:
        if schema < 2 and "name" in data:  # schema 0 and 1 called the title "name"
            data["t"] = data.pop("name")
        return data


@dataclass(frozen=True)
class Strict(JsonRecord):
    UNKNOWN_KEYS: ClassVar[str] = "refuse"
    ERROR: ClassVar[type[Exception]] = KeyError

    a: int


def test_field_options_and_the_durable_codec_convention() -> None:
    doc = Doc(title="t1", parts={"p": Part("p", 2)}, tags=["x"], cache="not written")
    data = doc.to_json()
    assert data == {"t": "t1", "parts": {"p": {"name": "p", "size": 2}}, "tags": ["x"], "schema": 2}
    assert Doc.from_json(json.loads(json.dumps(data))) == Doc(title="t1", parts={"p": Part("p", 2.0)}, tags=["x"])
    assert Doc.from_json({**data, "kind": "rich"}).to_json()["kind"] == "rich"
    # Durable's codec calls type(obj).to_json(obj) and class_.from_json(data)
    assert _deserialize_custom_object(_serialize_custom_object(Part("p", 1.5))) == Part("p", 1.5)
    assert Part.to_json(Part("q")) == Part("q").to_json() == {"name": "q", "size": 0.0}


def test_unknown_keys_are_kept_refused_or_ignored() -> None:
    doc = Doc.from_json({"t": "t1", "schema": 2, "added_later": [1]})
    assert doc.extra == {"added_later": [1]} and doc.to_json()["added_later"] == [1]
    assert Part.from_json({"name": "p", "size": 1, "other": 0}) == Part("p", 1.0)
    with pytest.raises(KeyError, match="unknown field"):
        Strict.from_json({"a": 1, "b": 2})
    with pytest.raises(KeyError, match=r"Strict\.a must be int, got bool"):
        Strict.from_json({"a": True})


def test_schema_versions_upgrade_older_records_and_refuse_newer_ones() -> None:
    assert Doc.from_json({"name": "old"}).title == "old"  # no "schema": version 0
    assert Doc.from_json({"name": "old", "schema": 1}).title == "old"
    assert Doc.from_json({"t": "new", "schema": 2}).title == "new"
    with pytest.raises(RecordError, match="schema 3, written by a newer version"):
        Doc.from_json({"t": "new", "schema": 3})


def test_types_are_checked_and_named() -> None:
    with pytest.raises(RecordError, match=r"Doc\.tags must be a list"):
        Doc.from_json({"t": "x", "tags": "a", "schema": 2})
    with pytest.raises(RecordError, match=r"Doc\.tags must be str, got int"):
        Doc.from_json({"t": "x", "tags": [1], "schema": 2})
    with pytest.raises(RecordError, match=r"Doc\.parts must be an object"):
        Doc.from_json({"t": "x", "parts": [], "schema": 2})
    with pytest.raises(RecordError, match="Part is missing field 'name'"):
        Doc.from_json({"t": "x", "parts": {"p": {}}, "schema": 2})
    with pytest.raises(RecordError, match="Part must be a JSON object, got list"):
        Part.from_json([])


def test_a_field_left_out_needs_a_default() -> None:
    @dataclass(frozen=True)
    class Bad(JsonRecord):
        a: str = field(metadata=json_options(omit=""))

    with pytest.raises(TypeError, match="needs a default"):
        Bad("x").to_json()


def test_plain_turns_records_tuples_and_dicts_into_json() -> None:
    assert plain({"k": (Part("p"), 1)}) == {"k": [{"name": "p", "size": 0.0}, 1]}


def test_alias_modules_lets_a_former_path_name_the_moved_module() -> None:
    envelope = {"__class__": "Part", "__module__": "tests_former_module", "__data__": {"name": "p"}}
    with pytest.raises(ValueError, match="not loaded"):
        _deserialize_custom_object(dict(envelope))
    alias_modules({"tests_former_module": __name__})
    try:
        assert _deserialize_custom_object(dict(envelope)) == Part("p")
    finally:
        del sys.modules["tests_former_module"]


def test_alias_modules_on_a_name_a_package_now_has() -> None:
    package = types.ModuleType("tests_package_now")
    sys.modules["tests_package_now"] = package
    try:
        alias_modules({"tests_package_now": __name__})
        assert package.Part is Part  # a record class of the new module
        with pytest.raises(AttributeError, match="no attribute 'json'"):
            package.json  # noqa: B018 - anything else is not answered
    finally:
        del sys.modules["tests_package_now"]
