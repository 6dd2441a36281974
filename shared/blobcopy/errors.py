"""Typed copy-engine errors, and the redaction every error text passes through (no SAS ever leaves)."""

from __future__ import annotations

import re
from typing import Any

# sig=<signature> in any URL or header value; also AccountKey=... in connection strings.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(sig=)[^&\s\"'<>]+"),
    re.compile(r"(?i)(accountkey=)[^;\s\"'<>]+"),
    re.compile(r"(?i)(sharedaccesssignature=)[^;\s\"'<>]+"),
)
# A URL with a query string: the query may be a whole SAS (se, sp, skoid...), so it goes entirely.
_URL_QUERY = re.compile(r"(https?://[^\s?\"'<>]+)\?[^\s\"'<>]*")


def redact(text: Any) -> str:
    """Text safe for logs, reports and exceptions: URL queries and signatures removed."""
    out = _URL_QUERY.sub(r"\1?<redacted>", str(text))
    for pattern in _SECRET_PATTERNS:
        out = pattern.sub(r"\1<redacted>", out)
    return out


class CopyInputError(ValueError):
    """Bad input (job, cursor, URL, argument): nothing was changed."""


class CopyError(RuntimeError):
    """A copy step failed; the message is redacted and says what failed and where."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class SourceUnreachable(CopyError):
    """An account or container could not be reached or read (bad credential, network, missing container)."""


class NotReady(CopyError):
    """A step was called before its page reached the state it needs (e.g. verify while copies pend)."""


def describe_http_error(exc: BaseException) -> str:
    """Short, redacted `status code: message` for an SDK error (its raw text may echo request details)."""
    status = getattr(exc, "status_code", None)
    code = error_code(exc)
    if status is None:
        text = str(getattr(exc, "message", None) or exc).strip().splitlines()
        return redact(f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)
    message = str(getattr(exc, "reason", "") or "") or type(exc).__name__
    parts = [str(p) for p in (status, code) if p]
    return redact(" ".join(parts) + (": " if parts else "") + message)


def error_code(exc: BaseException) -> str | None:
    """The service's error code as sent (the SDK turns known ones into StorageErrorCode enums)."""
    code = getattr(exc, "error_code", None)
    if code:
        return str(getattr(code, "value", code))
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None and hasattr(headers, "get"):
        value = headers.get("x-ms-error-code")
        return str(value) if value else None
    return None
