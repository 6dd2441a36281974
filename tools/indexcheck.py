"""Offline check that the app indexes as the Functions Python worker and host would: bindings, routes, timers.

`python -m tools.indexcheck [module]` imports the app module (default `function_app`) the way the worker's
loader does, builds every function, and applies the worker's parameter/annotation rules plus the host-side
rules that matter here (HTTP routes and methods, NCRONTAB schedules, durable names). Exit 2 on any problem.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import os
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions._thirdparty import typing_inspect
from azure.functions.decorators.core import BindingDirection
from azure.functions.decorators.http import HttpMethod, HttpTrigger

from shared.core import ncrontab

EXIT_PROBLEMS = 2
# trigger type -> the trigger attribute that overrides the durable name
_DURABLE_TRIGGERS = {
    "orchestrationTrigger": "orchestration",
    "activityTrigger": "activity",
    "entityTrigger": "entity_name",
}
# What the orchestration context schedules by name, and the kind of function each call must name.
_DURABLE_CALLS = {
    "call_activity": "activityTrigger",
    "call_activity_with_retry": "activityTrigger",
    "call_sub_orchestrator": "orchestrationTrigger",
    "call_sub_orchestrator_with_retry": "orchestrationTrigger",
    "start_new": "orchestrationTrigger",
}
_ROUTE_PARAM = re.compile(r"^(\*{0,2})([A-Za-z_][A-Za-z0-9_]*)((?::[A-Za-z]+(?:\([^)]*\))?)*)(\?|=[^{}]*)?$")
_CONSTRAINTS = {
    "int",
    "bool",
    "datetime",
    "decimal",
    "double",
    "float",
    "guid",
    "long",
    "minlength",
    "maxlength",
    "length",
    "min",
    "max",
    "range",
    "alpha",
    "regex",
    "required",
    "alphanumeric",
}
_TIMESPAN = re.compile(r"^\d+(\.\d+)?:\d{2}(:\d{2})?$|^\d{1,2}:\d{2}:\d{2}$")
_SETTING = re.compile(r"^%([A-Za-z0-9_.:-]+)%$")


@dataclass(frozen=True)
class Finding:
    """One problem, with the function it belongs to ('app' for app-level ones)."""

    function: str
    message: str

    def __str__(self) -> str:
        return f"{self.function}: {self.message}"


def check_app(module_name: str = "function_app", settings: Mapping[str, str] | None = None) -> list[Finding]:
    """Every indexing problem of the app in module_name (empty when the worker and host would accept it)."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is exactly what the worker would report
        return [Finding("app", f"importing {module_name} failed: {type(exc).__name__}: {exc}")]
    apps = _find_apps(module)
    if len(apps) != 1:
        what = "no" if not apps else f"{len(apps)}"
        return [
            Finding(
                "app",
                f"{module_name} defines {what} top-level FunctionApp/DFApp instances; the worker needs exactly one",
            )
        ]
    app = apps[0]
    findings: list[Finding] = []
    functions = []
    for builder in app._function_builders:
        try:
            functions.append(builder.build(app.auth_level))
        except ValueError as exc:
            findings.append(Finding(_name(builder._function), str(exc)))
    names = [_name(f) for f in functions]
    for name in sorted({n for n in names if names.count(n) > 1}):
        findings.append(Finding(name, f"{names.count(name)} functions share this name; names must be unique"))
    env = dict(settings if settings is not None else _default_settings(module))
    for fn in functions:
        findings.extend(Finding(_name(fn), m) for m in _check_function(fn, env))
    findings.extend(_check_routes(functions))
    findings.extend(_check_durable_names(functions))
    if not findings:
        findings.extend(_worker_indexing(app))
    return findings


def _name(fn: func.Function) -> str:
    """The function's name: the SDK's getter is Optional, but a function always has one (its Python name)."""
    return fn.get_function_name() or fn.get_user_function().__name__


def _find_apps(module: Any) -> list[func.FunctionRegister]:
    """What the worker's loader finds: module attributes that are FunctionRegister instances."""
    found = (getattr(module, name, None) for name in dir(module))
    return [obj for obj in found if isinstance(obj, func.FunctionRegister)]


def _direction(binding: Any) -> str:
    direction = binding.direction
    if isinstance(direction, int) and not hasattr(direction, "name"):
        return BindingDirection(direction).name
    return getattr(direction, "name", str(direction)).upper()


def _worker_indexing(app: func.FunctionRegister) -> list[Finding]:
    """The worker's own call; get_functions() works once per app object, so start from a fresh state."""
    saved, app.functions_bindings = app.functions_bindings, None
    try:
        for fn in app.get_functions():
            json.loads(fn.get_function_json())
    except (ValueError, TypeError, KeyError) as exc:
        return [Finding("app", f"the worker's get_functions() fails: {exc}")]
    finally:
        app.functions_bindings = saved
    return []


def _default_settings(module: Any) -> dict[str, str]:
    """Settings for %NAME% expressions: local.settings(.example).json beside the app, then the environment."""
    values: dict[str, str] = {}
    root = Path(getattr(module, "__file__", "") or ".").resolve().parent
    for name in ("local.settings.example.json", "local.settings.json"):
        path = root / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            values.update({k: str(v) for k, v in (data.get("Values") or {}).items()})
    values.update(os.environ)
    return values


def _check_function(fn: func.Function, env: Mapping[str, str]) -> Iterator[str]:
    bindings = fn.get_bindings()
    triggers = [b for b in bindings if (b.type or "").endswith("Trigger") or b.type == "trigger"]
    if len(triggers) != 1:
        yield f"has {len(triggers)} triggers; a function needs exactly one"
    yield from _check_params(fn)
    trigger = fn.get_trigger()
    if trigger is None:
        return
    if trigger.type == "httpTrigger":
        yield from _check_http(fn, trigger)
    elif trigger.type == "timerTrigger":
        yield from _check_timer(trigger, env)


# --- the worker's parameter and annotation rules ----------------------------------------------------------


def _check_params(fn: func.Function) -> Iterator[str]:
    user = fn.get_user_function()
    try:
        params = dict(inspect.signature(user).parameters)
        hints = typing.get_type_hints(user)
    except (TypeError, ValueError, NameError) as exc:
        yield f"its signature or annotations cannot be read: {exc}"
        return
    bound = {}
    for b in fn.get_bindings():
        direction = _direction(b)
        if direction == "INOUT":
            yield f"binding {b.name!r} has direction inout, which Python functions do not support"
        if b.name == "$return":
            if direction != "OUT":
                yield 'the "$return" binding must have direction out'
            continue
        bound[b.name] = (b, direction)
    if "context" in params and "context" not in bound:
        anno = hints.get("context")
        if anno is not None and getattr(anno, "__name__", "") != "Context":
            yield f"parameter 'context' must be azure.functions.Context, got {anno!r}"
        params.pop("context")
    if extra := sorted(set(params) - set(bound)):
        yield f"parameters {extra} are declared in Python but bound to nothing (bindings: {sorted(bound)})"
    if missing := sorted(set(bound) - set(params)):
        yield f"bindings {missing} have no Python parameter of that name (parameters: {sorted(params)})"
    for name in sorted(set(params) & set(bound)):
        binding, direction = bound[name]
        yield from _check_annotation(name, binding.type, direction == "OUT", name in hints, hints.get(name))
    returns = [b for b in fn.get_bindings() if b.name == "$return"]
    if returns and "return" in hints:
        yield from _check_return(returns[0].type, hints["return"])


def _check_return(binding_type: str | None, anno: Any) -> Iterator[str]:
    """The worker checks an explicit $return binding against the return annotation (no str/bytes shortcut)."""
    if _is_out(anno):
        yield "the return annotation must not be azure.functions.Out"
        return
    if not isinstance(anno, type):
        yield f"the return annotation {anno!r} is not a type"
        return
    converter = func.meta.get_binding_registry().get(binding_type)
    ok = (
        converter.check_output_type_annotation(anno)
        if converter is not None
        else issubclass(anno, (str, bytes, bytearray))
    )
    if not ok:
        yield f"the return annotation {anno.__name__} does not match the {binding_type!r} output binding"


def _check_annotation(name: str, binding_type: str | None, is_out: bool, annotated: bool, anno: Any) -> Iterator[str]:
    is_param_out = annotated and _is_out(anno)
    if is_out and annotated and not is_param_out:
        yield f"binding {name!r} is an output binding but its annotation is not azure.functions.Out[...]"
        return
    if not is_out and is_param_out:
        yield f"binding {name!r} is an input binding but its annotation is azure.functions.Out"
        return
    if not annotated:
        return
    pytype = typing_inspect.get_args(anno)[0] if is_param_out else anno
    if not isinstance(pytype, type) and not typing_inspect.is_generic_type(pytype):
        yield f"binding {name!r} has a non-type annotation {anno!r}"
        return
    converter = func.meta.get_binding_registry().get(binding_type)
    implicit = bool(converter and getattr(converter, "has_implicit_output", lambda: False)())
    if pytype in (str, bytes) and not implicit:
        converter = None  # the worker treats str/bytes as the generic binding
    try:
        if converter is None:
            ok = issubclass(pytype, (str, bytes, bytearray) if is_out else (str, bytes))
        elif is_param_out:
            ok = converter.check_output_type_annotation(pytype)
        else:
            ok = converter.check_input_type_annotation(pytype)
    except TypeError:
        ok = False
    if not ok:
        shown = getattr(pytype, "__name__", repr(pytype))
        yield f"binding {name!r} of type {binding_type!r} does not accept the annotation {shown}"


def _is_out(anno: Any) -> bool:
    origin = typing_inspect.get_origin(anno) if typing_inspect.is_generic_type(anno) else anno
    return isinstance(origin, type) and origin.__name__ == "Out"


# --- HTTP ----------------------------------------------------------------------------------------------


def _check_http(fn: func.Function, trigger: Any) -> Iterator[str]:
    route = trigger.route or ""
    params, problems = parse_route(route)
    yield from problems
    methods = trigger.methods
    if methods is not None:
        names = [getattr(m, "name", str(m)).upper() for m in methods]
        if not names:
            yield "methods is an empty list, so the function answers no request (omit it to allow all)"
        if bad := [m for m in names if m not in HttpMethod.__members__]:
            yield f"methods {bad} are not HTTP methods the host accepts ({', '.join(HttpMethod.__members__)})"
        if len(set(names)) != len(names):
            yield f"methods {names} lists a method twice"
    if not problems:
        used = _route_params_read(_source_function(fn.get_user_function()))
        if missing := sorted(used - set(params)):
            yield f"reads route parameters {missing} that route {route!r} does not declare"


def parse_route(route: str) -> tuple[list[str], list[str]]:
    """The parameter names of an ASP.NET-style route template, and its syntax problems."""
    problems: list[str] = []
    if route.startswith(("/", "~")):
        problems.append(f"route {route!r} must not start with '/' or '~' (it is relative to routePrefix)")
    segments = route.strip("/").split("/")
    if any(s == "" for s in segments):
        problems.append(f"route {route!r} has an empty segment")
    names: list[str] = []
    for index, segment in enumerate(segments):
        text = segment.replace("{{", "").replace("}}", "")
        parts = re.findall(r"\{([^{}]*)\}", text)
        if re.sub(r"\{[^{}]*\}", "", text).count("{") or re.sub(r"\{[^{}]*\}", "", text).count("}"):
            problems.append(f"route {route!r}: unbalanced braces in segment {segment!r}")
            continue
        if "?" in re.sub(r"\{[^{}]*\}", "", text):
            problems.append(f"route {route!r}: '?' is only allowed inside a parameter")
        for part in parts:
            m = _ROUTE_PARAM.match(part)
            if not m:
                problems.append(f"route {route!r}: {{{part}}} is not a valid parameter")
                continue
            star, name, constraints, tail = m.groups()
            for c in re.findall(r":([A-Za-z]+)", constraints):
                if c.lower() not in _CONSTRAINTS:
                    problems.append(f"route {route!r}: unknown constraint {c!r} on {{{name}}}")
            last = index == len(segments) - 1
            if (star or tail == "?") and not last:
                problems.append(f"route {route!r}: {{{part}}} may only be in the last segment")
            if name.lower() in (n.lower() for n in names):
                problems.append(f"route {route!r}: parameter {name!r} appears twice")
            names.append(name)
    return names, problems


def _route_params_read(source: Callable[..., Any] | None) -> set[str]:
    """Names the function reads as X.route_params['n'] or X.route_params.get('n')."""
    tree = _ast_of(source)
    out: set[str] = set()
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Subscript) and _is_route_params(node.value):
            key = node.slice
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_route_params(node.func.value)
            and node.args
        ):
            key = node.args[0]
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            out.add(key.value)
    return out


def _is_route_params(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "route_params"


def _check_routes(functions: list[func.Function]) -> Iterator[Finding]:
    """Two functions on the same route template with a method in common are ambiguous to the host's router."""
    seen: list[tuple[str, set[str], str]] = []  # (template shape, methods, function)
    for fn in functions:
        trigger = fn.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        shape = re.sub(r"\{[^{}]*\}", "{}", (trigger.route or "").strip("/").lower())
        methods = (
            set(HttpMethod.__members__)
            if trigger.methods is None
            else {getattr(m, "name", str(m)).upper() for m in trigger.methods}
        )
        for other_shape, other_methods, other in seen:
            if shape == other_shape and methods & other_methods:
                common = ", ".join(sorted(methods & other_methods))
                yield Finding(_name(fn), f"route {trigger.route!r} ({common}) is also served by {other}")
        seen.append((shape, methods, _name(fn)))


# --- timers --------------------------------------------------------------------------------------------


def _check_timer(trigger: Any, env: Mapping[str, str]) -> Iterator[str]:
    schedule = trigger.schedule or ""
    if m := _SETTING.match(schedule):
        if m.group(1) not in env:
            yield (
                f"schedule {schedule!r} names app setting {m.group(1)}, which is not set (set it in the "
                "environment or local.settings.json)"
            )
            return
        schedule = env[m.group(1)]
    if _TIMESPAN.match(schedule.strip()):
        yield f"schedule {schedule!r} is a TimeSpan, which needs an App Service plan; use NCRONTAB"
        return
    try:
        ncrontab.parse(schedule, host_strict=True)
    except ValueError as exc:
        yield f"schedule is not NCRONTAB the host accepts: {exc}"
    if getattr(trigger, "run_on_startup", False):
        yield "run_on_startup fires on every start and scale-out; the DR schedule must not (leave it off)"


# --- durable names -------------------------------------------------------------------------------------


def _durable_name(fn: func.Function) -> tuple[str, str] | None:
    trigger = fn.get_trigger()
    if trigger is None or trigger.type not in _DURABLE_TRIGGERS:
        return None
    return trigger.type, getattr(trigger, _DURABLE_TRIGGERS[trigger.type], None) or _name(fn)


def _check_durable_names(functions: list[func.Function]) -> Iterator[Finding]:
    registered: dict[str, set[str]] = {}
    for fn in functions:
        if named := _durable_name(fn):
            kind, name = named
            if name in registered.get(kind, set()):
                yield Finding(_name(fn), f"durable name {name!r} is used by two {kind}s")
            registered.setdefault(kind, set()).add(name)
    for fn in functions:
        user = fn.get_user_function()
        source = getattr(user, "orchestrator_function", None) or getattr(user, "client_function", None)
        for call, target, line in _durable_calls(source):
            kind = _DURABLE_CALLS[call]
            if target not in registered.get(kind, set()):
                known = ", ".join(sorted(registered.get(kind, set()))) or "none"
                yield Finding(
                    _name(fn),
                    f"line {line}: {call}({target!r}) names no registered {kind} function (registered: {known})",
                )


def _durable_calls(source: Callable[..., Any] | None) -> Iterator[tuple[str, str, int]]:
    """(method, target name, line) for context.call_activity('x', ...) and the like with a resolvable name."""
    tree = _ast_of(source)
    if tree is None or source is None:
        return
    first_line = source.__code__.co_firstlineno - 1
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _DURABLE_CALLS
            and node.args
        ):
            continue
        target = _resolve_name(node.args[0], source.__globals__)
        if target is not None:
            yield node.func.attr, target, first_line + node.lineno


def _resolve_name(node: ast.AST, scope: Mapping[str, Any]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    value: Any = None
    if isinstance(node, ast.Name):
        value = scope.get(node.id)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        value = getattr(scope.get(node.value.id), node.attr, None)
    if isinstance(value, str):
        return value
    inner = getattr(value, "_function", None)  # a FunctionBuilder: the SDK sends the Python function's name
    return getattr(inner, "_name", None) if inner is not None else None


def _source_function(user: Callable[..., Any]) -> Callable[..., Any] | None:
    return getattr(user, "client_function", None) or getattr(user, "orchestrator_function", None) or user


def _ast_of(fn: Callable[..., Any] | None) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn))) if fn is not None else None
    except (OSError, TypeError, SyntaxError):
        return None


# --- command line --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, command_name: str = "indexcheck") -> None:
    parser.add_argument(
        "module", nargs="?", default="function_app", help="the app module to index (default: function_app)"
    )


def main(args: argparse.Namespace) -> int:
    findings = check_app(args.module)
    for finding in findings:
        print(finding)
    if findings:
        print(f"index check failed: {len(findings)} problem{'s' if len(findings) != 1 else ''}")
        return EXIT_PROBLEMS
    app = _find_apps(sys.modules[args.module])[0]
    names = sorted(_name(b._function) for b in app._function_builders)
    print(f"index OK: {len(names)} functions ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m tools.indexcheck", description=__doc__)
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
