"""Find an app's functions (orchestrators, activities, HTTP routes, timers); call them as the worker does."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import re
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

# get_functions() may be called once per app object (its name registry refuses a second build): cache.
_FUNCTIONS: dict[int, tuple[Any, list]] = {}
_FUNCTIONS_LOCK = threading.Lock()


def app_functions(app: Any) -> list:
    with _FUNCTIONS_LOCK:
        cached = _FUNCTIONS.get(id(app))
        if cached is None or cached[0] is not app:
            cached = (app, app.get_functions())
            _FUNCTIONS[id(app)] = cached
        return cached[1]


def find_app(target: str | ModuleType | Any) -> tuple[Any, ModuleType | None]:
    """(FunctionRegister, its module) for `module`, `module:attribute`, a module, or an app object."""
    module: ModuleType | None = None
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        target = getattr(module, attr) if attr else module
    if isinstance(target, ModuleType):
        module = target
        apps = [v for v in vars(target).values() if isinstance(v, func.FunctionRegister)]
        if len(apps) != 1:
            raise ValueError(
                f"module {target.__name__} defines {len(apps)} function apps; "
                "expected one (or name it as module:attribute)"
            )
        target = apps[0]
    if not isinstance(target, func.FunctionRegister):
        raise TypeError(f"{target!r} is not a function app")
    if module is None:
        module = sys.modules.get(getattr(target, "__module__", ""), None)
    return target, module


class _Context(func.Context):
    """The `context` argument the Python worker passes to functions that declare one."""

    def __init__(self, function_name: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._tls = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:
        return self._tls

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


@dataclass
class Route:
    """An HTTP-triggered function and its compiled route template."""

    name: str
    template: str
    methods: set[str] | None
    pattern: re.Pattern
    fn: Callable
    arg_name: str
    client_arg: str | None

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path.strip("/"))
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


@dataclass
class Timer:
    name: str
    schedule: str
    run_on_startup: bool
    fn: Callable
    arg_name: str
    client_arg: str | None


@dataclass
class Registry:
    """An app's functions by kind, named as the extension registers them."""

    orchestrators: dict[str, Callable] = field(default_factory=dict)
    activities: dict[str, tuple[Callable, str]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    timers: dict[str, Timer] = field(default_factory=dict)

    @classmethod
    def load(cls, app: Any) -> Registry:
        reg = cls()
        for fn in app_functions(app):
            trigger = fn.get_trigger()
            user = fn.get_user_function()
            client = next((b.name for b in fn.get_bindings() if b.type == "durableClient"), None)
            name = fn.get_function_name()
            if trigger.type == "orchestrationTrigger":
                reg.orchestrators[getattr(trigger, "orchestration", None) or name] = user
            elif trigger.type == "activityTrigger":
                reg.activities[getattr(trigger, "activity", None) or name] = (user, trigger.name)
            elif trigger.type == "httpTrigger":
                template = trigger.route or name
                methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods} if trigger.methods else None
                reg.routes.append(Route(name, template, methods, compile_route(template), user, trigger.name, client))
            elif trigger.type == "timerTrigger":
                on_startup = bool(getattr(trigger, "run_on_startup", False))
                reg.timers[name] = Timer(name, trigger.schedule, on_startup, user, trigger.name, client)
        # Literal routes win over parameterised ones, as ASP.NET's route ordering does.
        reg.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        return reg

    def route_for(self, path: str, method: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, route params, path matched at all) for a path under /api."""
        path_matched = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            path_matched = True
            if route.methods is None or method.upper() in route.methods:
                return route, params, True
        return None, {}, path_matched


_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}


def compile_route(template: str) -> re.Pattern:
    """A Functions route template (`a/{b}/{c:int?}/{*rest}`) as a case-insensitive regex."""
    parts = []
    for segment in template.strip("/").split("/"):
        token = re.fullmatch(r"\{(\*?)([A-Za-z_]\w*)(?::([A-Za-z]+))?(\?)?\}", segment)
        if token is None:
            parts.append((re.escape(segment), False))
            continue
        star, name, constraint, optional = token.groups()
        body = ".*" if star else _CONSTRAINTS.get((constraint or "").lower(), "[^/]+")
        parts.append((f"(?P<{name}>{body})", bool(optional or star)))
    regex = ""
    for n, (body, optional) in enumerate(parts):
        sep = "/" if n else ""
        regex += f"(?:{sep}{body})?" if optional else f"{sep}{body}"
    return re.compile(regex, re.IGNORECASE)


def decode_activity_input(text: str | None) -> Any:
    """Activity input exactly as the worker's ActivityTriggerConverter decodes it."""
    datum = meta.Datum(type="string", value=text or "null")
    return ActivityTriggerConverter.decode(datum, trigger_metadata={})


def encode_activity_output(value: Any) -> str:
    return ActivityTriggerConverter.encode(value, expected_type=None).value


def call_kwargs(fn: Callable, values: dict[str, Any], function_name: str) -> dict[str, Any]:
    """Keyword arguments for a user function: its bindings, plus `context` when it asks for one."""
    params = inspect.signature(fn).parameters
    kwargs = dict(values)
    if "context" in params and "context" not in kwargs:
        kwargs["context"] = _Context(function_name)
    return kwargs


def run_user_function(fn: Callable, kwargs: dict[str, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Call a function from a worker thread; coroutines run on the shared functions loop, as in the worker."""
    if inspect.iscoroutinefunction(fn):
        return asyncio.run_coroutine_threadsafe(fn(**kwargs), loop).result()
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        return asyncio.run_coroutine_threadsafe(_await(result), loop).result()
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def invoke_async(fn: Callable, kwargs: dict[str, Any]) -> Any:
    """Call a function on the functions loop; a sync one runs in the loop's thread pool, as in the worker."""
    if inspect.iscoroutinefunction(fn):
        return await fn(**kwargs)
    result = await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, **kwargs))
    if inspect.isawaitable(result):
        result = await result
    return result
