"""One XML-RPC request against a simulated cluster: session, login, API levels, multicall, call log."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

# The api modules register their methods on import.
from devstack.cluster import api_corefiler, api_keys, api_namespace, api_sim, api_system  # noqa: F401
from devstack.cluster.codec import decode_call, encode_fault, encode_result
from devstack.cluster.engine import Cluster, Session
from devstack.cluster.faults import (
    AVERE_ERROR,
    EINVAL,
    Fault,
    bad_args,
    login_required,
    not_supported,
    permission_denied,
)
from devstack.cluster.registry import METHODS, Ctx

log = logging.getLogger("devstack.cluster")

ALIASES = {"mass.": "corefiler."}  # 'mass' is the deprecated name of the corefiler module


def _canonical(method: str) -> str:
    for old, new in ALIASES.items():
        if method.startswith(old):
            return new + method[len(old) :]
    return method


def handle(cluster: Cluster, body: bytes, token: str | None) -> tuple[bytes, str | None]:  # noqa: PLR0911
    """(response body, new session token for Set-Cookie) for one request body."""
    with cluster.lock:
        cluster.tick()
        try:
            method, params = decode_call(body)
        except Exception:  # any parse failure is the client's: answer it, never crash the server
            return encode_fault(EINVAL, "Malformed XML-RPC request"), None
        session = cluster.sessions.get(token) if token else None
        if method == "system.login":
            cluster.log_call(session, method)
            return _login(cluster, params)
        if session is None:
            cluster.log_call(None, method)
            fault = login_required()
            return encode_fault(fault.code, fault.text), None
        try:
            result, mutated = _call(cluster, session, method, params)
        except Fault as fault:
            return encode_fault(fault.code, fault.text), None
        except Exception:
            log.exception("cluster %s: %s failed unexpectedly", cluster.name, method)
            return encode_fault(AVERE_ERROR, f"Internal error in {method}"), None
        if mutated:
            cluster.persist()
        try:
            return encode_result(result, session.int64), None
        except OverflowError:
            return encode_fault(EINVAL, "A 64-bit value does not fit the session's int64 form"), None


def _login(cluster: Cluster, params: tuple[Any, ...]) -> tuple[bytes, str | None]:
    if len(params) != 2 or not all(isinstance(p, str) for p in params):
        fault = bad_args("system.login")
        return encode_fault(fault.code, fault.text), None
    try:
        user = base64.b64decode(params[0], validate=True).decode()
        password = base64.b64decode(params[1], validate=True).decode()
    except (binascii.Error, ValueError):
        return encode_result("login failed: user and password must be base64"), None
    session = cluster.login(user, password)
    if session is None:
        log.info("cluster %s: login for user %s failed", cluster.name, user)
        return encode_result(f"login for user {user} failed"), None
    return encode_result("success"), session.token


def _call(cluster: Cluster, session: Session, method: str, params: tuple[Any, ...]) -> tuple[Any, bool]:
    cluster.log_call(session, method)
    if method == "system.multicall":
        return _multicall(cluster, session, params)
    name = _canonical(method)
    spec = METHODS.get(name)
    if spec is None:
        raise not_supported(method)
    if spec.level == "maintenance" and "maintenance" not in session.apis:
        raise permission_denied()
    injected = cluster.take_fault(name)
    if injected is not None:
        raise injected
    ctx = Ctx(cluster=cluster, session=session)
    if not spec.bind(ctx, params):
        raise bad_args(method)
    return spec.func(ctx, *params), not spec.readonly


def _multicall(cluster: Cluster, session: Session, params: tuple[Any, ...]) -> tuple[list[Any], bool]:
    if len(params) != 1 or not isinstance(params[0], list):
        raise bad_args("system.multicall")
    results: list[Any] = []
    mutated = False
    for item in params[0]:
        if not isinstance(item, dict) or not isinstance(item.get("methodName"), str):
            results.append({"faultCode": EINVAL, "faultString": "each call needs methodName and params"})
            continue
        if item["methodName"] == "system.multicall":
            results.append({"faultCode": EINVAL, "faultString": "Recursive system.multicall forbidden"})
            continue
        try:
            result, changed = _call(cluster, session, item["methodName"], tuple(item.get("params") or ()))
        except Fault as fault:
            results.append({"faultCode": fault.code, "faultString": fault.text})
            continue
        results.append([result])
        mutated = mutated or changed
    return results, mutated
