"""HTTPS transport for the Avere XML-RPC API: TLS trust, the session cookie, and "not sent" told from "maybe run"."""

from __future__ import annotations

import hashlib
import http.client
import re
import ssl
import xmlrpc.client
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from shared.avere.errors import AvereConfigError, AvereTLSError
from shared.core.netutil import is_loopback_host

USER_AGENT = "vfxt-dr/0.1"
_HEX = re.compile(r"^[0-9A-F]{64}$")


def normalize_fingerprint(value: str) -> str:
    """'ab:cd:..' or 'ABCD..' -> 'AB:CD:..' (64 hex digits); AvereConfigError otherwise."""
    digits = value.replace(":", "").replace(" ", "").strip().upper()
    if not _HEX.match(digits):
        raise AvereConfigError("fingerprint_sha256 must be 64 hex digits (colons allowed)")
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


def der_fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


@dataclass(frozen=True)
class Endpoint:
    """Where the management API answers and how its certificate is trusted (no secrets)."""

    scheme: str
    host: str  # host[:port] as in the URL
    handler: str
    ca_file: str | None
    fingerprint: str | None
    insecure: bool

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        ca_file: str | None,
        fingerprint_sha256: str | None,
        insecure: bool,
        insecure_acknowledged: bool = False,
    ) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise AvereConfigError(f"management URL must be https://host[:port]/path, got scheme {parts.scheme!r}")
        if parts.username or parts.password:
            raise AvereConfigError("management URL must not carry credentials; pass user and password")
        if parts.query or parts.fragment:
            raise AvereConfigError("management URL must not have a query or fragment")
        if parts.scheme == "http" and not (insecure and is_loopback_host(parts.hostname)):
            raise AvereConfigError("plain http is refused: use https (http only to a loopback host with insecure=True)")
        fingerprint = normalize_fingerprint(fingerprint_sha256) if fingerprint_sha256 else None
        if parts.scheme == "https" and not (ca_file or fingerprint or insecure):
            raise AvereConfigError(
                "no TLS trust configured for the cluster: give ca_file or "
                "fingerprint_sha256 (insecure=True only when explicitly asked)"
            )
        if (
            insecure
            and not (ca_file or fingerprint)
            and not is_loopback_host(parts.hostname)
            and not insecure_acknowledged
        ):
            # The admin password would go to whoever answers at that address: never without a person's say-so.
            raise AvereConfigError(
                f"TLS verification off for {parts.hostname}, which is not a loopback host: "
                "refused unless acknowledged (insecure_acknowledged=True; in the plan: "
                "tls.acknowledge_insecure)"
            )
        return cls(
            scheme=parts.scheme,
            host=parts.netloc,
            handler=parts.path or "/cgi-bin/rpc2.py",
            ca_file=ca_file,
            fingerprint=fingerprint,
            insecure=insecure,
        )

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # AvereOS 4.7.3.1+ requires TLS 1.2
        if self.ca_file:
            try:
                ctx.load_verify_locations(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise AvereConfigError(f"cannot load CA file {self.ca_file}: {exc.strerror or exc}") from None
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            # A pinned fingerprint replaces chain verification: cluster certificates are self-signed.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPSConnection that checks the peer certificate's SHA-256 (of its DER) right after the handshake."""

    def __init__(self, host: str, *, timeout: float, context: ssl.SSLContext, pin: str | None) -> None:
        super().__init__(host, timeout=timeout, context=context)
        self._pin = pin

    def connect(self) -> None:
        super().connect()
        if self._pin is None:
            return
        der = self.sock.getpeercert(binary_form=True) if self.sock else None
        actual = der_fingerprint(der) if der else "none"
        if actual != self._pin:
            self.close()
            raise AvereTLSError(
                f"TLS certificate fingerprint mismatch for {self.host}:{self.port}: expected {self._pin}, got {actual}"
            )


class RequestNotSent(ConnectionError):
    """Opening the connection failed (refused, reset, unreachable, handshake cut off): not one byte of the
    request was written, so the cluster cannot have run it and sending it again is safe."""


def _open(connection: http.client.HTTPConnection) -> None:
    """Connect (and complete the TLS handshake) before anything is written; RequestNotSent when that fails."""
    try:
        connection.connect()
    except (AvereTLSError, ssl.SSLCertVerificationError):
        connection.close()
        raise  # an untrusted peer is not a network hiccup: never retried, never sent to
    except ssl.SSLError as exc:
        connection.close()
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            raise RequestNotSent(f"{type(exc).__name__}: {exc}") from exc
        raise
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise RequestNotSent(f"{type(exc).__name__}: {exc}") from exc


class _CookieJarMixin(xmlrpc.client.Transport):
    """Keeps the session cookie (Set-Cookie) and sends it back, as averecmd's transport does; connects
    explicitly before writing, so that a failure to connect is known to have sent nothing."""

    _cookies: dict[str, str]

    def send_request(self, host: Any, handler: str, request_body: Any, debug: bool) -> Any:
        connection = self.make_connection(host)
        if connection.sock is None:
            _open(connection)
        return super().send_request(host, handler, request_body, debug)

    def request_once(self, host: Any, handler: str, request_body: bytes) -> Any:
        """One attempt on a new connection, never re-sent (the stdlib's `request` re-sends once by itself
        after a lost answer). A write goes this way: only RequestNotSent proves the cluster did not run it."""
        self.close()
        return self.single_request(host, handler, request_body)

    def send_headers(self, connection: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> None:
        if self._cookies:
            headers = [*headers, ("Cookie", "; ".join(f"{k}={v}" for k, v in self._cookies.items()))]
        super().send_headers(connection, headers)

    def parse_response(self, response: Any) -> Any:
        if hasattr(response, "msg"):
            for header in response.msg.get_all("Set-Cookie") or []:
                try:
                    parsed = SimpleCookie()
                    parsed.load(header)
                except CookieError:
                    continue
                for name, morsel in parsed.items():
                    self._cookies[name] = morsel.value
        return super().parse_response(response)

    def clear_cookies(self) -> None:
        self._cookies.clear()


class CookieSafeTransport(_CookieJarMixin, xmlrpc.client.SafeTransport):
    """HTTPS transport with a cookie jar, a timeout and optional certificate pinning."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self._tls = endpoint.ssl_context()
        super().__init__(use_builtin_types=True, context=self._tls)
        self._cookies = {}
        self._timeout = timeout
        self._pin = endpoint.fingerprint
        self.user_agent = USER_AGENT

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        cached = self._connection[1] if self._connection and host == self._connection[0] else None
        if isinstance(cached, http.client.HTTPSConnection):
            return cached
        chost, self._extra_headers, _ = self.get_host_info(host)
        conn = _PinnedHTTPSConnection(chost, timeout=self._timeout, context=self._tls, pin=self._pin)
        self._connection = host, conn
        return conn


class CookieTransport(_CookieJarMixin, xmlrpc.client.Transport):
    """Plain-HTTP transport with a cookie jar (loopback and insecure=True only)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(use_builtin_types=True)
        self._cookies = {}
        self._timeout = timeout
        self.user_agent = USER_AGENT

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        cached = self._connection[1] if self._connection and host == self._connection[0] else None
        if cached is not None:
            return cached
        chost, self._extra_headers, _ = self.get_host_info(host)
        conn = http.client.HTTPConnection(chost, timeout=self._timeout)
        self._connection = host, conn
        return conn


def make_transport(endpoint: Endpoint, timeout: float) -> CookieSafeTransport | CookieTransport:
    if endpoint.scheme == "https":
        return CookieSafeTransport(endpoint, timeout)
    return CookieTransport(timeout)
