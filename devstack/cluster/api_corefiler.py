"""corefiler.*: list, get, create (cloud), modify, flush, remove, invalidate, dirty-data info."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict
from typing import Any

from devstack.cluster import objects
from devstack.cluster.blobio import StorageError
from devstack.cluster.codec import I8
from devstack.cluster.engine import NOT_CLOUD_POLICIES, Cluster
from devstack.cluster.faults import (
    AVERE_ERROR,
    EALREADY,
    EBUSY,
    EEXIST,
    EINUSE,
    EINVAL,
    ENOENT,
    ENOSUPPORT,
    ENOTALLOWED,
    Fault,
    flush_running,
    junctions_remain,
)
from devstack.cluster.model import Filer
from devstack.cluster.registry import Ctx, flag, rpc, struct, text, yes_no

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CRYPTO_MODES = ("DISABLED", "CBC-AES-256-HMAC-SHA-512")
COMPRESS_MODES = ("DISABLED", "LZ4")
SSL_MODES = ("X509", "OCSP_CRL", "OCSP", "CRL", "DISABLED")
BUCKET = re.compile(r"^[a-z0-9]{3,24}/[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?$")


def filer_json(cluster: Cluster, f: Filer) -> dict[str, Any]:
    policy = cluster.policy(f.policy) or {}
    return {
        "name": f.name,
        "type": "cloud",
        "id": str(f.id),
        "rev": "1",
        "internalName": f.internal,
        "adminState": f.admin_state,
        "clientSuspend": yes_no(f.client_suspend),
        "filerClass": "AvereCloud",
        "cloudType": "azure",
        "bucket": f.bucket,
        "networkName": f.server_name,
        "network": f.network,
        "cloudCredential": f.credential,
        "port": f.port,
        "https": f.https,
        "pathStyle": "no",
        "cryptoMode": f.crypto_mode,
        "compressMode": f.compress_mode,
        "sslVerifyMode": f.ssl_verify_mode,
        "keyMgmtType": "simpleKey",
        "proxy": f.proxy,
        "nearline": f.nearline,
        "policyName": f.policy,
        "writeMode": str(policy.get("cacheMode", "")),
        "maxWritebackDelay": str(policy.get("writebackDelay", 0)),
        "vservers": sorted({v for v, _ in cluster.state.junctions_of(f.name)}),
    }


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Fault(EINVAL, "expected a core filer name or a list of names")


@rpc("corefiler.list", readonly=True)
def corefiler_list(ctx: Ctx) -> list[str]:
    """corefiler.list() => [name, ...]: the core filers of the cluster."""
    return sorted(ctx.cluster.state.filers)


@rpc("corefiler.get", readonly=True)
def corefiler_get(ctx: Ctx, names: Any) -> dict[str, Any]:
    """corefiler.get(name | [names]) => {name: {type, adminState, bucket, cryptoMode, policyName, ...}}"""
    return {n: filer_json(ctx.cluster, ctx.cluster.filer(n)) for n in _names(names)}


@rpc("corefiler.listExports", readonly=True)
def corefiler_list_exports(ctx: Ctx, names: Any) -> dict[str, Any]:
    """corefiler.listExports(name | [names]) => {name: [{path}]}; a cloud filer exports '/' only."""
    return {n: [{"path": "/"}] for n in _names(names) if ctx.cluster.filer(n)}


def _option(options: dict[str, Any], key: str, default: str, allowed: tuple[str, ...] | None = None) -> str:
    value = options.get(key, default)
    value = yes_no(value) if isinstance(value, bool) else str(value)
    if allowed is not None and value not in allowed:
        raise Fault(EINVAL, f"Invalid {key} '{value}': expected one of {', '.join(allowed)}")
    return value


def _check_settings(c: Cluster, name: str, options: dict[str, Any]) -> tuple[str, str, str]:
    """(bucket, credential, cache policy) after the checks that need no storage access."""
    if not NAME.match(name):
        raise Fault(EINVAL, f"Invalid core filer name '{name}'")
    if name in c.state.filers or c.running("corefiler_create", name):
        raise Fault(EEXIST, f"Core filer '{name}' already exists")
    if options.get("cloudType", "azure") != "azure":
        raise Fault(ENOSUPPORT, f"cloudType '{options.get('cloudType')}' is not supported")
    if options.get("keyMgmtType", "simpleKey") != "simpleKey":
        raise Fault(ENOSUPPORT, "only keyMgmtType 'simpleKey' is supported")
    bucket = text(options.get("bucket"), "bucket")
    if not BUCKET.match(bucket):
        raise Fault(EINVAL, f"Invalid bucket '{bucket}': expected 'account/container'")
    credential = text(options.get("cloudCredential"), "cloudCredential")
    cred = c.state.credentials.get(credential)
    if cred is None:
        raise Fault(ENOENT, f"Cannot find credential '{credential}'")
    if cred.type != "azure-storage":
        raise Fault(EINVAL, f"Credential '{credential}' has type '{cred.type}', not 'azure-storage'")
    policy = _option(options, "cachePolicyName", "Full Caching")
    if c.policy(policy) is None:
        raise Fault(ENOENT, f"Cannot find cache policy '{policy}'")
    if policy in NOT_CLOUD_POLICIES:
        raise Fault(EINVAL, f"Cache policy '{policy}' cannot be used with a cloud core filer")
    users = [f.name for f in c.state.filers.values() if f.bucket == bucket]
    users += [
        a.filer
        for a in c.state.activities.values()
        if a.state == "inprogress" and a.process == "corefiler_create" and a.spec.get("bucket") == bucket
    ]
    if users:
        raise Fault(EINUSE, f"Bucket '{bucket}' is already used by core filer '{users[0]}'")
    return bucket, credential, policy


def _check_bucket(c: Cluster, bucket: str, credential: str, contents: str, crypto: str) -> objects.FsInfo | None:
    """The container must be empty for 'empty', and hold this simulator's filesystem for 'used'. For 'used' the
    filesystem's info object is read first (a point read); the container is listed only when it is not there, to
    tell a missing or unreadable container from one without a filesystem (Azurite's listing costs grow with the
    container, Azure's first page does not: a failover's attach must not slow down with the backup's size)."""
    try:
        storage = c.storage(bucket, credential)
        info = storage.fsinfo() if contents == "used" else None
        names = storage.probe() if info is None else []
    except StorageError as exc:
        raise Fault(AVERE_ERROR, f"Cannot access the cloud: {exc}") from None
    if contents == "empty" and names:
        raise Fault(EINVAL, f"Bucket '{bucket}' is not empty; use bucketContents 'used' to attach existing Avere data")
    if contents == "used":
        if info is None:
            raise Fault(EINVAL, f"Bucket '{bucket}' holds no Avere cloud filesystem")
        if info.crypto_mode != crypto:
            raise Fault(EINVAL, f"Bucket '{bucket}' was written with cryptoMode {info.crypto_mode}, not {crypto}")
    return info


@rpc("corefiler.createCloudFiler")
def corefiler_create_cloud(ctx: Ctx, name: Any, options: Any) -> str:
    """corefiler.createCloudFiler(name, filerOptions) => activity id.

    filerOptions: cloudType 'azure', bucket 'account/container', serverName, cloudCredential, cryptoMode,
    compressMode, sslVerifyMode, https, port, cachePolicyName, bucketContents 'empty' | 'used', ...
    """
    c = ctx.cluster
    name, options = text(name, "name"), struct(options, "filerOptions")
    bucket, credential, policy = _check_settings(c, name, options)
    contents = _option(options, "bucketContents", "empty", ("empty", "used"))
    crypto = _option(options, "cryptoMode", "DISABLED", CRYPTO_MODES)
    compress = _option(options, "compressMode", "LZ4", COMPRESS_MODES)
    info = _check_bucket(c, bucket, credential, contents, crypto)
    if info is not None:  # the existing filesystem decides compression and chunking
        compress, fsid, chunk = info.compress_mode, info.fsid, info.chunk_size
    else:
        fsid, chunk = secrets.token_hex(8), c.chunk_size
    account = bucket.split("/")[0]
    filer = Filer(
        name=name,
        id=c.state.next_id,
        internal=f"mass{c.state.next_id}",
        bucket=bucket,
        server_name=_option(options, "serverName", f"{account}.blob.core.windows.net"),
        credential=credential,
        crypto_mode=crypto,
        compress_mode=compress,
        ssl_verify_mode=_option(options, "sslVerifyMode", "DISABLED", SSL_MODES),
        https=_option(options, "https", "yes", ("yes", "no")),
        port=_option(options, "port", "443"),
        proxy=_option(options, "proxy", ""),
        nearline=_option(options, "nearline", "no"),
        network=_option(options, "filerNetwork", "cluster"),
        policy=policy,
        contents=contents,
        # Open question 4, decided: a filer attached to existing data starts with clients suspended.
        client_suspend=contents == "used",
        fsid=fsid,
        chunk_size=chunk,
        index_loaded=contents == "empty",
    )
    c.state.next_id += 1
    act = c.start_activity(
        "corefiler_create", name, f"Creating core filer '{name}'", c.timing.create, spec=asdict(filer)
    )
    return act.id


@rpc("corefiler.modify")
def corefiler_modify(ctx: Ctx, name: Any, attrs: Any) -> str:
    """corefiler.modify(name, {clientSuspend: 'yes'|'no'}) => 'success' (other attributes: not simulated)."""
    filer = ctx.cluster.filer(text(name, "name"))
    attrs = struct(attrs, "attributes")
    unknown = sorted(set(attrs) - {"clientSuspend"})
    if unknown:
        raise Fault(ENOSUPPORT, f"Modifying {', '.join(unknown)} is not supported")
    if "clientSuspend" in attrs:
        filer.client_suspend = flag(attrs["clientSuspend"], "clientSuspend")
    return "success"


@rpc("corefiler.unsuspend")
def corefiler_unsuspend(ctx: Ctx, name: Any) -> str:
    """corefiler.unsuspend(name) => 'success': resume client access."""
    ctx.cluster.filer(text(name, "name")).client_suspend = False
    return "success"


@rpc("corefiler.modifiedFilesInfo", readonly=True)
def corefiler_modified_files(ctx: Ctx, name: Any) -> dict[str, Any]:
    """corefiler.modifiedFilesInfo(name) => {oldestAge: seconds, numFiles: n}: data not yet written back."""
    filer = ctx.cluster.filer(text(name, "name"))
    dirty = [e for e in filer.files.values() if e.dirty]
    oldest = min((e.dirty_since for e in dirty), default=ctx.cluster.now())
    return {"numFiles": I8(len(dirty)), "oldestAge": I8(int(ctx.cluster.now() - oldest))}


def _dirty_count(filer: Filer) -> int:
    return sum(1 for e in filer.files.values() if e.dirty)


def _note_dirty(ctx: Ctx, filer: Filer) -> None:
    """The call log keeps the dirty count each flush, remove and invalidate met when it arrived, refused
    or not; a flush or remove that starts its job adds the activity id (tests assert on these)."""
    ctx.note(filer=filer.name, numFiles=_dirty_count(filer))


def _writeback_job(
    c: Cluster, filer: Filer, process: str, status: str, base: float, *, leave: int = 0, lose: bool = False
) -> str:
    """Start a job that writes the dirty files back, oldest first.

    leave: the newest `leave` dirty files are rewritten by a client just as the job starts, so the job
    does not cover them (leaveDirty). lose: nothing is written back; the cache goes with the filer
    (loseDirty).
    """
    work = [] if lose else [p for p, _ in c.data(filer).dirty()]
    if leave:
        now = c.now()
        for path in work[-leave:]:
            filer.files[path].dirty_since = filer.files[path].mtime = now
        work = work[:-leave]
    total = sum(filer.files[p].size for p in work)
    act = c.start_activity(
        process, filer.name, status, base + total / c.timing.bytes_per_second, work=work, total_bytes=total
    )
    return act.id


@rpc("corefiler.flush", level="maintenance")
def corefiler_flush(ctx: Ctx, name: Any) -> str:
    """corefiler.flush(name) => activity id: write every dirty file back to the cloud (maintenance API)."""
    c = ctx.cluster
    filer = c.filer(text(name, "name"))
    _note_dirty(ctx, filer)
    if c.running("corefiler_flush", filer.name):
        raise flush_running()
    if filer.admin_state == "removing":
        raise Fault(ENOTALLOWED, f"Core filer '{filer.name}' is being removed")
    leave = 0
    if _dirty_count(filer):
        rule = ctx.take("leaveDirty")
        leave = rule.files if rule is not None else 0
    filer.admin_state = "flushing"
    activity = _writeback_job(
        c, filer, "corefiler_flush", f"Flushing core filer '{filer.name}'", c.timing.flush_base, leave=leave
    )
    ctx.note(activity=activity)
    return activity


@rpc("corefiler.remove", level="maintenance")
def corefiler_remove(ctx: Ctx, name: Any) -> str:
    """corefiler.remove(name) => activity id: write back all changed data, then remove the core filer."""
    c = ctx.cluster
    filer = c.filer(text(name, "name"))
    _note_dirty(ctx, filer)
    if c.state.junctions_of(filer.name):
        raise junctions_remain()
    if filer.admin_state == "removing":
        raise Fault(EALREADY, f"Core filer '{filer.name}' is already being removed")
    if c.running("corefiler_flush", filer.name):
        raise Fault(EBUSY, f"Core filer '{filer.name}' is busy: corefiler_flush in progress")
    lose = bool(_dirty_count(filer)) and ctx.take("loseDirty") is not None
    filer.admin_state = "removing"
    activity = _writeback_job(
        c, filer, "corefiler_remove", f"Removing core filer '{filer.name}'", c.timing.remove_base, lose=lose
    )
    ctx.note(activity=activity)
    return activity


@rpc("corefiler.invalidate", level="maintenance")
def corefiler_invalidate(ctx: Ctx, name: Any) -> str:
    """corefiler.invalidate(name) => 'success': DISCARDS cached data, including unwritten client changes."""
    c = ctx.cluster
    filer = c.filer(text(name, "name"))
    _note_dirty(ctx, filer)
    if filer.index_loaded:
        c.data(filer).discard_dirty()
    return "success"
