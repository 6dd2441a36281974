"""The demo's files: what it writes through a cluster's vserver (as an NFS client would), and reading them back."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.cluster.stack import DEMO_FILES, DEMO_VSERVER
from shared.avere.client import AvereClient

MIB = 1024 * 1024
SEED = 20_240_611  # the same bytes on every run, so two demos write (and compare) exactly the same files
PROJECTS, SCRATCH = "/demo/projects", "/demo/scratch"  # the demo filer's junctions (devstack/cluster/stack.py)

# Legal on NFS (any byte but NUL and '/'), awkward for anything that builds URLs, XML, shell lines or paths.
AWKWARD_NAMES = (
    "with space.txt",
    "  two leading spaces.txt",
    "résumé \u2013 naïve café.txt"  # an en dash,
    "日本語のファイル名.txt",
    "emoji 🚀 launch.md",
    "100% done (final) [v2] {copy}.txt",
    "#hash & ampersand + plus = eq; semi, comma.txt",
    "'single' \"double\" `back`.txt",
    "-leading-dash.txt",
    "...dots...",
    "percent%20encoded%2Fslash.txt",
    "<angle> |pipe| ~tilde~ !bang! $dollar @at ^caret.txt",
    "back\\slash and colon: star* question?.txt",
    "x" * 200 + ".long",
)
LARGE = (
    (f"{PROJECTS}/renders/shot 0001/frame.exr", 6 * MIB + 123),
    (f"{PROJECTS}/datasets/2024/Q3/sensor dump.bin", 3 * MIB + MIB // 2),
)
LATE_LARGE = (f"{SCRATCH}/late/big dirty 2.5MiB.bin", 2 * MIB + MIB // 2)
MODULES, FILES_PER_MODULE = 24, 4
LATE_SMALL = 8


@dataclass
class FileSet:
    """What the filer should hold: path -> bytes, plus what was deleted (and must not come back)."""

    files: dict[str, bytes] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    @property
    def total_bytes(self) -> int:
        return sum(len(d) for d in self.files.values())


def early_files(rng: random.Random) -> dict[str, bytes]:
    """Written (and flushed) well before the backup: large files, a wide nested tree, awkward names."""
    files = {path: rng.randbytes(size) for path, size in LARGE}
    files[f"{PROJECTS}/archive/a/b/c/d/e/f/g/h/deep leaf.dat"] = rng.randbytes(4096)
    files[f"{PROJECTS}/empty/zero-bytes.txt"] = b""
    for m in range(MODULES):
        for f in range(FILES_PER_MODULE):
            path = f"{PROJECTS}/src/module_{m:03d}/part_{f}.txt"
            files[path] = f"{path}\n".encode() * rng.randint(1, 400)
    for name in AWKWARD_NAMES:
        files[f"{PROJECTS}/awkward/{name}"] = f"file named {name!r}\n".encode() + rng.randbytes(rng.randint(0, 3000))
    return files


def late_files(rng: random.Random) -> dict[str, bytes]:
    """Written just before the backup, so they are still dirty (in the cache only) when it starts."""
    path, size = LATE_LARGE
    files = {path: rng.randbytes(size)}
    for i in range(LATE_SMALL):
        files[f"{SCRATCH}/late/just before the backup {i}.log"] = f"line {i}\n".encode() * rng.randint(10, 2000)
    files[f"{PROJECTS}/src/module_000/part_0.txt"] = b"changed after it was flushed: the backup must hold this\n"
    return files


# A flushed file deleted just before the backup: the backup must not hold it, nor the failed-over filer.
LATE_DELETE = f"{PROJECTS}/src/module_001/part_1.txt"


class Vserver:
    """File I/O under a cluster's vserver through the sim.* helpers of the management API."""

    def __init__(self, client: AvereClient, vserver: str = DEMO_VSERVER) -> None:
        self.client, self.vserver = client, vserver

    def write(self, path: str, data: bytes) -> None:
        self.client.call("sim.writeFile", self.vserver, path, base64.b64encode(data).decode())

    def read(self, path: str) -> bytes:
        return base64.b64decode(self.client.call("sim.readFile", self.vserver, path))

    def delete(self, path: str) -> None:
        self.client.call("sim.deleteFile", self.vserver, path)

    def listing(self, path: str = "/") -> dict[str, dict]:
        """path -> {size, dirty} for every file under path."""
        return {str(e["path"]): dict(e) for e in self.client.call("sim.listFiles", self.vserver, path)}

    def write_all(self, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            self.write(path, data)


def setup_files(vserver: Vserver) -> FileSet:
    """The files `up` made (checked against devstack.cluster.stack.DEMO_FILES where it fixes their bytes)."""
    found = FileSet()
    for path in sorted(vserver.listing()):
        found.files[path] = vserver.read(path)
    for path, data in DEMO_FILES.items():
        if found.files.get(path) != data:
            raise ValueError(f"{path}, written by `up`, does not read back as written")
    return found


@dataclass
class Comparison:
    """Every expected file read back through a cluster: which matched, which differ, are missing or extra."""

    checked: int = 0
    identical: int = 0
    different: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return self.checked == self.identical and not (self.different or self.missing or self.extra)

    def problems(self, limit: int = 5) -> str:
        parts = [
            f"{what}: {', '.join(map(repr, paths[:limit]))}{' ...' if len(paths) > limit else ''}"
            for what, paths in (("different", self.different), ("missing", self.missing), ("extra", self.extra))
            if paths
        ]
        return "; ".join(parts) or "none"


def compare(vserver: Vserver, expected: FileSet, progress: Callable[[int], None] | None = None) -> Comparison:
    """Read every expected file through vserver and compare bytes; list what is there and should not be."""
    result = Comparison()
    present = vserver.listing()
    result.extra = sorted(p for p in present if p not in expected.files)
    for i, (path, data) in enumerate(sorted(expected.files.items()), start=1):
        result.checked += 1
        if path not in present:
            result.missing.append(path)
            continue
        got = vserver.read(path)
        result.bytes_read += len(got)
        if got == data:
            result.identical += 1
        else:
            result.different.append(path)
        if progress is not None and i % 25 == 0:
            progress(i)
    return result


def new_rng() -> random.Random:
    return random.Random(SEED)
