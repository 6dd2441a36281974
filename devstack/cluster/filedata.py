"""File data of one simulated core filer: dirty data in the cache store, clean data as container objects."""

from __future__ import annotations

import posixpath
import secrets
from pathlib import Path

from devstack.cluster import objects
from devstack.cluster.blobio import FilerStorage
from devstack.cluster.faults import ENOENT, ENOTALLOWED, Fault
from devstack.cluster.model import FileEntry, Filer


class CacheStore:
    """The cluster's cache disk: dirty file data under STATE/clusters/<name>/cache/<mass>/<objid>."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, internal: str, objid: str) -> Path:
        return self.root / internal / objid

    def put(self, internal: str, objid: str, data: bytes) -> None:
        path = self._path(internal, objid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, internal: str, objid: str) -> bytes:
        return self._path(internal, objid).read_bytes()

    def delete(self, internal: str, objid: str) -> None:
        self._path(internal, objid).unlink(missing_ok=True)

    def drop(self, internal: str) -> None:
        directory = self.root / internal
        if directory.is_dir():
            for item in directory.iterdir():
                item.unlink()
            directory.rmdir()


def normalize(path: str) -> str:
    # normpath keeps a leading '//' (POSIX allows it a meaning), so strip slashes before adding one.
    return posixpath.normpath("/" + path.strip().lstrip("/"))


class FilerData:
    """Reads, writes and writeback of one filer; Fault for what an NFS client would see as an error."""

    def __init__(self, filer: Filer, storage: FilerStorage, cache: CacheStore) -> None:
        self.filer = filer
        self.storage = storage
        self.cache = cache

    @property
    def fs(self) -> objects.FsInfo:
        f = self.filer
        return objects.FsInfo(
            fsid=f.fsid, crypto_mode=f.crypto_mode, compress_mode=f.compress_mode, chunk_size=f.chunk_size
        )

    def _keyring(self) -> dict[str, bytes]:
        return {kid: bytes.fromhex(hexkey) for kid, hexkey in self.filer.keys.items()}

    def _active(self) -> tuple[str, bytes] | None:
        f = self.filer
        return (f.active_key, bytes.fromhex(f.keys[f.active_key])) if f.active_key else None

    def require_access(self) -> None:
        """The checks a client's I/O meets before it reaches the data."""
        f = self.filer
        if f.admin_state == "removing":
            raise Fault(ENOTALLOWED, f"Core filer '{f.name}' is being removed")
        if f.client_suspend:
            raise Fault(ENOTALLOWED, f"Client access to core filer '{f.name}' is suspended")
        if f.encrypted and not f.active_key:
            if f.contents == "used" and not f.key_generated:
                raise Fault(
                    ENOTALLOWED,
                    f"Core filer '{f.name}' holds encrypted data that cannot be read "
                    "until its key recovery file is uploaded",
                )
            raise Fault(ENOTALLOWED, f"Core filer '{f.name}' has no active encryption key")
        self.ensure_index()

    def ensure_index(self) -> None:
        """Learn the filesystem from the container alone (a 'used' filer starts knowing nothing)."""
        f = self.filer
        if f.index_loaded:
            return
        keys = self._keyring()
        files: dict[str, FileEntry] = {}
        for name in self.storage.names("i/"):
            found = self.storage.get(name)
            if found is None:
                continue
            meta, plain = objects.open_object(name, "inode", found[0], found[1], fs=self.fs, keys=keys)
            inode = objects.parse_inode(name, plain)
            if meta[objects.M_OBJ] != name[2:] or int(meta[objects.M_GEN]) != inode["gen"]:
                raise objects.ObjectError(f"{name}: metadata does not match the inode")
            files[inode["path"]] = FileEntry(
                objid=name[2:],
                size=inode["size"],
                gen=inode["gen"],
                chunks=inode["chunks"],
                stored_size=inode["size"],
                mtime=inode["mtime"],
            )
        f.files = files
        f.index_loaded = True

    def _entry(self, rel: str) -> FileEntry:
        entry = self.filer.files.get(rel)
        if entry is None or entry.deleted:
            raise Fault(ENOENT, f"No such file: {rel}")
        return entry

    def exists_dir(self, rel: str) -> bool:
        rel = normalize(rel)
        if rel == "/" or rel in self.filer.dirs:
            return True
        prefix = rel.rstrip("/") + "/"
        return any(p.startswith(prefix) for p, e in self.filer.files.items() if not e.deleted)

    def write(self, rel: str, data: bytes, now: float, write_through: bool) -> None:
        rel = normalize(rel)
        entry = self.filer.files.get(rel)
        if entry is None:
            entry = FileEntry(objid=secrets.token_hex(8))
            self.filer.files[rel] = entry
        self.cache.put(self.filer.internal, entry.objid, data)
        if not entry.dirty:
            entry.dirty_since = now
        entry.size, entry.dirty, entry.deleted, entry.mtime = len(data), True, False, now
        if write_through:
            self.writeback(rel)

    def read(self, rel: str) -> bytes:
        entry = self._entry(normalize(rel))
        if entry.dirty:
            return self.cache.get(self.filer.internal, entry.objid)
        keys = self._keyring()
        parts: list[bytes] = []
        for i in range(entry.chunks):
            name = objects.chunk_name(entry.objid, entry.gen, i)
            found = self.storage.get(name)
            if found is None:
                raise objects.ObjectError(f"{name}: object missing from the container")
            meta, plain = objects.open_object(name, "chunk", found[0], found[1], fs=self.fs, keys=keys)
            if (meta[objects.M_OBJ], meta[objects.M_GEN], meta[objects.M_CHUNK]) != (
                entry.objid,
                str(entry.gen),
                str(i),
            ):
                raise objects.ObjectError(f"{name}: metadata names another object")
            parts.append(plain)
        data = b"".join(parts)
        if len(data) != entry.size:
            raise objects.ObjectError(f"file {rel}: {len(data)} bytes read, inode says {entry.size}")
        return data

    def delete(self, rel: str, now: float, write_through: bool) -> None:
        rel = normalize(rel)
        entry = self._entry(rel)
        self.cache.delete(self.filer.internal, entry.objid)
        if entry.gen == 0:
            del self.filer.files[rel]
            return
        if not entry.dirty:
            entry.dirty_since = now
        entry.dirty, entry.deleted, entry.size = True, True, 0
        if write_through:
            self.writeback(rel)

    def listing(self, rel: str) -> list[tuple[str, FileEntry]]:
        rel = normalize(rel)
        prefix = "/" if rel == "/" else rel + "/"
        return sorted(
            (p, e) for p, e in self.filer.files.items() if not e.deleted and (p == rel or p.startswith(prefix))
        )

    def dirty(self) -> list[tuple[str, FileEntry]]:
        return sorted(
            ((p, e) for p, e in self.filer.files.items() if e.dirty), key=lambda item: (item[1].dirty_since, item[0])
        )

    def writeback(self, rel: str) -> int:
        """Store one dirty file (or its deletion) in the container; returns the bytes written."""
        entry = self.filer.files.get(rel)
        if entry is None or not entry.dirty:
            return 0
        old_gen, old_chunks = entry.gen, entry.chunks
        if entry.deleted:
            self.storage.delete(objects.inode_name(entry.objid))
            self._delete_chunks(entry.objid, old_gen, old_chunks)
            del self.filer.files[rel]
            return 0
        data = self.cache.get(self.filer.internal, entry.objid)
        gen, size = old_gen + 1, self.filer.chunk_size
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        key = self._active()
        for i, piece in enumerate(pieces):
            name = objects.chunk_name(entry.objid, gen, i)
            self.storage.put(name, *objects.seal(name, "chunk", entry.objid, gen, piece, fs=self.fs, key=key, chunk=i))
        name = objects.inode_name(entry.objid)
        inode = objects.inode_body(rel, len(data), gen, len(pieces), entry.mtime)
        self.storage.put(name, *objects.seal(name, "inode", entry.objid, gen, inode, fs=self.fs, key=key))
        self._delete_chunks(entry.objid, old_gen, old_chunks)
        entry.gen, entry.chunks, entry.stored_size, entry.dirty = gen, len(pieces), len(data), False
        self.cache.delete(self.filer.internal, entry.objid)
        return len(data)

    def _delete_chunks(self, objid: str, gen: int, chunks: int) -> None:
        if gen:
            for i in range(chunks):
                self.storage.delete(objects.chunk_name(objid, gen, i))

    def discard_dirty(self) -> int:
        """corefiler.invalidate: drop every unwritten change (what the DR workflow must never do)."""
        dropped = 0
        for rel, entry in list(self.filer.files.items()):
            if not entry.dirty:
                continue
            dropped += 1
            self.cache.delete(self.filer.internal, entry.objid)
            if entry.gen == 0:
                del self.filer.files[rel]
            else:
                entry.size, entry.dirty, entry.deleted = entry.stored_size, False, False
        return dropped
