"""The runner's HTTP host on loopback: the Durable management API, its webhooks, and the app's /api routes."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import azure.functions as func
from aiohttp import web

from devstack.durable.functions import call_kwargs, invoke_async
from devstack.durable.protocol import parse_ts
from devstack.durable.store import ConflictError
from devstack.stack.ports import LOOPBACK

if TYPE_CHECKING:
    from devstack.durable.runner import Runner

log = logging.getLogger("devstack.durable")

RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
ADMIN_PREFIX = "/admin/functions/"


def _bool(query: Any, name: str, default: bool) -> bool:
    value = (query.get(name) or "").strip().lower()
    return {"true": True, "false": False}.get(value, default)


def _error(status: int, message: str, exception: str | None = None) -> web.Response:
    """The shape of ASP.NET's CreateErrorResponse (HttpError) the host answers with."""
    body: dict[str, Any] = {"Message": message}
    if exception is not None:
        body.update(ExceptionMessage=exception, ExceptionType="System.ArgumentException")
    return web.json_response(body, status=status)


# DTFx's exception for a start the dedupe statuses refuse, and where the Azure Storage provider throws it.
ALREADY_EXISTS_TYPE = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"
_ALREADY_EXISTS_TRACE = (
    "   at DurableTask.AzureStorage.AzureStorageOrchestrationService.CreateTaskOrchestrationAsync("
    "TaskMessage creationMessage, OrchestrationStatus[] dedupeStatuses)\r\n"
    "   at DurableTask.Core.TaskHubClient.InternalCreateOrchestrationInstanceWithRaisedEventAsync(...)\r\n"
    "   (the local Durable runner's stand-in for the host's stack trace)"
)


def already_exists(exc: ConflictError) -> web.Response:
    """What HttpApiHandler answers when a start hits a protected instance: its catch-all 500, carrying the
    exception (the SDK client's start_new then raises Exception with this dict as its argument)."""
    body = {
        "Message": "Something went wrong while processing your request",
        "ExceptionMessage": str(exc),
        "ExceptionType": ALREADY_EXISTS_TYPE,
        "StackTrace": _ALREADY_EXISTS_TRACE,
    }
    return web.json_response(body, status=500)


class HttpHost:
    """aiohttp on its own thread and loop, so a busy function can never stall status polling."""

    def __init__(self, runner: Runner, port: int = 0) -> None:
        self.runner = runner
        self.port = port
        prefix = runner.host.route_prefix.strip("/")
        self.api_prefix = f"/{prefix}/" if prefix else "/"
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="durable-http", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return f"http://{LOOPBACK}:{self.port}"

    async def _open(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # ---- routing ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        routes = (
            (RPC_PREFIX, self._management),
            (WEBHOOK_PREFIX, self._webhook),
            (ADMIN_PREFIX, self._admin_invoke),
            (self.api_prefix, self._app_route),
        )
        for prefix, handler in routes:
            if path.startswith(prefix):
                try:
                    return await handler(request, path[len(prefix) :])
                except Exception:
                    log.exception("request %s %s failed in the local host", request.method, path)
                    return _error(500, "Something went wrong while processing your request")
        return web.Response(status=404)

    async def _webhook(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Every route under /runtime/webhooks/durabletask/ wants the system key, as the host's extension
        webhooks do: `code=` in the query (what the binding's URLs carry) or the x-functions-key header.
        It is checked before anything else, so a request without it learns nothing and changes nothing.
        The RPC listener (/durabletask/) needs no key: on the host it is reachable from the worker only."""
        key = self.runner.system_key.encode()
        given = [v.encode() for v in (request.query.get("code"), request.headers.get("x-functions-key")) if v]
        if not any(hmac.compare_digest(v, key) for v in given):
            return web.Response(status=401, text="the webhook needs the system key (code=...)")
        return await self._management(request, rest)

    async def _management(self, request: web.Request, rest: str) -> web.StreamResponse:
        """HttpApiHandler's routes: orchestrators/{name}[/{id}], instances/..., entities/..."""
        parts = [unquote(s) for s in rest.strip("/").split("/")] if rest.strip("/") else []
        head, method = parts[:1], request.method
        if head == ["orchestrators"] and len(parts) in (2, 3) and method == "POST":
            return await self._start(request, parts[1], parts[2] if len(parts) == 3 else None)
        if head != ["instances"]:
            return (
                _error(501, "entities are not supported by the local Durable runner")
                if head == ["entities"]
                else web.Response(status=404)
            )
        if len(parts) <= 2:
            handler = {
                (1, "GET"): self._list,
                (1, "DELETE"): self._purge_by,
                (2, "GET"): self._status,
                (2, "DELETE"): self._purge,
            }.get((len(parts), method))
            return handler(request, *parts[1:]) if handler else web.Response(status=404)
        operation = parts[2].lower()
        if method != "POST" or len(parts) != (4 if operation == "raiseevent" else 3):
            return web.Response(status=404)
        if operation == "raiseevent":
            return await self._raise(request, parts[1], parts[3])
        operations = {
            "terminate": self._control,
            "suspend": self._control,
            "resume": self._control,
            "restart": self._restart,
            "rewind": self._rewind,
        }
        handler = operations.get(operation)
        return handler(request, parts[1], operation) if handler else web.Response(status=404)

    # ---- management operations ------------------------------------------------------------------

    async def _start(self, request: web.Request, name: str, instance_id: str | None) -> web.StreamResponse:
        text = await request.text()
        if text.strip():
            try:
                json.loads(text)
            except ValueError as exc:
                return _error(400, "Invalid JSON content", str(exc))
        try:
            new_id = self.runner.create(name, instance_id, text if text.strip() else None)
        except ConflictError as exc:
            return already_exists(exc)
        except ValueError as exc:
            return _error(400, "One or more of the arguments submitted is incorrect", str(exc))
        return self._check_status_response(request, new_id)

    def _check_status_response(self, request: web.Request, instance_id: str) -> web.Response:
        origin = f"{request.url.scheme}://{request.host}"
        urls = json.loads(self.runner.client_binding())["managementUrls"]
        assert self.runner.base_url is not None
        payload = {"id": instance_id}
        for key in (
            "statusQueryGetUri",
            "sendEventPostUri",
            "terminatePostUri",
            "purgeHistoryDeleteUri",
            "restartPostUri",
            "suspendPostUri",
            "resumePostUri",
        ):
            payload[key] = urls[key].replace("INSTANCEID", instance_id).replace(self.runner.base_url, origin)
        return web.json_response(
            payload, status=202, headers={"Location": payload["statusQueryGetUri"], "Retry-After": "10"}
        )

    def _status(self, request: web.Request, instance_id: str) -> web.Response:
        q = request.query
        status = self.runner.status(
            instance_id,
            show_history=_bool(q, "showHistory", False),
            show_history_output=_bool(q, "showHistoryOutput", False),
            show_input=_bool(q, "showInput", True),
        )
        if status is None:
            return web.Response(status=404)
        runtime = status["runtimeStatus"]
        headers: dict[str, str] = {}
        if runtime in ("Running", "Pending", "ContinuedAsNew", "Suspended"):
            code = 202
            headers = {"Location": str(request.url), "Retry-After": "5"}
        elif runtime == "Failed" and _bool(q, "returnInternalServerErrorOnFailure", False):
            code = 500
        else:
            code = 200
        return web.json_response(status, status=code, headers=headers)

    def _list(self, request: web.Request) -> web.Response:
        q = request.query
        statuses = [s for s in (q.get("runtimeStatus") or "").split(",") if s] or None
        try:
            created_from = parse_ts(q["createdTimeFrom"]) if q.get("createdTimeFrom") else None
            created_to = parse_ts(q["createdTimeTo"]) if q.get("createdTimeTo") else None
        except ValueError as exc:
            return _error(400, "One or more of the arguments submitted is incorrect", str(exc))
        rows = self.runner.statuses(
            created_from=created_from,
            created_to=created_to,
            statuses=statuses,
            prefix=q.get("instanceIdPrefix"),
            show_input=_bool(q, "showInput", True),
        )
        top = q.get("top")
        if top and top.isdigit():
            rows = rows[: int(top)]
        return web.json_response(rows)

    def _purge(self, _request: web.Request, instance_id: str) -> web.Response:
        from devstack.durable.runner import RunnerError

        try:
            deleted = self.runner.purge(instance_id)
        except RunnerError as exc:
            return web.json_response(str(exc), status=412)
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    def _purge_by(self, request: web.Request) -> web.Response:
        q = request.query
        if not q.get("createdTimeFrom"):
            return web.json_response("Please provide value for 'createdTimeFrom' parameter.", status=400)
        try:
            created_from = parse_ts(q["createdTimeFrom"])
            created_to = parse_ts(q["createdTimeTo"]) if q.get("createdTimeTo") else None
        except ValueError as exc:
            return _error(400, "One or more of the arguments submitted is incorrect", str(exc))
        statuses = [s for s in (q.get("runtimeStatus") or "").split(",") if s] or None
        deleted = self.runner.purge_by(created_from, created_to, statuses)
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted})

    def _rewind(self, _request: web.Request, instance_id: str, _operation: str) -> web.Response:
        if self.runner.status(instance_id, show_input=False) is None:
            return web.json_response(f'No orchestration with instance ID "{instance_id}" found.', status=404)
        return _error(501, "Rewind is not supported by the local Durable runner.")

    async def _raise(self, request: web.Request, instance_id: str, event_name: str) -> web.Response:
        from devstack.durable.runner import GoneError, NotFoundError

        if self.runner.status(instance_id, show_input=False) is None:
            return web.Response(status=404)
        if request.content_type.lower() != "application/json":
            return _error(400, "Only application/json request content is supported")
        text = await request.text()
        try:
            json.loads(text) if text.strip() else None
        except ValueError as exc:
            return _error(400, "Invalid JSON content", str(exc))
        try:
            self.runner.post_event(instance_id, event_name, text if text.strip() else None)
        except NotFoundError:
            return web.Response(status=404)
        except GoneError:
            return web.Response(status=410)
        return web.Response(status=202)

    def _control(self, request: web.Request, instance_id: str, operation: str) -> web.Response:
        from devstack.durable.runner import GoneError, NotFoundError

        reason = request.query.get("reason")
        try:
            getattr(self.runner, operation)(instance_id, reason)
        except NotFoundError:
            return web.Response(status=404)
        except GoneError:
            return web.Response(status=410)
        return web.Response(status=202)

    def _restart(self, request: web.Request, instance_id: str, _operation: str) -> web.Response:
        from devstack.durable.runner import NotFoundError

        try:
            new_id = self.runner.restart(instance_id, _bool(request.query, "restartWithNewInstanceId", True))
        except NotFoundError as exc:
            return _error(400, "InstanceId does not match a valid orchestration instance.", str(exc))
        except ConflictError as exc:  # the host's restart is a start_new with the old input
            return already_exists(exc)
        return self._check_status_response(request, new_id)

    # ---- the app's own functions -------------------------------------------------------------------

    async def _app_route(self, request: web.Request, rest: str) -> web.StreamResponse:
        route, params, path_matched = self.runner.registry.route_for(unquote(rest), request.method)
        if route is None:
            if path_matched:
                return web.Response(status=405, text=f"{request.method} is not allowed on {request.path}")
            return web.Response(status=404)
        body = await request.read()
        req = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            params=dict(request.query),
            route_params=params,
            body=body,
        )
        values: dict[str, Any] = {route.arg_name: req}
        if route.client_arg:
            values[route.client_arg] = self.runner.client_binding()
        try:
            result = await self._invoke(route.fn, call_kwargs(route.fn, values, route.name))
            return _to_response(result)
        except Exception:
            log.exception("function %s failed", route.name)
            return web.Response(status=500)

    async def _admin_invoke(self, request: web.Request, name: str) -> web.StreamResponse:
        """The host's admin API for non-HTTP functions: POST /admin/functions/{name} runs it once."""
        timer = self.runner.registry.timers.get(unquote(name))
        if timer is None or request.method != "POST":
            return web.Response(status=404)
        mark = len(self.runner.started_ids)
        await self._invoke(timer.fn, self.runner._timer_kwargs(timer))
        # The host answers an empty 202; naming the instances started meanwhile lets `trigger` follow them.
        return web.json_response({"started": self.runner.started_ids[mark:]}, status=202)

    async def _invoke(self, fn: Any, kwargs: dict[str, Any]) -> Any:
        loop = self.runner.functions_loop
        assert loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(invoke_async(fn, kwargs), loop))


def _to_response(result: Any) -> web.Response:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str | bytes):
        return web.Response(
            status=200, body=result.encode() if isinstance(result, str) else result, content_type="text/plain"
        )
    raise TypeError(f"an HTTP function returned {type(result).__name__}, not an HttpResponse")
