"""The Key Vault stand-in's HTTPS front: the secrets REST subset, wire shapes and the bearer challenge."""

from __future__ import annotations

import base64
import binascii
import json
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from devstack.keyvault.faults import CONTROL, Faults
from devstack.keyvault.store import (
    RECOVERABLE_DAYS,
    Deleted,
    SecretStore,
    VaultError,
    Version,
    bad_parameter,
    check_name,
)
from devstack.stack.identity import issuer, token_claims

# What azure-keyvault-secrets 4.x may send (4.12 defaults to 2026-04-01; older 4.x to 7.x).
API_VERSIONS = frozenset({"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"})
VAULT_RESOURCE = "https://vault.azure.net"
# Key Vault accepts its resource URI (with or without slash) and its first-party application id.
VAULT_AUDIENCES = frozenset({VAULT_RESOURCE, VAULT_RESOURCE + "/", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"})
MAX_PAGE = 25
MAX_BODY = 1 << 20  # far above 25,600 characters even when every one is \u-escaped
CLOCK_SKEW = 300  # seconds of token-lifetime slack, as Entra ID validators allow


class Unauthorized(VaultError):
    def __init__(self, message: str) -> None:
        super().__init__(401, "Unauthorized", message)


def _attributes(record: dict[str, Any], recovery_level: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"enabled": record["enabled"]}
    for key in ("nbf", "exp"):
        if record.get(key) is not None:
            attrs[key] = record[key]
    attrs.update(
        created=record["created"],
        updated=record["updated"],
        recoveryLevel=recovery_level,
        recoverableDays=RECOVERABLE_DAYS,
    )
    return attrs


def _bundle(call: _Call, found: Version, *, value: bool, versioned: bool = True) -> dict[str, Any]:
    """SecretBundle (value=True), else SecretItem or a value-less bundle; the SDK parses the id."""
    secret_id = f"{call.base}/secrets/{found.name}" + (f"/{found.version}" if versioned else "")
    out: dict[str, Any] = {"id": secret_id, "attributes": _attributes(found.record, call.store.recovery_level)}
    if value:
        out["value"] = found.record["value"]
    if found.record.get("contentType") is not None:
        out["contentType"] = found.record["contentType"]
    if found.record.get("tags"):
        out["tags"] = found.record["tags"]
    return out


def _deleted_bundle(call: _Call, deleted: Deleted, *, versioned: bool = True) -> dict[str, Any]:
    out = _bundle(call, deleted.latest, value=False, versioned=versioned)
    out.update(
        recoveryId=f"{call.base}/deletedsecrets/{deleted.latest.name}",
        deletedDate=deleted.deleted_date,
        scheduledPurgeDate=deleted.scheduled_purge_date,
    )
    return out


def _page(
    items: list[dict[str, Any]], base: str, path: str, query: dict[str, list[str]], api_version: str
) -> dict[str, Any]:
    """One page of a listing; nextLink is absolute because the SDK re-issues it as given."""
    raw_size = query.get("maxresults", [str(MAX_PAGE)])[0]
    try:
        size = int(raw_size)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE:
        raise bad_parameter(f"maxresults must be an integer from 1 to {MAX_PAGE}; got {raw_size[:20]!r}.")
    start = 0
    token = query.get("$skiptoken", [""])[0]
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise bad_parameter("The $skiptoken is not one this vault issued.") from None
    end = start + size
    next_link = None
    if end < len(items):
        skip = base64.urlsafe_b64encode(str(end).encode()).rstrip(b"=").decode()
        next_link = f"{base}{path}?api-version={api_version}&$skiptoken={skip}&maxresults={size}"
    return {"value": items[start:end], "nextLink": next_link}


@dataclass(frozen=True)
class _Call:
    """What an operation needs from the request: ids are built on the base URL the client used."""

    base: str
    store: SecretStore
    query: dict[str, list[str]]
    api_version: str
    body: bytes

    def json(self) -> Any:
        if not self.body:
            raise bad_parameter("The request body is empty; a JSON object is required.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise bad_parameter("The request body is not valid JSON.") from None


def _shape(path: str) -> tuple[str, list[str]]:
    """The route pattern of path and its arguments: names are checked, a trailing slash means latest."""
    segments = [unquote(s) for s in path.split("/")[1:]]
    if segments and segments[-1] == "" and len(segments) != 3:
        segments.pop()  # "/secrets/" lists; only "/secrets/NAME/" (empty version) is meaningful
    if not segments or segments[0].lower() not in ("secrets", "deletedsecrets"):
        return path, []
    collection, rest = segments[0].lower(), segments[1:]
    if not rest:
        return collection, []
    name = check_name(rest[0])
    if len(rest) == 1:
        return f"{collection}/{{name}}", [name]
    if len(rest) == 2 and rest[1].lower() in ("versions", "recover", "backup"):
        return f"{collection}/{{name}}/{rest[1].lower()}", [name]
    if len(rest) == 2 and collection == "secrets":
        return "secrets/{name}/{version}", [name, rest[1]]
    return path, []


def _list_secrets(call: _Call) -> tuple[int, dict[str, Any]]:
    items = [_bundle(call, v, value=False, versioned=False) for v in call.store.list_latest()]
    return 200, _page(items, call.base, "/secrets", call.query, call.api_version)


def _list_versions(call: _Call, name: str) -> tuple[int, dict[str, Any]]:
    items = [_bundle(call, v, value=False) for v in call.store.list_versions(name)]
    return 200, _page(items, call.base, f"/secrets/{name}/versions", call.query, call.api_version)


def _list_deleted(call: _Call) -> tuple[int, dict[str, Any]]:
    items = [_deleted_bundle(call, d, versioned=False) for d in call.store.list_deleted()]
    return 200, _page(items, call.base, "/deletedsecrets", call.query, call.api_version)


def _backup(call: _Call, name: str) -> tuple[int, None]:
    raise VaultError(501, "NotImplemented", f"The stand-in does not implement backup (of {name}).")


def _purge(call: _Call, name: str) -> tuple[int, None]:
    call.store.purge(name)
    return 204, None


_Handler = Callable[..., tuple[int, dict[str, Any] | None]]
_ROUTES: dict[tuple[str, str], _Handler] = {
    ("GET", "secrets"): _list_secrets,
    ("PUT", "secrets/{name}"): lambda c, n: (200, _bundle(c, c.store.set(n, c.json()), value=True)),
    ("DELETE", "secrets/{name}"): lambda c, n: (200, _deleted_bundle(c, c.store.delete(n))),
    ("GET", "secrets/{name}"): lambda c, n: (200, _bundle(c, c.store.get(n, None), value=True)),
    ("PATCH", "secrets/{name}"): lambda c, n: (200, _bundle(c, c.store.update(n, None, c.json()), value=False)),
    ("GET", "secrets/{name}/versions"): _list_versions,
    ("GET", "secrets/{name}/{version}"): lambda c, n, v: (200, _bundle(c, c.store.get(n, v or None), value=True)),
    ("PATCH", "secrets/{name}/{version}"): lambda c, n, v: (
        200,
        _bundle(c, c.store.update(n, v or None, c.json()), value=False),
    ),
    ("POST", "secrets/{name}/backup"): _backup,
    ("GET", "deletedsecrets"): _list_deleted,
    ("GET", "deletedsecrets/{name}"): lambda c, n: (200, _deleted_bundle(c, c.store.get_deleted(n))),
    ("DELETE", "deletedsecrets/{name}"): _purge,
    ("POST", "deletedsecrets/{name}/recover"): lambda c, n: (200, _bundle(c, c.store.recover(n), value=False)),
}


class VaultServer(ThreadingHTTPServer):
    """Threaded HTTPS; the TLS handshake runs in the request's thread so a stalled client blocks no one."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        store: SecretStore,
        tenant: str,
        tls: ssl.SSLContext,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(address, VaultHandler)
        self.store, self.tenant, self.tls, self.clock = store, tenant, tls, clock
        self.faults = Faults()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line, no traceback: a failed handshake or dropped connection is routine here.
        kind = sys.exc_info()[0]
        reason = kind.__name__ if kind else "?"
        sys.stderr.write(f"keyvault: connection from {client_address[0]} ended: {reason}\n")


class VaultHandler(BaseHTTPRequestHandler):
    """Routes the secrets REST subset; every request needs a bearer token for the vault resource."""

    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the delayed-ACK stall (40 ms)

    server: VaultServer
    server_version = "devstack-keyvault"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send(411, VaultError(411, "LengthRequired", "Send a Content-Length.").body())
            return
        size = int(length) if length and length.isdigit() else 0
        if size > MAX_BODY:
            self.close_connection = True  # the unread body would corrupt the next request
            self._send(413, bad_parameter(f"The request body is over {MAX_BODY} bytes.").body())
            return
        body = self.rfile.read(size) if size else b""
        if urlsplit(self.path).path.rstrip("/") == CONTROL:
            self._control(body)
            return
        fault = self.server.faults.take(self.command, urlsplit(self.path).path)
        if fault is not None and fault.action == "reset":
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and fault.action == "error":
            self._send(
                fault.status,
                VaultError(
                    fault.status, "InternalServerError" if fault.status >= 500 else "BadRequest", "Injected fault."
                ).body(),
            )
            return
        try:
            self._authorize()
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            api_version = query.get("api-version", [""])[0]
            if api_version not in API_VERSIONS:
                raise bad_parameter(
                    f"The specified version ({api_version[:20]}) is not recognized. Consider "
                    "using the latest supported version (2026-04-01)."
                )
            status, payload = self._route(url.path, query, api_version, body)
        except VaultError as err:
            status, payload = err.status, err.body()
        if fault is not None and fault.action == "corrupt" and payload and isinstance(payload.get("value"), str):
            payload = {**payload, "value": payload["value"][::-1] + " (altered)"}
        self._send(status, payload)

    def _control(self, body: bytes) -> None:
        """Test-only: GET lists the fault rules, POST adds one (JSON), DELETE clears them."""
        faults = self.server.faults
        try:
            if self.command == "POST":
                rule = faults.add(json.loads(body or b"{}"))
                self._send(201, {"id": rule.id})
            elif self.command == "DELETE":
                faults.clear()
                self._send(204, None)
            else:
                self._send(200, {"rules": faults.listing()})
        except (ValueError, TypeError) as err:
            self._send(400, bad_parameter(str(err)).body())

    def _authorize(self) -> None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        try:
            claims = token_claims(token.strip())
        except ValueError as err:
            raise Unauthorized(f"AKV10000: The bearer token is malformed: {err}.") from None
        if claims.get("aud") not in VAULT_AUDIENCES:
            raise Unauthorized(
                f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {str(claims.get('aud'))[:100]}."
            )
        expected_iss = issuer(self.server.tenant)
        if claims.get("iss") != expected_iss:
            raise Unauthorized(
                f"AKV10032: Invalid issuer. Expected {expected_iss}, found: {str(claims.get('iss'))[:100]}."
            )
        now = self.server.clock()
        nbf, exp = claims.get("nbf"), claims.get("exp")
        valid = isinstance(nbf, int) and isinstance(exp, int) and nbf - CLOCK_SKEW <= now <= exp + CLOCK_SKEW
        if not valid:
            raise Unauthorized("AKV10013: The token is expired or not yet valid.")

    def _base(self) -> str:
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        return f"https://{host}"

    def _route(
        self, path: str, query: dict[str, list[str]], api_version: str, body: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        shape, args = _shape(path)
        handler = _ROUTES.get((self.command, shape))
        if handler is None:
            known = any(s == shape for _, s in _ROUTES)
            raise VaultError(
                405 if known else 404,
                "BadRequest",
                f"{self.command} {path} is not an operation of this vault's secrets API.",
            )
        return handler(_Call(self._base(), self.server.store, query, api_version, body), *args)

    def _send(self, status: int, payload: dict[str, Any] | None) -> None:
        self.send_response(status)
        if status == 401:
            self.send_header(
                "WWW-Authenticate",
                f'Bearer authorization="https://login.microsoftonline.com/'
                f'{self.server.tenant}", resource="{VAULT_RESOURCE}"',
            )
        if payload is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(payload).encode()
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method, path and status only: bodies hold secret values and headers hold tokens.
        sys.stderr.write(f"keyvault {self.command} {urlsplit(self.path).path} {code}\n")

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"keyvault: {format % args}\n")
