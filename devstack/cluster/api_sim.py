"""sim.*: test and demo helpers, NOT part of the Avere API (NFS-client file I/O, inspection, faults)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from devstack.cluster import objects
from devstack.cluster.blobio import StorageError
from devstack.cluster.codec import I8
from devstack.cluster.faults import AVERE_ERROR, EINVAL, ENOENT, ENOSUPPORT, Fault
from devstack.cluster.filedata import FilerData, normalize
from devstack.cluster.inject import parse_rule
from devstack.cluster.model import Filer, Junction
from devstack.cluster.registry import METHODS, Ctx, canonical, rpc, text


def _junctions(ctx: Ctx, vserver: Any) -> tuple[str, dict[str, Junction]]:
    vs = ctx.cluster.state.vservers.get(text(vserver, "vserver"))
    if vs is None:
        raise Fault(ENOENT, f"Cannot find vserver '{vserver}'")
    return vs.name, vs.junctions


def _root(j: Junction) -> str:
    return normalize("/" + j.subdir)


def _resolve(ctx: Ctx, vserver: Any, path: Any) -> tuple[Filer, FilerData, str]:
    """(filer, its data, filer-relative path) for a namespace path, through the longest junction."""
    name, junctions = _junctions(ctx, vserver)
    path = normalize(text(path, "path"))
    matches = [j for p, j in junctions.items() if path == p or path.startswith(p + "/")]
    if not matches:
        raise Fault(ENOENT, f"No junction holds {path} on vserver '{name}'")
    j = max(matches, key=lambda m: len(m.path))
    filer = ctx.cluster.filer(j.filer)
    data = ctx.cluster.data(filer)
    _io(data.require_access)
    return filer, data, normalize(_root(j) + path[len(j.path) :])


def _io(action: Any, *args: Any) -> Any:
    """Storage and object errors reach the NFS client as I/O errors (here: fault 100 with the reason)."""
    try:
        return action(*args)
    except (StorageError, objects.ObjectError) as exc:
        raise Fault(AVERE_ERROR, f"I/O error: {exc}") from None


@rpc("sim.writeFile", level="sim")
def write_file(ctx: Ctx, vserver: Any, path: Any, data_b64: Any) -> str:
    """sim.writeFile(vserver, path, data_base64) => 'success': write a whole file as an NFS client would.
    The data stays dirty in the cache until the policy's writeback delay, a flush or a remove."""
    try:
        data = base64.b64decode(text(data_b64, "data", empty=True), validate=True)
    except (binascii.Error, ValueError):
        raise Fault(EINVAL, "data must be base64") from None
    filer, files, rel = _resolve(ctx, vserver, path)
    _io(files.write, rel, data, ctx.cluster.now(), ctx.cluster.write_through(filer))
    return "success"


@rpc("sim.readFile", level="sim")
def read_file(ctx: Ctx, vserver: Any, path: Any) -> str:
    """sim.readFile(vserver, path) => data_base64, from the cache or the filer's container."""
    _, files, rel = _resolve(ctx, vserver, path)
    return base64.b64encode(_io(files.read, rel)).decode()


@rpc("sim.deleteFile", level="sim")
def delete_file(ctx: Ctx, vserver: Any, path: Any) -> str:
    """sim.deleteFile(vserver, path) => 'success'; the deletion is written back like any change."""
    filer, files, rel = _resolve(ctx, vserver, path)
    _io(files.delete, rel, ctx.cluster.now(), ctx.cluster.write_through(filer))
    return "success"


@rpc("sim.listFiles", level="sim")
def list_files(ctx: Ctx, vserver: Any, path: Any = "/") -> list[dict[str, Any]]:
    """sim.listFiles(vserver, path) => [{path, size, dirty}] for every file at or below path."""
    _, junctions = _junctions(ctx, vserver)
    path = normalize(text(path, "path"))
    prefix = "/" if path == "/" else path + "/"
    out: list[dict[str, Any]] = []
    for jpath, j in sorted(junctions.items()):
        if not (jpath == path or jpath.startswith(prefix) or path.startswith(jpath + "/")):
            continue
        filer = ctx.cluster.filer(j.filer)
        files = ctx.cluster.data(filer)
        _io(files.require_access)
        root = _root(j)
        for rel, entry in files.listing(root):
            ns = jpath + (rel[len(root) :] if root != "/" else rel)
            if ns == path or ns.startswith(prefix):
                out.append({"path": ns, "size": I8(entry.size), "dirty": entry.dirty})
    return out


@rpc("sim.dirtyFiles", level="sim", readonly=True)
def dirty_files(ctx: Ctx, filer: Any) -> list[str]:
    """sim.dirtyFiles(filerName) => [filer-relative path, ...] not yet written back (deletions included)."""
    f = ctx.cluster.filer(text(filer, "filerName"))
    return [p for p, e in sorted(f.files.items()) if e.dirty]


@rpc("sim.callLog", level="sim", readonly=True)
def call_log(ctx: Ctx, since: Any = 0) -> list[dict[str, Any]]:
    """sim.callLog([since]) => [{session, method, time, ...}] of every call (sub-calls of multicall included);
    session is a short hash of the session, never the cookie. corefiler.flush, remove and invalidate add
    filer and numFiles (dirty files when the call arrived), and activity once their job started; a call an
    injected rule hit adds injected: [label, ...]."""
    start = since if isinstance(since, int) and since >= 0 else 0
    return [dict(e) for e in ctx.cluster.call_log[start:]]


@rpc("sim.advanceClock", level="sim")
def advance_clock(ctx: Ctx, seconds: Any) -> float:
    """sim.advanceClock(seconds) => the cluster's new time: moves an adjustable clock forward."""
    advance = getattr(ctx.cluster.clock, "advance", None)
    if advance is None:
        raise Fault(ENOSUPPORT, "this cluster's clock cannot be moved")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise Fault(EINVAL, "seconds must be a number >= 0")
    advance(float(seconds))
    ctx.cluster.tick()
    return float(ctx.cluster.now())


def _known_methods() -> set[str]:
    """What a rule may name: every cluster method and system.multicall; not login, not sim.*."""
    return {m.name for m in METHODS.values() if m.level != "sim"} | {"system.multicall"}


@rpc("sim.injectFault", level="sim")
def inject_fault(ctx: Ctx, spec: Any, code: Any = None, fault_text: Any = None, count: Any = 1) -> str:
    """sim.injectFault(rule) => rule id; sim.injectFault(method, code, text, [count]) => 'success'.

    rule: {method, action, [count=1], [args], ...}; action 'fault' (code, text, when), 'drop' (when),
    'http' (status, when), 'rewrite' (path, op 'drop'|'set', value), 'leaveDirty' (files; corefiler.flush),
    'loseDirty' (corefiler.remove). when: 'before' (nothing runs) or 'after' (the call runs, its answer is
    lost or replaced). args: the call's leading parameters must equal these. The positional form makes the
    next `count` calls of method fail before running (count 0 clears it). See docs/simulator.md.
    """
    book = ctx.cluster.faults
    if isinstance(spec, dict):
        if code is not None or fault_text is not None:
            raise Fault(EINVAL, "give either one rule struct or (method, code, text, count)")
        known = _known_methods()
        spec = {**spec, "method": canonical(spec["method"]) if isinstance(spec.get("method"), str) else None}
        rule = parse_rule(book.new_id(), spec, known)
        book.add(rule)
        return rule.id
    if not isinstance(code, int) or not isinstance(count, int) or count < 0:
        raise Fault(EINVAL, "code and count must be integers")
    book.set_legacy(canonical(text(spec, "method")), code, text(fault_text, "text"), count)
    return "success"


@rpc("sim.listFaults", level="sim", readonly=True)
def list_faults(ctx: Ctx) -> dict[str, Any]:
    """sim.listFaults() => {rules: [rule with remaining count], dropConnections: n, refuseConnections: n}"""
    c = ctx.cluster
    return {"rules": [r.to_json() for r in c.faults.rules], "dropConnections": c.drops, "refuseConnections": c.refusals}


@rpc("sim.clearFaults", level="sim")
def clear_faults(ctx: Ctx, method: Any = "") -> int:
    """sim.clearFaults([method]) => rules removed: every rule, or those of one method; connection
    faults (dropConnections, refuseConnections) are cleared with the full form."""
    name = text(method, "method", empty=True)
    if name:
        return ctx.cluster.faults.clear(canonical(name))
    ctx.cluster.drops = ctx.cluster.refusals = 0
    return ctx.cluster.faults.clear()


@rpc("sim.dropConnections", level="sim")
def drop_connections(ctx: Ctx, count: Any) -> str:
    """sim.dropConnections(count) => 'success': the next `count` requests are read, then cut off without an
    answer and without running (any method)."""
    if not isinstance(count, int) or count < 0:
        raise Fault(EINVAL, "count must be an integer >= 0")
    ctx.cluster.drops = count
    return "success"


@rpc("sim.refuseConnections", level="sim")
def refuse_connections(ctx: Ctx, count: Any) -> str:
    """sim.refuseConnections(count) => 'success': the next `count` new connections are reset before the TLS
    handshake, so no request is sent on them. This answer closes its own connection and the server's idle
    keep-alive connections, so every client's next request opens a new connection."""
    if not isinstance(count, int) or count < 0:
        raise Fault(EINVAL, "count must be an integer >= 0")
    ctx.cluster.refusals = count
    if count:
        ctx.request.close = ctx.request.close_idle = True
    return "success"
