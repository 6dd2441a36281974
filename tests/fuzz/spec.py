"""docs/openapi.yaml as the fuzz tests read it, and the app's HTTP functions as the worker indexes them.

- `operations()`: every (method, path) the file describes, $refs resolved.
- `app_routes()`: every HTTP-triggered function of function_app, built as tools/indexcheck builds them.
- `schema_problems(schema, value)`: a small checker for the JSON Schema subset the file uses; a keyword it does
  not know is an error, so the file cannot use one that would silently pass.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import azure.functions as func
import yaml

from tests.paths import REPO

SPEC_PATH = REPO / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ANNOTATIONS = {"description", "title", "example", "format"}
_KEYWORDS = {
    "$ref",
    "type",
    "nullable",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minLength",
    *_ANNOTATIONS,
}


@cache
def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow a local $ref (#/a/b/c) until the node is not one."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"unsupported or circular $ref {ref!r}")
        seen.add(ref)
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str  # upper case
    path: str  # as in the file: /backups/{cluster}/{filer}
    parameters: tuple[dict[str, Any], ...]
    responses: dict[str, dict[str, Any]]
    anonymous: bool

    def params(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.parameters if p["in"] == where]

    def response_schema(self, status: int) -> dict[str, Any] | None:
        """The JSON schema of a documented status's body (None: no JSON body); KeyError: not documented."""
        content = self.responses[str(status)].get("content") or {}
        media = content.get("application/json")
        return None if media is None else media.get("schema", {})

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.operation_id})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints a falsifying example
        printer.text(str(self))


def operations(spec: dict[str, Any] | None = None) -> list[Operation]:
    spec = spec if spec is not None else load_spec()
    out = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = tuple(resolve(spec, p) for p in (*shared, *op.get("parameters", [])))
            responses = {str(code): resolve(spec, r) for code, r in op["responses"].items()}
            security = op.get("security", spec.get("security", []))
            out.append(
                Operation(op.get("operationId", ""), method.upper(), path, params, responses, anonymous=security == [])
            )
    return out


def route_prefix() -> str:
    """host.json's extensions.http.routePrefix (the host's default is "api")."""
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    return str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api")).strip("/")


def template_path(route: str) -> str:
    """A Functions route template as an OpenAPI path: constraints, defaults and catch-all stars dropped."""
    return "/" + re.sub(r"\{\*{0,2}([A-Za-z_]\w*)[^}]*\}", r"{\1}", route.strip("/"))


@dataclass(frozen=True)
class AppRoute:
    function: str
    method: str
    path: str
    auth_level: str  # ANONYMOUS, FUNCTION, ADMIN

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.function}, auth {self.auth_level})"


def app_routes(module_name: str = "function_app") -> list[AppRoute]:
    """Every (method, path) an HTTP-triggered function of the app answers, as the worker builds them
    (tools/indexcheck does the same): one entry per allowed method; no methods means every method."""
    module = importlib.import_module(module_name)
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    assert len(apps) == 1, f"{module_name} defines {len(apps)} function apps"
    app = apps[0]
    out = []
    for builder in app._function_builders:
        fn = builder.build(app.auth_level)
        trigger = fn.get_trigger()
        if trigger is None or trigger.type != "httpTrigger":
            continue
        methods = (
            [getattr(m, "value", str(m)).upper() for m in trigger.methods]
            if trigger.methods
            else [m.upper() for m in METHODS]
        )
        level = getattr(trigger.auth_level, "name", str(trigger.auth_level)).upper()
        path = template_path(trigger.route or fn.get_function_name())
        out.extend(AppRoute(fn.get_function_name(), m, path, level) for m in methods)
    return out


# --- responses ---------------------------------------------------------------------------------------------


def schema_problems(spec: dict[str, Any], schema: Any, value: Any, where: str = "body") -> list[str]:
    """Where value does not match schema (the subset of JSON Schema docs/openapi.yaml uses)."""
    schema = resolve(spec, schema)
    if unknown := set(schema) - _KEYWORDS:
        raise ValueError(f"{where}: the checker does not know schema keywords {sorted(unknown)}")
    if value is None and schema.get("nullable") is True:  # OpenAPI 3.0: null besides the type
        return []
    kind = schema.get("type")
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if kind in kinds and not isinstance(value, kinds[kind]):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    if kind in ("integer", "number") and (isinstance(value, bool) or not isinstance(value, int | float)):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    if kind is not None and kind not in (*kinds, "integer", "number"):
        raise ValueError(f"{where}: unknown type {kind!r}")
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        problems.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        problems += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties", True) is False:
            problems += [f"{where}.{k}: not described" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                problems += schema_problems(spec, sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += schema_problems(spec, schema["items"], item, f"{where}[{i}]")
    return problems
