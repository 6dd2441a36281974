"""Typed errors of the Avere management client: one class per XML-RPC fault code, secret-free texts."""

from __future__ import annotations

import re

# Fault codes of the cluster's avereRpc module (mirrored by averecmd.py's AvereXmlRpcStatus).
FAULT_NAMES: dict[int, str] = {
    100: "AVERE_ERROR",
    101: "EPERM",
    102: "ENOENT",
    103: "EINVAL",
    104: "EALREADY",
    105: "ENOTALLOWED",
    106: "EEXIST",
    107: "EINUSE",
    108: "ENOSUPPORT",
    109: "EBUSY",
    200: "WARNING",
}

# vFXT.py retries these codes; they cover transient states right after creation or during activities.
RETRYABLE_CODES = frozenset({100, 102, 109})


class AvereError(Exception):
    """Anything that went wrong talking to a cluster; `method` names the call, texts never hold secrets."""

    def __init__(self, message: str, *, method: str | None = None) -> None:
        super().__init__(message)
        self.method = method


class AvereConfigError(AvereError, ValueError):
    """The caller's input is unusable (bad URL, no TLS trust, bad record); nothing was sent."""


class AvereTLSError(AvereError):
    """The server's certificate is not trusted (CA verification or fingerprint pin failed)."""


class AvereConnectionError(AvereError):
    """The cluster could not be reached, even after the bounded retries."""


class AvereAnswerLost(AvereConnectionError):
    """A write reached the cluster and its answer was lost (connection cut, HTTP 5xx, timeout): it may have
    been applied. It is never sent again blindly: the caller reads the state back and goes on from there."""


class AvereLoginError(AvereError):
    """system.login did not answer 'success'."""


class AvereActivityFailed(AvereError):
    """A cluster activity ended in state 'failure'; `status` is the cluster's text."""

    def __init__(self, message: str, *, activity_id: str, status: str, method: str | None = None) -> None:
        super().__init__(message, method=method)
        self.activity_id = activity_id
        self.status = status


class AvereConflict(AvereError):
    """The cluster's state contradicts the request (e.g. a filer of that name on another bucket)."""


class AvereUnexpectedAnswer(AvereError):
    """A cluster answer lacks a field the runbook decides on, or holds a value of the wrong kind: never read
    as a default (a missing `numFiles` is not "clean")."""


class AvereFault(AvereError):
    """The server answered with an XML-RPC fault: `code`, `code_name` and its (scrubbed) `text`."""

    code: int = 0

    def __init__(self, method: str, code: int, text: str) -> None:
        name = FAULT_NAMES.get(code, "UNKNOWN")
        super().__init__(f"{method} failed: fault {code} {name}: {text}", method=method)
        self.code = code
        self.code_name = name
        self.text = text


class AvereGenericError(AvereFault):
    code = 100


class AverePermissionDenied(AvereFault):
    code = 101


class AvereNotFound(AvereFault):
    code = 102


class AvereInvalid(AvereFault):
    code = 103


class AvereAlready(AvereFault):
    code = 104


class AvereNotAllowed(AvereFault):
    code = 105


class AvereExists(AvereFault):
    code = 106


class AvereInUse(AvereFault):
    code = 107


class AvereNotSupported(AvereFault):
    code = 108


class AvereBusy(AvereFault):
    code = 109


class AvereWarning(AvereFault):
    code = 200


class FilerNotFound(AvereNotFound):
    """'Cannot find MASS ...': no core filer of that name."""


class JunctionNotFound(AvereNotFound):
    """'Cannot find junction ...'."""


class JunctionsRemain(AvereInUse):
    """corefiler.remove refused: the filer's junctions must be removed first."""


class FlushInProgress(AvereGenericError):
    """'corefiler_flush already in progress': another flush runs on the filer."""


_BY_CODE: dict[int, type[AvereFault]] = {
    cls.code: cls
    for cls in (
        AvereGenericError,
        AverePermissionDenied,
        AvereNotFound,
        AvereInvalid,
        AvereAlready,
        AvereNotAllowed,
        AvereExists,
        AvereInUse,
        AvereNotSupported,
        AvereBusy,
        AvereWarning,
    )
}

# Texts known to be final whatever their code (the Terraform provider treats the same set as non-retryable).
_BY_TEXT: tuple[tuple[re.Pattern[str], type[AvereFault]], ...] = (
    (re.compile(r"Cannot find MASS", re.IGNORECASE), FilerNotFound),
    (re.compile(r"Cannot find junction", re.IGNORECASE), JunctionNotFound),
    (re.compile(r"must remove the related junction", re.IGNORECASE), JunctionsRemain),
    (re.compile(r"corefiler_flush already in progress", re.IGNORECASE), FlushInProgress),
)
_FINAL_TEXTS = (
    re.compile(r"Wrong number of arguments", re.IGNORECASE),
    re.compile(r"login for user .* failed", re.IGNORECASE),
)


def fault_error(method: str, code: int, text: str) -> AvereFault:
    """Map a server fault (text already scrubbed) to its typed error: known texts first, then the code."""
    for pattern, cls in _BY_TEXT:
        if pattern.search(text):
            return cls(method, code, text)
    cls = _BY_CODE.get(code, AvereFault)
    err = cls(method, code, text)
    err.code = code
    return err


def is_retryable(err: AvereFault) -> bool:
    """Retry 100/102/109 as vFXT.py does, except faults whose text says retrying cannot help."""
    if type(err) in (FilerNotFound, JunctionNotFound, JunctionsRemain, FlushInProgress):
        return False
    if any(p.search(err.text) for p in _FINAL_TEXTS):
        return False
    return err.code in RETRYABLE_CODES
