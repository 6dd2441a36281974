"""A loopback HTTP proxy in front of Azurite that injects storage faults: throttling, resets, slow answers,
pending Copy Blob results, and blocked accounts ("the primary region is gone").

Clients use the proxy's URL as their blob endpoint (http://127.0.0.1:PORT/<account>). The proxy forwards
each request to Azurite unchanged, Host header included, so the Copy Blob source URLs the clients build
point at the proxy too: Azurite accepts them (it checks that the source host equals the request's Host) and
reads the source back *through the proxy*, as the real service reads a source across the network. A blocked
account is therefore unreachable both to the app and to server-side copies that read from it.
(Put Block From URL is the exception: Azurite pins that read to its own socket, bypassing the proxy.)

Rules are set in-process (FaultProxy.add_rule) or over the control endpoint /__faults__/ (FaultProxyClient,
or any HTTP client: GET/POST/DELETE rules, GET/DELETE stats, POST/DELETE block/<account>).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import json
import math
import signal
import socket
import struct
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from urllib.request import Request, urlopen

import aiohttp
from yarl import URL

from devstack.stack.ports import LOOPBACK, wait_for_port
from devstack.stack.procs import Proc, spawn

CONTROL = "/__faults__"
ACTIONS = ("error", "reset", "delay", "pending", "block")
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}
_FAILED_DESC = "500 InternalError Copy failed (injected by the fault proxy)."


@dataclass
class Rule:
    """One fault. Matching fields left None match anything; blob is an fnmatch pattern on the name."""

    action: str
    account: str | None = None
    container: str | None = None
    blob: str | None = None
    operation: str | None = None
    method: str | None = None
    times: int | None = None  # fire this many times, then stop (None: forever)
    skip: int = 0  # let this many matching requests through first
    status: int = 503
    code: str = "ServerBusy"
    retry_after: float | None = None
    delay: float = 0.0
    polls: int | None = 1  # pending: how many observations show "pending" (None: until aborted)
    outcome: str = "success"  # pending: what later observations show (success | failed)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    matched: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if self.outcome not in ("success", "failed"):
            raise ValueError("outcome must be success or failed")

    def matches(self, op: Op) -> bool:
        if self.action == "pending" and op.operation != "CopyBlob":
            return False
        return (
            (self.account is None or self.account == op.account)
            and (self.container is None or self.container == op.container)
            and (self.blob is None or (op.blob is not None and fnmatch.fnmatchcase(op.blob, self.blob)))
            and (self.operation is None or self.operation == op.operation)
            and (self.method is None or self.method.upper() == op.method)
        )

    def take(self) -> bool:
        """Count a match; True when this match fires (past skip, within times)."""
        self.matched += 1
        if self.matched <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Op:
    method: str
    account: str | None
    container: str | None
    blob: str | None
    operation: str


def _source_signature(headers: dict[str, str]) -> str | None:
    """The `sig` of a Copy Blob / Put Block From URL source URL, if the request carries one."""
    source = headers.get("x-ms-copy-source") or headers.get("x-ms-source-url")
    if not source:
        return None
    return dict(parse_qsl(urlsplit(source).query)).get("sig") or None


def classify(method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Op:
    """The storage operation a request is (names as in the REST reference)."""
    parts = [unquote(p) for p in path.lstrip("/").split("/", 2)] + [None, None, None]
    account, container, blob = parts[0] or None, parts[1] or None, parts[2] or None
    comp, copy_source = query.get("comp"), "x-ms-copy-source" in headers
    if container is None:
        operation = {"list": "ListContainers", "userdelegationkey": "GetUserDelegationKey"}.get(
            comp or "", "AccountOperation"
        )
    elif blob is None:
        if comp == "list":
            operation = "ListBlobs"
        else:
            operation = {"PUT": "CreateContainer", "DELETE": "DeleteContainer"}.get(method, "GetContainerProperties")
    elif method == "PUT":
        if comp == "block":
            operation = "PutBlockFromURL" if copy_source else "PutBlock"
        elif comp:
            operation = {
                "blocklist": "PutBlockList",
                "copy": "AbortCopyBlob",
                "metadata": "SetBlobMetadata",
                "properties": "SetBlobProperties",
            }.get(comp, f"PutBlob:{comp}")
        elif copy_source:
            operation = (
                "CopyBlobFromURL"
                if headers.get("x-ms-requires-sync", "").lower() == "true"
                else "PutBlobFromURL"
                if "x-ms-blob-type" in headers
                else "CopyBlob"
            )
        else:
            operation = "PutBlob"
    elif method == "HEAD":
        operation = "GetBlobProperties"
    elif method == "DELETE":
        operation = "DeleteBlob"
    else:
        operation = {"blocklist": "GetBlockList", "metadata": "GetBlobMetadata"}.get(comp or "", "GetBlob")
    return Op(method, account, container, blob, operation)


@dataclass
class _Copy:
    """A Copy Blob the proxy reports as pending although Azurite finished it."""

    path: tuple[str | None, str | None, str | None]
    polls: int | None
    outcome: str
    size: str
    state: str = "pending"

    def observe(self) -> str:
        """What this observation shows: pending, or (once the polls are used up) the final state."""
        if self.state == "pending" and self.polls is not None:
            if self.polls <= 0:
                self.state = "done" if self.outcome == "success" else "failed"
            else:
                self.polls -= 1
        return self.state


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[Rule] = []
        self.copies: dict[str, _Copy] = {}
        self.stats: Counter[str] = Counter()
        self.source_signatures: set[str] = set()  # SAS `sig` values of the copy sources it forwarded


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        key, _, value = raw.decode("latin-1").partition(":")
        headers.append((key.strip(), value.strip()))
    req = _Request(method.upper(), target, headers, b"")
    if (req.header("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        req.body = b"".join(chunks)
        req.headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    elif req.header("content-length"):
        req.body = await reader.readexactly(int(req.header("content-length") or 0))
    return req


def _head(status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _error(
    status: int, code: str, message: str, retry_after: float | None = None, head_only: bool = False
) -> tuple[int, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
        f"RequestId:{request_id}\nTime:{formatdate(usegmt=True)}</Message></Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("x-ms-error-code", code),
        ("x-ms-request-id", request_id),
        ("x-ms-version", "2026-06-06"),
        ("Date", formatdate(usegmt=True)),
        ("Content-Length", str(len(body))),
    ]
    if retry_after is not None:
        headers.append(("Retry-After", str(math.ceil(retry_after))))
    return status, headers, b"" if head_only else body


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FaultProxy:
    """The proxy, served from a background thread (start/stop) or the calling thread (serve_forever)."""

    def __init__(self, upstream: str, host: str = LOOPBACK, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.host, self.port = host, port
        self._state = _State()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def account_url(self, account: str) -> str:
        return f"{self.url}/{account}"

    # --- rules (thread-safe) -------------------------------------------------------------------------
    def add_rule(self, action: str, **fields: Any) -> Rule:
        rule = Rule(action=action, **fields)
        with self._state.lock:
            self._state.rules.append(rule)
        return rule

    def remove_rule(self, rule_id: str) -> bool:
        with self._state.lock:
            before = len(self._state.rules)
            self._state.rules = [r for r in self._state.rules if r.id != rule_id]
            return len(self._state.rules) != before

    def clear(self) -> None:
        """Remove every rule and forget tracked copies (stats are kept; see reset_stats)."""
        with self._state.lock:
            self._state.rules.clear()
            self._state.copies.clear()

    def rules(self) -> list[Rule]:
        with self._state.lock:
            return list(self._state.rules)

    def block_account(self, account: str) -> Rule:
        """Make an account unreachable: every request for it gets its connection reset."""
        return self.add_rule("block", account=account, id=f"block-{account}")

    def unblock_account(self, account: str) -> bool:
        return self.remove_rule(f"block-{account}")

    def stats(self) -> dict[str, int]:
        with self._state.lock:
            return dict(self._state.stats)

    def source_signatures(self) -> set[str]:
        """The SAS signatures (decoded `sig` values) of every copy source it forwarded: what the app minted, so
        a test can look for exactly those values in what the app stored or logged."""
        with self._state.lock:
            return set(self._state.source_signatures)

    def reset_stats(self) -> None:
        with self._state.lock:
            self._state.stats.clear()

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> FaultProxy:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stopped:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread:
            self._thread.join(10)

    def serve_forever(self, on_ready: Any = None) -> None:
        asyncio.run(self._serve(on_ready))

    async def _serve(self, on_ready: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        ) as session:
            self._session = session
            server = await asyncio.start_server(self._connection, self.host, self.port)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            if on_ready:
                on_ready(self)
            async with server:
                await self._stopped.wait()

    # --- one client connection -------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if not await self._handle(request, writer):
                    return
                if (request.header("connection") or "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            return  # the proxy is stopping: an idle keep-alive connection just ends
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection was reset on purpose."""
        parts = urlsplit(request.target)
        if parts.path.startswith(CONTROL):
            await self._reply(writer, *self._control(request.method, parts.path[len(CONTROL) :], request.body))
            return True
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers}
        op = classify(request.method, parts.path, query, headers)
        pending_rule: Rule | None = None
        signature = _source_signature(headers)
        with self._state.lock:
            self._state.stats[f"{op.account}:{op.operation}"] += 1
            if signature:
                self._state.source_signatures.add(signature)
            fired = self._fire(op)
        for rule in fired:
            if rule.action in ("reset", "block"):
                _reset(writer)
                return False
            if rule.action == "error":
                await self._reply(
                    writer,
                    *_error(
                        rule.status,
                        rule.code,
                        "Injected by the fault proxy.",
                        rule.retry_after,
                        request.method == "HEAD",
                    ),
                )
                return True
            if rule.action == "delay":
                await asyncio.sleep(rule.delay)
            if rule.action == "pending" and op.operation == "CopyBlob":
                pending_rule = pending_rule or rule
        answer = self._copy_conflict(op, query, headers)
        if answer is not None:
            await self._reply(writer, *answer)
            return True
        await self._forward(request, op, pending_rule, writer)
        return True

    def _fire(self, op: Op) -> list[Rule]:
        """Rules that act on this request, in order: delays add up; the first error/reset/block ends the
        list (later rules are not consumed); one pending rule at most."""
        fired: list[Rule] = []
        for rule in self._state.rules:
            second_pending = rule.action == "pending" and any(r.action == "pending" for r in fired)
            if second_pending or not rule.matches(op):
                continue
            if rule.take():
                fired.append(rule)
                if rule.action in ("error", "reset", "block"):
                    break
        return fired

    def _copy_conflict(self, op: Op, query: dict[str, str], headers: dict[str, str]) -> Any:
        """Azure's answers while a (proxy-tracked) copy pends: one pending copy per blob, abortable."""
        path = (op.account, op.container, op.blob)
        with self._state.lock:
            if op.operation == "CopyBlob" and any(
                c.path == path and c.state == "pending" for c in self._state.copies.values()
            ):
                return _error(409, "PendingCopyOperation", "There is currently a pending copy operation.")
            if op.operation == "AbortCopyBlob":
                copy = self._state.copies.get(query.get("copyid", ""))
                if copy is None:
                    return None
                if copy.state != "pending":
                    return _error(409, "NoPendingCopyOperation", "There is no pending copy operation.")
                copy.state = "aborted"
                return (
                    204,
                    [("x-ms-request-id", str(uuid.uuid4())), ("x-ms-version", "2026-06-06"), ("Content-Length", "0")],
                    b"",
                )
        return None

    async def _forward(
        self, request: _Request, op: Op, pending_rule: Rule | None, writer: asyncio.StreamWriter
    ) -> None:
        url = URL(self.upstream + request.target, encoded=True)
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP]
        async with self._session.request(
            request.method,
            url,
            headers=headers,
            data=request.body or None,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept-Encoding", "Accept"),
        ) as resp:
            out = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in resp.raw_headers
                if k.decode("latin-1").lower() not in _HOP
            ]
            if pending_rule is not None and resp.status == 202:
                out = self._track_copy(op, pending_rule, out)
            elif any(k.lower() == "x-ms-copy-id" for k, _ in out):
                out = self._rewrite_headers(out)
            if op.operation == "ListBlobs" and resp.status == 200 and self._tracking(op):
                body = self._rewrite_list(await resp.read())
                out = [(k, v) for k, v in out if k.lower() != "content-length"]
                out.append(("Content-Length", str(len(body))))
                await self._reply(writer, resp.status, out, body, resp.reason)
                return
            await self._stream(writer, request.method, resp, out)

    async def _stream(self, writer: asyncio.StreamWriter, method: str, resp: Any, out: list[tuple[str, str]]) -> None:
        chunked = method != "HEAD" and not any(k.lower() == "content-length" for k, _ in out)
        if chunked:
            out = [*out, ("Transfer-Encoding", "chunked")]
        writer.write(_head(resp.status, resp.reason or _REASONS.get(resp.status, "OK"), out))
        if method != "HEAD":
            async for chunk in resp.content.iter_chunked(256 * 1024):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _reply(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        reason: str | None = None,
    ) -> None:
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers = [*headers, ("Content-Length", str(len(body)))]
        writer.write(_head(status, reason or _REASONS.get(status, "OK"), headers) + body)
        await writer.drain()

    # --- pending copies -------------------------------------------------------------------------------
    def _track_copy(self, op: Op, rule: Rule, out: list[tuple[str, str]]) -> list[tuple[str, str]]:
        values = {k.lower(): v for k, v in out}
        copy_id = values.get("x-ms-copy-id")
        if not copy_id or values.get("x-ms-copy-status") != "success":
            return out
        with self._state.lock:
            self._state.copies[copy_id] = _Copy(
                (op.account, op.container, op.blob), rule.polls, rule.outcome, values.get("content-length", "0")
            )
        return [(k, "pending" if k.lower() == "x-ms-copy-status" else v) for k, v in out]

    def _tracking(self, op: Op) -> bool:
        with self._state.lock:
            return any(c.path[:2] == (op.account, op.container) for c in self._state.copies.values())

    def _show(self, copy_id: str) -> str | None:
        with self._state.lock:
            copy = self._state.copies.get(copy_id)
            return copy.observe() if copy else None

    def _rewrite_headers(self, out: list[tuple[str, str]]) -> list[tuple[str, str]]:
        values = {k.lower(): v for k, v in out}
        shown = self._show(values.get("x-ms-copy-id", ""))
        if shown in (None, "done"):
            return out
        total = (values.get("x-ms-copy-progress") or "0/0").split("/")[-1]
        drop = {"x-ms-copy-status", "x-ms-copy-progress", "x-ms-copy-completion-time", "x-ms-copy-status-description"}
        out = [(k, v) for k, v in out if k.lower() not in drop]
        out += [("x-ms-copy-status", shown or "pending"), ("x-ms-copy-progress", f"0/{total}")]
        if shown == "failed":
            out.append(("x-ms-copy-status-description", _FAILED_DESC))
        return out

    def _rewrite_list(self, body: bytes) -> bytes:
        root = ET.fromstring(body)  # noqa: S314 - Azurite's own response on loopback
        for props in root.iter("Properties"):
            copy_id = props.findtext("CopyId")
            shown = self._show(copy_id) if copy_id else None
            if shown in (None, "done"):
                continue
            for tag in ("CopyStatus", "CopyProgress", "CopyCompletionTime", "CopyStatusDescription"):
                for node in props.findall(tag):
                    props.remove(node)
            total = props.findtext("Content-Length") or "0"
            ET.SubElement(props, "CopyStatus").text = shown
            ET.SubElement(props, "CopyProgress").text = f"0/{total}"
            if shown == "failed":
                ET.SubElement(props, "CopyStatusDescription").text = _FAILED_DESC
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    # --- control endpoint ---------------------------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            result = self._control_action(method, path.strip("/"), json.loads(body or b"{}"))
        except (ValueError, TypeError) as exc:
            status, payload = 400, {"error": str(exc)}
        else:
            status, payload = (404, {"error": f"no control route {method} {path}"}) if result is None else (200, result)
        data = json.dumps(payload).encode()
        return status, [("Content-Type", "application/json")], data

    def _control_action(self, method: str, path: str, body: dict[str, Any]) -> Any:  # noqa: PLR0911 - a route table
        head, _, tail = path.partition("/")
        if head == "rules" and method == "GET":
            return [r.to_json() for r in self.rules()]
        if head == "rules" and method == "POST":
            body = {k: v for k, v in body.items() if k not in ("matched", "fired")}
            return self.add_rule(**body).to_json()
        if head == "rules" and method == "DELETE":
            if tail:
                return {"removed": self.remove_rule(tail)}
            self.clear()
            return {"cleared": True}
        if head == "stats":
            if method == "DELETE":
                self.reset_stats()
            return self.stats()
        if head == "block" and tail:
            if method == "POST":
                return self.block_account(tail).to_json()
            if method == "DELETE":
                return {"removed": self.unblock_account(tail)}
        return None


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset, as a network failure looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxyClient:
    """The control endpoint of a proxy running in another process (e.g. started by the demo)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = Request(  # noqa: S310  # the proxy's own control URL on loopback
            f"{self.url}{CONTROL}/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())

    def add_rule(self, action: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "rules", {"action": action, **fields})

    def remove_rule(self, rule_id: str) -> bool:
        return bool(self._call("DELETE", f"rules/{rule_id}")["removed"])

    def clear(self) -> None:
        self._call("DELETE", "rules")

    def rules(self) -> list[dict[str, Any]]:
        return self._call("GET", "rules")

    def block_account(self, account: str) -> dict[str, Any]:
        return self._call("POST", f"block/{account}")

    def unblock_account(self, account: str) -> bool:
        return bool(self._call("DELETE", f"block/{account}")["removed"])

    def stats(self) -> dict[str, int]:
        return self._call("GET", "stats")


def start_fault_proxy_process(upstream: str, state_dir: Path, port: int) -> tuple[Proc, str]:
    """Run the proxy as a detached process of the stack (stop it with devstack.stack.procs.stop)."""
    import sys

    from devstack.paths import REPO_ROOT

    argv = [sys.executable, "-m", "devstack.faultproxy.proxy", "--upstream", upstream, "--port", str(port)]
    proc = spawn("faultproxy", argv, Path(state_dir) / "logs", cwd=str(REPO_ROOT))
    wait_for_port(port, 15)
    return proc, f"http://{LOOPBACK}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.faultproxy.proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="Azurite's blob endpoint, e.g. http://127.0.0.1:10000")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.upstream, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: proxy.stop())
    proxy.serve_forever(on_ready=lambda p: print(p.url, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
