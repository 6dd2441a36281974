"""The simulator's cloud-filesystem object format: self-describing, authenticated, optionally encrypted.

A container holds `avere.fsinfo` (plain JSON: format, fsid, crypto and compression modes, chunk size), one
inode object `i/<objid>` per file (path, size, generation, chunk count) and its data in chunk objects
`c/<objid>/<gen>/<n>`. Blob metadata with mixed-case keys (AvereObjId, AvereKeyId, ...) tells a reader how to
open an object; the metadata and the blob name are bound into the object's authentication (AES-GCM
associated data, or a SHA-256 digest when the filer does not encrypt), so a copy that drops or renames a
metadata key, changes its case or changes a byte fails loudly on read.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "avere-sim-clfs/1"
FSINFO = "avere.fsinfo"
CHUNK_SIZE = 1024 * 1024
_NONCE = 12

# Metadata a reader needs; exact case matters (Azure keeps the case it was given).
M_FORMAT, M_KIND, M_OBJ, M_GEN, M_CHUNK = "AvereFormat", "AvereKind", "AvereObjId", "AvereGen", "AvereChunk"
M_KEY, M_DIGEST, M_FSID = "AvereKeyId", "AvereDigest", "AvereFsId"


class ObjectError(Exception):
    """An object cannot be read back: missing/changed metadata, failed authentication, unknown key."""


@dataclass(frozen=True)
class FsInfo:
    fsid: str
    crypto_mode: str
    compress_mode: str
    chunk_size: int = CHUNK_SIZE

    @property
    def encrypted(self) -> bool:
        return self.crypto_mode != "DISABLED"


def fsinfo_object(info: FsInfo) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "format": FORMAT,
            "fsid": info.fsid,
            "cryptoMode": info.crypto_mode,
            "compressMode": info.compress_mode,
            "chunkSize": info.chunk_size,
        }
    ).encode()
    meta = {M_FORMAT: FORMAT, M_KIND: "fsinfo", M_FSID: info.fsid}
    meta[M_DIGEST] = _digest(FSINFO, meta, body)
    return body, meta


def read_fsinfo(body: bytes, meta: dict[str, str]) -> FsInfo:
    _require(FSINFO, meta, (M_FORMAT, M_KIND, M_FSID, M_DIGEST))
    if meta[M_DIGEST] != _digest(FSINFO, meta, body):
        raise ObjectError(f"{FSINFO}: content or metadata changed (digest mismatch)")
    data = json.loads(body)
    if data.get("format") != FORMAT or data.get("fsid") != meta[M_FSID]:
        raise ObjectError(f"{FSINFO}: unknown format or fsid mismatch")
    return FsInfo(
        fsid=data["fsid"],
        crypto_mode=data["cryptoMode"],
        compress_mode=data["compressMode"],
        chunk_size=int(data["chunkSize"]),
    )


def inode_name(objid: str) -> str:
    return f"i/{objid}"


def chunk_name(objid: str, gen: int, index: int) -> str:
    return f"c/{objid}/{gen}/{index}"


def _aad(name: str, meta: dict[str, str], keys: tuple[str, ...]) -> bytes:
    lines = [FORMAT, name] + [f"{k}={meta[k]}" for k in sorted(keys)]
    return "\n".join(lines).encode()


def _digest(name: str, meta: dict[str, str], body: bytes) -> str:
    keys = tuple(k for k in meta if k != M_DIGEST)
    return hashlib.sha256(_aad(name, meta, keys) + b"\0" + body).hexdigest()


def _require(name: str, meta: dict[str, str], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ObjectError(
            f"{name}: blob metadata lacks {', '.join(missing)} (keys present: {', '.join(sorted(meta)) or 'none'})"
        )


def _bound_keys(kind: str, encrypted: bool) -> tuple[str, ...]:
    keys = (M_FORMAT, M_KIND, M_OBJ, M_GEN) + ((M_CHUNK,) if kind == "chunk" else ())
    return keys + ((M_KEY,) if encrypted else ())


def seal(
    name: str,
    kind: str,
    objid: str,
    gen: int,
    plain: bytes,
    *,
    fs: FsInfo,
    key: tuple[str, bytes] | None,
    chunk: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Body and metadata of one object; `key` is (key id, key) when the filesystem is encrypted."""
    meta = {M_FORMAT: FORMAT, M_KIND: kind, M_OBJ: objid, M_GEN: str(gen)}
    if chunk is not None:
        meta[M_CHUNK] = str(chunk)
    data = zlib.compress(plain) if fs.compress_mode != "DISABLED" else plain
    if fs.encrypted:
        if key is None:
            raise ObjectError(f"{name}: the filesystem is encrypted and no master key is active")
        meta[M_KEY] = key[0]
        nonce = os.urandom(_NONCE)
        body = nonce + AESGCM(key[1]).encrypt(nonce, data, _aad(name, meta, _bound_keys(kind, True)))
        return body, meta
    meta[M_DIGEST] = hashlib.sha256(_aad(name, meta, _bound_keys(kind, False)) + b"\0" + data).hexdigest()
    return data, meta


def open_object(
    name: str, kind: str, body: bytes, meta: dict[str, str], *, fs: FsInfo, keys: dict[str, bytes]
) -> tuple[dict[str, str], bytes]:
    """(metadata, plaintext) of an object, or ObjectError saying exactly what does not check out."""
    bound = _bound_keys(kind, fs.encrypted)
    _require(name, meta, bound + (() if fs.encrypted else (M_DIGEST,)))
    if meta[M_FORMAT] != FORMAT or meta[M_KIND] != kind:
        raise ObjectError(f"{name}: not a {kind} object of format {FORMAT}")
    aad = _aad(name, meta, bound)
    if fs.encrypted:
        key = keys.get(meta[M_KEY])
        if key is None:
            raise ObjectError(f"{name}: encrypted with master key {meta[M_KEY]}, which this filer lacks")
        if len(body) < _NONCE + 16:
            raise ObjectError(f"{name}: truncated object")
        try:
            data = AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], aad)
        except InvalidTag:
            raise ObjectError(f"{name}: authentication failed (content or metadata changed, or wrong key)") from None
    else:
        if meta[M_DIGEST] != hashlib.sha256(aad + b"\0" + body).hexdigest():
            raise ObjectError(f"{name}: content or metadata changed (digest mismatch)")
        data = body
    if fs.compress_mode != "DISABLED":
        try:
            data = zlib.decompress(data)
        except zlib.error:
            raise ObjectError(f"{name}: cannot decompress") from None
    return meta, data


def inode_body(path: str, size: int, gen: int, chunks: int, mtime: float) -> bytes:
    return json.dumps({"path": path, "size": size, "gen": gen, "chunks": chunks, "mtime": mtime}).encode()


def parse_inode(name: str, plain: bytes) -> dict[str, Any]:
    try:
        data = json.loads(plain)
        return {
            "path": str(data["path"]),
            "size": int(data["size"]),
            "gen": int(data["gen"]),
            "chunks": int(data["chunks"]),
            "mtime": float(data["mtime"]),
        }
    except (ValueError, KeyError, TypeError):
        raise ObjectError(f"{name}: malformed inode") from None
