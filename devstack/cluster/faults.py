"""The simulator's XML-RPC faults: the cluster's codes and the exact texts clients match on."""

from __future__ import annotations

AVERE_ERROR = 100
EPERM = 101
ENOENT = 102
EINVAL = 103
EALREADY = 104
ENOTALLOWED = 105
EEXIST = 106
EINUSE = 107
ENOSUPPORT = 108
EBUSY = 109


class Fault(Exception):
    """Raised by a method implementation; the server turns it into an XML-RPC fault."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def permission_denied() -> Fault:
    return Fault(EPERM, "Permission denied")


def login_required() -> Fault:
    return Fault(EPERM, "Permission denied: no valid session, call system.login first")


def no_filer(name: str) -> Fault:
    # The cluster's text is a KeyError's str(), hence the quotes the Terraform provider's regex expects.
    return Fault(ENOENT, f"'Cannot find MASS {name}'")


def no_junction(path: str) -> Fault:
    return Fault(ENOENT, f"removeJunction failed: 'Cannot find junction {path}'")


def junctions_remain() -> Fault:
    return Fault(EINUSE, "You must remove the related junction(s) before you can remove this core filer")


def flush_running() -> Fault:
    return Fault(AVERE_ERROR, "Could not start job corefiler_flush, corefiler_flush already in progress.")


def not_supported(method: str) -> Fault:
    return Fault(ENOSUPPORT, f"Method not supported: {method}")


def bad_args(method: str) -> Fault:
    return Fault(EINVAL, f"Wrong number of arguments for {method}")


def invalid(text: str) -> Fault:
    return Fault(EINVAL, text)
