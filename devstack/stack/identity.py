"""A local App Service managed-identity endpoint: the token protocol DefaultAzureCredential speaks."""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.stack.ports import LOOPBACK

API_VERSION = "2019-08-01"
TOKEN_PATH = "/msi/token"  # noqa: S105 (a URL path, not a password)
TOKEN_LIFETIME = 3600
HEADER_ENV = "DEVSTACK_IDENTITY_HEADER"  # the header secret reaches the server by environment, never argv
ISSUER_PREFIX = "https://sts.windows.net/"


def tenant_id(state_dir: Path) -> str:
    """The stack's tenant GUID, made once per state dir so the vault and the token issuer agree."""
    path = Path(state_dir) / "identity" / "tenant.json"
    if path.exists():
        return str(json.loads(path.read_text())["tenant_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    value = str(uuid.uuid4())
    path.write_text(json.dumps({"tenant_id": value}))
    return value


def new_header_secret() -> str:
    """A fresh X-IDENTITY-HEADER value; like App Service, a new one each time the endpoint starts."""
    return _b64url(os.urandom(24))


def issuer(tenant: str) -> str:
    return f"{ISSUER_PREFIX}{tenant}/"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_token(resource: str, tenant: str, now: float | None = None, lifetime: int = TOKEN_LIFETIME) -> tuple[str, int]:
    """An unsigned JWT (alg none) for resource; returns (token, expires_on epoch seconds)."""
    issued = int(time.time() if now is None else now)
    expires = issued + lifetime
    claims = {
        "aud": resource,
        "iss": issuer(tenant),
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "tid": tenant,
        "oid": str(uuid.UUID(int=1)),
        "sub": str(uuid.UUID(int=1)),
        "idtyp": "app",
    }
    header = {"alg": "none", "typ": "JWT"}
    token = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}."
    return token, expires


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT without checking any signature (the stand-ins trust their own issuer)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated parts")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        raise ValueError("not a JWT: the payload is not base64url JSON") from None
    if not isinstance(claims, dict):
        raise ValueError("not a JWT: the payload is not a JSON object")
    return claims


class _TokenHandler(BaseHTTPRequestHandler):
    """GET /msi/token?api-version=2019-08-01&resource=R with X-IDENTITY-HEADER, as App Service serves it."""

    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the delayed-ACK stall (40 ms)

    server_version = "devstack-identity"
    protocol_version = "HTTP/1.1"
    timeout = 30

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/").lower() != TOKEN_PATH:
            self._reply(HTTPStatus.NOT_FOUND, f"no such endpoint: {url.path}")
            return
        expected: str = self.server.header  # type: ignore[attr-defined]
        given = self.headers.get("X-IDENTITY-HEADER")
        if given is None:
            self._reply(HTTPStatus.UNAUTHORIZED, "the X-IDENTITY-HEADER header is required")
            return
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self._reply(HTTPStatus.FORBIDDEN, "the X-IDENTITY-HEADER header does not match")
            return
        query = parse_qs(url.query)
        version = query.get("api-version", [""])[0]
        if version != API_VERSION:
            self._reply(HTTPStatus.BAD_REQUEST, f"api-version must be {API_VERSION}, got {version!r}")
            return
        resource = query.get("resource", [""])[0]
        if not resource:
            self._reply(HTTPStatus.BAD_REQUEST, "the resource parameter is required")
            return
        token, expires = mint_token(resource, self.server.tenant)  # type: ignore[attr-defined]
        # App Service returns expires_on as a string of epoch seconds in this api-version.
        body = {
            "access_token": token,
            "expires_on": str(expires),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": str(uuid.UUID(int=1)),
        }
        self._send(HTTPStatus.OK, body)

    def _reply(self, status: HTTPStatus, message: str) -> None:
        self._send(status, {"statusCode": int(status), "message": message})

    def _send(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Path and status only: the query names a resource, the header and the token are secrets.
        sys.stderr.write(f"identity {self.command} {urlsplit(self.path).path} {code}\n")

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"identity: {format % args}\n")


def serve(port: int, tenant: str, header: str) -> None:
    """Serve tokens on loopback until SIGTERM."""
    server = ThreadingHTTPServer((LOOPBACK, port), _TokenHandler)
    server.daemon_threads = True
    server.tenant = tenant  # type: ignore[attr-defined]
    server.header = header  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"identity endpoint on http://{LOOPBACK}:{port}{TOKEN_PATH} for tenant {tenant}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def endpoint_answers(endpoint: str, header: str) -> bool:
    """True when the endpoint hands out a token for the vault resource."""
    url = f"{endpoint}?api-version={API_VERSION}&resource=https://vault.azure.net"
    if not url.startswith("http://"):
        raise ValueError(f"the identity endpoint must be http on loopback, got {endpoint}")
    request = urllib.request.Request(url, headers={"X-IDENTITY-HEADER": header})  # noqa: S310 (checked)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (checked above)
            return "access_token" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.stack.identity", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    header = os.environ.get(HEADER_ENV, "")
    if not header:
        parser.error(f"{HEADER_ENV} must hold the X-IDENTITY-HEADER secret")
    serve(args.port, tenant_id(args.state_dir), header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
