"""One XML-RPC request against a simulated cluster: session, login, API levels, multicall, call log."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
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
from devstack.cluster.inject import TRANSPORT
from devstack.cluster.registry import METHODS, Ctx, Request, canonical

log = logging.getLogger("devstack.cluster")


@dataclass(frozen=True)
class Reply:
    """What the server sends: an XML-RPC body, or an HTTP error status, or nothing (drop)."""

    body: bytes = b""
    token: str | None = None  # a new session token for Set-Cookie
    drop: bool = False
    status: int = 200
    close: bool = False
    close_idle: bool = False


def handle(cluster: Cluster, body: bytes, token: str | None) -> Reply:
    """The reply to one request body."""
    with cluster.lock:
        cluster.tick()
        try:
            method, params = decode_call(body)
        except Exception:  # any parse failure is the client's: answer it, never crash the server
            return Reply(encode_fault(EINVAL, "Malformed XML-RPC request"))
        session = cluster.sessions.get(token) if token else None
        if method == "system.login":
            cluster.log_call(session, method)
            return _login(cluster, params)
        if session is None:
            cluster.log_call(None, method)
            fault = login_required()
            return Reply(encode_fault(fault.code, fault.text))
        lost = _lost_on_the_way(cluster, session, method, params)
        if lost is not None:
            return lost
        request = Request()
        try:
            result = _call(cluster, session, method, params, request)
            payload = encode_result(result, session.int64)
        except Fault as fault:
            payload = encode_fault(fault.code, fault.text)
        except OverflowError:
            payload = encode_fault(EINVAL, "A 64-bit value does not fit the session's int64 form")
        except Exception:
            log.exception("cluster %s: %s failed unexpectedly", cluster.name, method)
            payload = encode_fault(AVERE_ERROR, f"Internal error in {method}")
        if request.mutated:
            cluster.persist()  # also when the answer is then lost: the cluster did the work
        return Reply(
            payload, drop=request.drop, status=request.status, close=request.close, close_idle=request.close_idle
        )


def _login(cluster: Cluster, params: tuple[Any, ...]) -> Reply:
    if len(params) != 2 or not all(isinstance(p, str) for p in params):
        fault = bad_args("system.login")
        return Reply(encode_fault(fault.code, fault.text))
    try:
        user = base64.b64decode(params[0], validate=True).decode()
        password = base64.b64decode(params[1], validate=True).decode()
    except (binascii.Error, ValueError):
        return Reply(encode_result("login failed: user and password must be base64"))
    session = cluster.login(user, password)
    if session is None:
        log.info("cluster %s: login for user %s failed", cluster.name, user)
        return Reply(encode_result(f"login for user {user} failed"))
    return Reply(encode_result("success"), token=session.token)


def _calls_in(method: str, params: tuple[Any, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    """The request's calls as sent: itself, and for a multicall its well-formed sub-calls."""
    calls = [(method, params)]
    if method == "system.multicall" and len(params) == 1 and isinstance(params[0], list):
        calls += [
            (item["methodName"], tuple(item.get("params") or ()))
            for item in params[0]
            if isinstance(item, dict) and isinstance(item.get("methodName"), str)
        ]
    return calls


def _lost_on_the_way(cluster: Cluster, session: Session, method: str, params: tuple[Any, ...]) -> Reply | None:
    """A 'before' drop or http rule for any call of the request: nothing runs; the calls are logged."""
    calls = _calls_in(method, params)
    for index, (name, args) in enumerate(calls):
        rule = cluster.faults.take(canonical(name), args, TRANSPORT, "before")
        if rule is None:
            continue
        for other, (sent, _) in enumerate(calls):
            entry = cluster.log_call(session, sent)
            if other == index:
                entry["injected"] = [rule.label]
        return Reply(drop=True) if rule.action == "drop" else Reply(status=rule.status)
    return None


def _call(cluster: Cluster, session: Session, method: str, params: tuple[Any, ...], request: Request) -> Any:
    entry = cluster.log_call(session, method)
    name = canonical(method)
    if method == "system.multicall":
        before = cluster.faults.take(name, params, ("fault",), "before")
        if before is not None:
            entry["injected"] = [before.label]
            raise Fault(before.code, before.text)
        results = _multicall(cluster, session, params, request)
        return _after(cluster, name, params, results, entry=entry, request=request)
    spec = METHODS.get(name)
    if spec is None:
        raise not_supported(method)
    if spec.level == "maintenance" and "maintenance" not in session.apis:
        raise permission_denied()
    before = cluster.faults.take(name, params, ("fault",), "before")
    if before is not None:
        entry["injected"] = [before.label]
        raise Fault(before.code, before.text)
    ctx = Ctx(cluster=cluster, session=session, method=name, params=params, entry=entry, request=request)
    if not spec.bind(ctx, params):
        raise bad_args(method)
    try:
        result = spec.func(ctx, *params)
    finally:
        # A method that fails part-way may still have changed something: persist then as well.
        request.mutated = request.mutated or not spec.readonly
    return _after(cluster, name, params, result, entry=entry, request=request)


def _after(
    cluster: Cluster, name: str, params: tuple[Any, ...], result: Any, *, entry: dict[str, Any], request: Request
) -> Any:
    """The call ran: an 'after' rule may lose or replace its answer, or rewrites may garble it."""
    rule = cluster.faults.take(name, params, ("fault", *TRANSPORT), "after")
    if rule is not None:
        entry.setdefault("injected", []).append(rule.label)
        if rule.action == "fault":
            raise Fault(rule.code, rule.text)
        if not (request.drop or request.status != 200):  # the first loss of a request decides
            request.drop, request.status = rule.action == "drop", rule.status or 200
        return result
    result, fired = cluster.faults.apply_rewrites(name, params, result)
    if fired:
        entry.setdefault("injected", []).extend(fired)
    return result


def _multicall(cluster: Cluster, session: Session, params: tuple[Any, ...], request: Request) -> list[Any]:
    if len(params) != 1 or not isinstance(params[0], list):
        raise bad_args("system.multicall")
    results: list[Any] = []
    for item in params[0]:
        if not isinstance(item, dict) or not isinstance(item.get("methodName"), str):
            results.append({"faultCode": EINVAL, "faultString": "each call needs methodName and params"})
            continue
        if item["methodName"] == "system.multicall":
            results.append({"faultCode": EINVAL, "faultString": "Recursive system.multicall forbidden"})
            continue
        try:
            result = _call(cluster, session, item["methodName"], tuple(item.get("params") or ()), request)
        except Fault as fault:
            results.append({"faultCode": fault.code, "faultString": fault.text})
            continue
        results.append([result])
    return results
