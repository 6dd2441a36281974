"""A logged-in XML-RPC session with an Avere cluster: login, calls, multicall, retries, scrubbing."""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import ssl
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from shared.avere.errors import (
    AvereAnswerLost,
    AvereConnectionError,
    AvereError,
    AvereFault,
    AvereLoginError,
    AverePermissionDenied,
    AvereTLSError,
    fault_error,
    is_retryable,
)
from shared.avere.methods import may_resend
from shared.avere.transport import Endpoint, RequestNotSent, make_transport

log = logging.getLogger("shared.avere.client")

_REDACTED = "***"
_MIN_SECRET = 4  # shorter strings would scrub ordinary words out of fault texts


class _SubFault(Exception):
    """A fault inside a multicall, carried out of the attempt with the sub-call's method name."""

    def __init__(self, method: str, code: int, text: str) -> None:
        super().__init__(method)
        self.method, self.code, self.text = method, code, text


class AvereSession:
    """Cookie session to one cluster. Secrets passed in never reach logs, reprs or exception texts."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        ca_file: str | None = None,
        fingerprint_sha256: str | None = None,
        insecure: bool = False,
        insecure_acknowledged: bool = False,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if not user or not password:
            raise ValueError("user and password are required")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")
        self.endpoint = Endpoint.parse(
            url,
            ca_file=ca_file,
            fingerprint_sha256=fingerprint_sha256,
            insecure=insecure,
            insecure_acknowledged=insecure_acknowledged,
        )
        self.url = url
        self.user = user
        self._password = password
        self._secrets: set[str] = set()
        self.add_secrets([password, base64.b64encode(password.encode()).decode()])
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep  # between retries; a virtual clock's advance in tests
        self._transport = make_transport(self.endpoint, timeout)
        self._logged_in = False

    def __repr__(self) -> str:
        return f"AvereSession(url={self.url!r}, user={self.user!r})"

    # -- secrets ---------------------------------------------------------------------------------------
    def add_secrets(self, values: Iterable[str]) -> None:
        """Remember values that must be scrubbed from any text this session produces."""
        for value in values:
            if isinstance(value, str) and len(value) >= _MIN_SECRET:
                self._secrets.add(value)
                # Recovery files are base64 with embedded newlines: scrub each line as well.
                self._secrets.update(line for line in value.splitlines() if len(line) >= 16)

    def scrub(self, text: str, extra: Iterable[str] = ()) -> str:
        extra_values = {s for s in extra if isinstance(s, str) and len(s) >= _MIN_SECRET}
        secrets = sorted(self._secrets | extra_values, key=len, reverse=True)
        for value in secrets:
            text = text.replace(value, _REDACTED)
        return text

    # -- session ---------------------------------------------------------------------------------------
    def login(self) -> None:
        user = base64.b64encode(self.user.encode()).decode()
        password = base64.b64encode(self._password.encode()).decode()
        self._transport.clear_cookies()
        self._logged_in = False
        answer = self._with_retries(
            "system.login", lambda: self._raw("system.login", (user, password), True), (), resend=True
        )
        if answer != "success":
            reason = self.scrub(str(answer))
            raise AvereLoginError(
                f"login for user {self.user} at {self.endpoint.host} failed: {reason}", method="system.login"
            )
        self._logged_in = True
        log.debug("avere: logged in to %s as %s", self.endpoint.host, self.user)

    def logout(self) -> None:
        if self._logged_in:
            # A failed logout is harmless: the session dies with the cluster's timeout anyway.
            with contextlib.suppress(xmlrpc.client.Fault, OSError, http.client.HTTPException, AvereError):
                self._raw("system.logout", (), True)
        self._logged_in = False
        self._transport.close()

    def call(self, method: str, *params: Any, secrets: Sequence[str] = ()) -> Any:
        """Call one method; `secrets` are parameter values to scrub from any error text.

        Reads (and idempotent setters) are retried on any transient failure. A write is sent again only when
        it surely was not sent (the connection could not be opened); a fault answer raises its typed error,
        and a lost answer raises AvereAnswerLost: the caller reads the state back before anything else.
        """
        resend = may_resend([method])
        return self._session_call(method, lambda: self._raw(method, params, resend), secrets, resend)

    def multicall(self, calls: Sequence[tuple[str, Sequence[Any]]], secrets: Sequence[str] = ()) -> list[Any]:
        """system.multicall: all calls in one request and session; raises the first sub-call fault. It counts
        as a write (never re-sent after it may have run) unless every sub-call is a read or idempotent."""
        payload = [{"methodName": m, "params": list(p)} for m, p in calls]
        label = "system.multicall(" + ",".join(m for m, _ in calls) + ")"
        resend = may_resend([m for m, _ in calls])

        def attempt() -> list[Any]:
            results = self._raw("system.multicall", (payload,), resend)
            out: list[Any] = []
            for (method, _), item in zip(calls, results, strict=True):
                if isinstance(item, dict) and "faultCode" in item:
                    raise _SubFault(method, int(item["faultCode"]), str(item.get("faultString", "")))
                out.append(item[0])
            return out

        return self._session_call(label, attempt, secrets, resend)

    # -- internals -------------------------------------------------------------------------------------
    def _raw(self, method: str, params: Sequence[Any], resend: bool) -> Any:
        body = xmlrpc.client.dumps(tuple(params), method, allow_none=False).encode()
        host, handler = self.endpoint.host, self.endpoint.handler
        # A write goes out once, on a new connection: an idle keep-alive connection the cluster closed would
        # otherwise turn "never sent" into "maybe applied", and the stdlib would re-send it by itself.
        result = (
            self._transport.request(host, handler, body)
            if resend
            else self._transport.request_once(host, handler, body)
        )
        return result[0] if len(result) == 1 else result

    def _session_call(self, label: str, attempt: Callable[[], Any], secrets: Sequence[str], resend: bool) -> Any:
        relogged = False
        while True:
            if not self._logged_in:
                self.login()
            try:
                started = time.monotonic()
                result = self._with_retries(label, attempt, secrets, resend=resend)
                log.debug("avere: %s ok in %.2fs", label, time.monotonic() - started)
                return result
            except AverePermissionDenied:
                # A lost session (cluster restart, timeout) reads as EPERM: log in again once.
                if relogged:
                    raise
                relogged = True
                self._logged_in = False

    def _with_retries(self, label: str, attempt: Callable[[], Any], secrets: Sequence[str], *, resend: bool) -> Any:
        """Run `attempt` with bounded backoff. resend=False (a write): retried only after RequestNotSent."""
        tries = 0
        while True:
            try:
                return attempt()
            except (
                xmlrpc.client.Fault,
                _SubFault,
                OSError,
                http.client.HTTPException,
                xmlrpc.client.ProtocolError,
            ) as exc:
                err, retry = self._failure(label, exc, tries, secrets, resend)
            if not retry or tries >= self.retries:
                # Faults are often expected answers (e.g. probing a removed filer): the caller decides.
                log.log(logging.DEBUG if isinstance(err, AvereFault) else logging.WARNING, "avere: %s", err)
                raise err from None
            tries += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (tries - 1))
            log.info(
                "avere: %s failed (%s), retry %d/%d in %.1fs", label, type(err).__name__, tries, self.retries, delay
            )
            self.sleep(delay)

    def _failure(
        self, label: str, exc: Exception, tries: int, secrets: Sequence[str], resend: bool
    ) -> tuple[AvereError, bool]:
        """(the typed error, whether to try again) for a failed attempt; TLS trust failures raise at once."""
        if isinstance(exc, xmlrpc.client.Fault | _SubFault):
            if isinstance(exc, _SubFault):
                method, code, text = exc.method, exc.code, exc.text
            else:
                method, code, text = label, int(exc.faultCode), str(exc.faultString)
            err = fault_error(method, code, self.scrub(text, secrets))
            # A fault after a write may come after the cluster applied it: the caller decides, never a retry.
            return err, resend and is_retryable(err)
        detail = self.scrub(str(exc) if isinstance(exc, RequestNotSent) else f"{type(exc).__name__}: {exc}", secrets)
        if isinstance(exc, RequestNotSent):  # nothing was written: safe to send again, write or not
            return self._connection_error(label, detail, tries), True
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise AvereTLSError(
                f"{label}: TLS certificate of {self.endpoint.host} not trusted: {exc.verify_message or exc.reason}",
                method=label,
            ) from None
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            raise AvereTLSError(
                f"{label}: TLS handshake with {self.endpoint.host} failed: {exc.reason}", method=label
            ) from None
        if isinstance(exc, xmlrpc.client.ProtocolError):
            text = f"HTTP {exc.errcode} {exc.errmsg}"
            if exc.errcode < 500:
                return AvereConnectionError(f"{label}: {text} from {self.endpoint.host}", method=label), False
            return self._lost(label, text, tries, resend), resend
        return self._lost(label, detail, tries, resend), resend

    def _connection_error(self, label: str, detail: str, tries: int) -> AvereConnectionError:
        return AvereConnectionError(
            f"{label}: cannot reach {self.endpoint.host} after {tries + 1} attempt(s): {detail}", method=label
        )

    def _lost(self, label: str, detail: str, tries: int, resend: bool) -> AvereConnectionError:
        """The request went out and no answer came back: a read is tried again, a write may have run."""
        if resend:
            return self._connection_error(label, detail, tries)
        return AvereAnswerLost(
            f"{label}: the request reached {self.endpoint.host} but its answer was lost "
            f"({detail}); the cluster may have applied it, so it is not sent again blindly",
            method=label,
        )
