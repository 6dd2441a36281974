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
from devstack.cluster.model import Filer, Junction
from devstack.cluster.registry import Ctx, rpc, text


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
    """sim.callLog([since]) => [{session, method, time}] of every call (sub-calls of multicall included);
    session is a short hash of the session, never the cookie."""
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


@rpc("sim.injectFault", level="sim")
def inject_fault(ctx: Ctx, method: Any, code: Any, fault_text: Any, count: Any = 1) -> str:
    """sim.injectFault(method, code, text, count) => 'success': the next `count` calls of method fail."""
    if not isinstance(code, int) or not isinstance(count, int) or count < 0:
        raise Fault(EINVAL, "code and count must be integers")
    ctx.cluster.injected[text(method, "method")] = [code, text(fault_text, "text"), count]
    return "success"


@rpc("sim.dropConnections", level="sim")
def drop_connections(ctx: Ctx, count: Any) -> str:
    """sim.dropConnections(count) => 'success': the next `count` requests are cut off without an answer."""
    if not isinstance(count, int) or count < 0:
        raise Fault(EINVAL, "count must be an integer >= 0")
    ctx.cluster.drops = count
    return "success"
