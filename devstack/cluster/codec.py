"""XML-RPC encoding of the simulator's answers, including 64-bit values per setInt64Representation."""

from __future__ import annotations

import xmlrpc.client
from typing import Any, ClassVar

INT64_MODES = ("i8", "int", "i4", "double", "float", "string")
_I4_MIN, _I4_MAX = -(2**31), 2**31 - 1


class I8(int):
    """A 64-bit value: marshalled as <i8> (or as the session's setInt64Representation asks)."""


class _Marshaller(xmlrpc.client.Marshaller):
    dispatch: ClassVar[dict[type, Any]] = dict(xmlrpc.client.Marshaller.dispatch)

    def __init__(self, int64: str) -> None:
        super().__init__("utf-8", allow_none=False)
        self.int64 = int64

    def dump_i8(self, value: int, write: Any) -> None:
        if self.int64 == "i8":
            write(f"<value><i8>{int(value)}</i8></value>\n")
        elif self.int64 in ("double", "float"):
            write(f"<value><double>{float(value)!r}</double></value>\n")
        elif self.int64 == "string":
            write(f"<value><string>{int(value)}</string></value>\n")
        else:
            if not _I4_MIN <= value <= _I4_MAX:
                raise OverflowError("int exceeds XML-RPC limits")
            write(f"<value><int>{int(value)}</int></value>\n")

    dispatch[I8] = dump_i8


def encode_result(result: Any, int64: str = "i8") -> bytes:
    body = _Marshaller(int64).dumps((result,))
    return ("<?xml version='1.0'?>\n<methodResponse>\n" + body + "</methodResponse>\n").encode()


def encode_fault(code: int, text: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, text), methodresponse=True).encode()


def decode_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    params, method = xmlrpc.client.loads(body, use_builtin_types=True)
    if not method:
        raise ValueError("not a methodCall")
    return method, params
