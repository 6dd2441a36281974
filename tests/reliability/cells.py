"""The fault matrix as data: one Cell per (workflow, step, fault). A new step or fault is one line here.

`at` is the run status step at which the fault is armed (None: before the run starts, so it hits the first
call that matches); `at_rest` waits until the run also sits on a durable timer there. `expect` is the set of
outcome classes the cell accepts; `names` are words the error must contain besides the filer's name.
`quick` marks the one representative cell of each step x fault class that `make test` runs; the rest run
with `make test-full`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.reliability.faults import (
    DENIED,
    GENERIC,
    MANY,
    ClusterFault,
    ClusterRule,
    Injector,
    Kill,
    StorageFault,
    VaultFault,
)
from tests.reliability.scenarios import ATTENTION, FAILED, FAILED_BACK, REFUSED, SERVING, VERIFIED

OK = frozenset({VERIFIED})
SERVES = frozenset({SERVING})
FAILS = frozenset({FAILED})
ATTN = frozenset({ATTENTION})
REFUSES = frozenset({REFUSED})
HOME = frozenset({FAILED_BACK})


@dataclass(frozen=True)
class Cell:
    workflow: str  # backup | failover | failback
    step: str
    fault: str  # cluster | storage | vault | kill
    inject: Injector
    expect: frozenset[str]
    at: str | None = None
    at_rest: bool = True
    quick: bool = False
    names: tuple[str, ...] = ()
    stale: bool = False  # the target generation holds a blob the source does not: the mirror must delete it

    @property
    def id(self) -> str:
        return f"{self.workflow}:{self.step}:{self.fault}:{self.inject.label()}".replace(" ", "_")


def _until(fault: ClusterFault) -> ClusterFault:
    return ClusterFault(fault.method, fault.code, fault.text, MANY, fault.when, fault.cluster)


B, F, FB = "backup", "failover", "failback"
ROTATE_GEN = ClusterFault("corefiler.generateMasterKey")
ACTIVATE = ClusterFault("corefiler.activateMasterKey")

CELLS: tuple[Cell, ...] = (
    # --- backup: rotate the key (generate, store, activate) --------------------------------------------------
    Cell(B, "rotate", "cluster", ROTATE_GEN, OK | FAILS, quick=True),
    Cell(B, "rotate", "cluster", _until(ClusterFault("corefiler.generateMasterKey", *DENIED)), FAILS),
    Cell(B, "rotate", "kill", Kill(), OK, at="rotate_key", at_rest=False, quick=True),
    Cell(B, "store key", "vault", VaultFault("/secrets/{key}*", method="PUT"), FAILS, quick=True),
    Cell(B, "store key", "vault", VaultFault("/secrets/{key}*", method="PUT", action="reset"), FAILS),
    Cell(B, "store key", "vault", VaultFault("/secrets/{key}*", method="PUT", times=1), OK | FAILS),
    Cell(B, "activate", "cluster", ACTIVATE, OK | FAILS, quick=True),
    Cell(B, "activate", "cluster", _until(ClusterFault("corefiler.activateMasterKey", *GENERIC)), FAILS),
    # --- capture ---------------------------------------------------------------------------------------------
    Cell(B, "capture", "cluster", ClusterFault("vserver.listJunctions"), OK, quick=True),
    Cell(B, "capture", "cluster", _until(ClusterFault("vserver.listJunctions", *GENERIC)), FAILS),
    Cell(
        B,
        "capture",
        "storage",
        StorageFault("PutBlob", container="catalog", times=2, extra={"blob": "*records/*"}),
        OK,
        quick=True,
    ),
    Cell(B, "capture", "kill", Kill(), OK, at="capture", at_rest=False, quick=True),
    # --- pre-copy (online) -----------------------------------------------------------------------------------
    Cell(B, "pre-copy", "storage", StorageFault("CopyBlob", container="a"), OK, quick=True),
    Cell(B, "pre-copy", "storage", StorageFault("CopyBlob", status=429, container="a"), OK),
    Cell(B, "pre-copy", "storage", StorageFault("CopyBlob", action="reset", container="a"), OK),
    Cell(B, "pre-copy", "storage", StorageFault("CopyBlob", container="a", times=None), FAILS),
    Cell(B, "pre-copy", "kill", Kill(), OK, at="precopy", at_rest=False, quick=True),
    # --- suspend and flush -----------------------------------------------------------------------------------
    Cell(B, "flush", "cluster", ClusterFault("corefiler.flush"), OK, quick=True),
    Cell(B, "flush", "cluster", _until(ClusterFault("corefiler.flush", *GENERIC)), FAILS),
    Cell(
        B,
        "flush",
        "cluster",
        ClusterRule({"method": "corefiler.flush", "action": "leaveDirty", "files": 1}),
        OK | FAILS,
    ),
    Cell(B, "flush", "kill", Kill(), OK, at="flush", quick=True),
    # --- remove junctions, remove the filer --------------------------------------------------------------------
    Cell(B, "remove junctions", "cluster", ClusterFault("vserver.removeJunction"), OK, quick=True),
    Cell(B, "remove junctions", "cluster", _until(ClusterFault("vserver.removeJunction", *GENERIC)), FAILS | ATTN),
    Cell(B, "remove junctions", "kill", Kill(), OK, at="removing_junctions", quick=True),
    Cell(B, "remove filer", "cluster", ClusterFault("corefiler.remove", *DENIED), OK, quick=True),
    Cell(B, "remove filer", "cluster", _until(ClusterFault("corefiler.remove", *GENERIC)), FAILS | ATTN),
    Cell(B, "remove filer", "kill", Kill(), OK, at="removing_filer", quick=True),
    # --- the offline copy: list, copy a page, poll, verify, mirror deletes ----------------------------------
    Cell(B, "list", "storage", StorageFault("ListBlobs", account="source"), OK, at="removing_filer", quick=True),
    Cell(B, "list", "storage", StorageFault("ListBlobs", account="source", action="reset"), OK, at="removing_filer"),
    Cell(
        B,
        "list",
        "storage",
        StorageFault("ListBlobs", account="source", times=None),
        FAILS,
        at="removing_filer",
        names=("copy",),
    ),
    Cell(B, "copy page", "storage", StorageFault("CopyBlob", container="a"), OK, at="removing_filer", quick=True),
    Cell(B, "copy page", "storage", StorageFault("CopyBlob", status=429, container="a"), OK, at="removing_filer"),
    Cell(B, "copy page", "storage", StorageFault("CopyBlob", action="reset", container="a"), OK, at="removing_filer"),
    Cell(
        B,
        "copy page",
        "storage",
        StorageFault("CopyBlob", container="a", times=None),
        FAILS,
        at="removing_filer",
        names=("copy",),
    ),
    Cell(B, "copy page", "kill", Kill(), OK, at="copy", at_rest=False, quick=True),
    Cell(
        B,
        "poll",
        "storage",
        StorageFault("GetBlobProperties", container="a", times=3),
        OK,
        at="removing_filer",
        quick=True,
    ),
    Cell(
        B,
        "poll",
        "storage",
        StorageFault("GetBlobProperties", container="a", action="reset", times=3),
        OK,
        at="removing_filer",
    ),
    Cell(
        B,
        "poll",
        "storage",
        StorageFault("GetBlobProperties", container="a", times=None),
        FAILS,
        at="removing_filer",
        names=("copy",),
    ),
    Cell(
        B,
        "verify",
        "storage",
        StorageFault("CopyBlob", action="pending", container="a", times=None, extra={"polls": 1, "outcome": "failed"}),
        FAILS,
        at="removing_filer",
        quick=True,
        names=("copy",),
    ),
    Cell(
        B,
        "verify",
        "storage",
        StorageFault("GetBlobProperties", container="a", action="reset", times=None),
        FAILS,
        at="removing_filer",
        names=("copy",),
    ),
    Cell(B, "mirror delete", "storage", StorageFault("DeleteBlob", container="a"), OK, stale=True, quick=True),
    Cell(B, "mirror delete", "storage", StorageFault("DeleteBlob", container="a", action="reset"), OK, stale=True),
    Cell(
        B,
        "mirror delete",
        "storage",
        StorageFault("DeleteBlob", container="a", times=None),
        FAILS,
        stale=True,
        names=("copy",),
    ),
    # --- re-add: create the filer, restore its junctions -------------------------------------------------------
    Cell(B, "re-add", "cluster", ClusterFault("corefiler.createCloudFiler"), OK, quick=True),
    Cell(B, "re-add", "cluster", _until(ClusterFault("corefiler.createCloudFiler", *GENERIC)), ATTN),
    Cell(B, "re-add", "vault", VaultFault("/secrets/{key}/*", method="GET"), ATTN, at="removing_filer"),
    Cell(B, "re-add", "kill", Kill(), OK, at="readd", quick=True),
    Cell(B, "restore junctions", "cluster", ClusterFault("vserver.addJunction"), OK, quick=True),
    Cell(B, "restore junctions", "cluster", _until(ClusterFault("vserver.addJunction", *GENERIC)), ATTN),
    # --- the catalog write that records the backup -------------------------------------------------------------
    Cell(
        B, "catalog write", "storage", StorageFault("PutBlob", container="catalog", times=2), OK, at="readd", quick=True
    ),
    Cell(
        B,
        "catalog write",
        "storage",
        StorageFault("PutBlob", container="catalog", action="reset", times=2),
        OK,
        at="readd",
    ),
    # --- failover: choose, check, mark attached, attach, restore junctions, record ----------------------------
    Cell(F, "choose", "storage", StorageFault("GetBlob", container="catalog"), SERVES, quick=True),
    Cell(
        F,
        "choose",
        "storage",
        StorageFault("GetBlob", container="catalog", times=None),
        REFUSES,
        names=("HTTP 503", "catalog"),
    ),
    Cell(F, "choose", "kill", Kill(), SERVES, at="choosing_backup", at_rest=False, quick=True),
    # the default check is a sample: the manifest against its recorded digest, a few blobs' properties
    Cell(F, "check", "storage", StorageFault("GetBlobProperties", container="a"), SERVES, quick=True),
    Cell(F, "check", "storage", StorageFault("GetBlobProperties", container="a", times=None), FAILS),
    Cell(F, "check", "kill", Kill(), SERVES, at="verifying", at_rest=False, quick=True),
    Cell(
        F,
        "mark attached",
        "storage",
        StorageFault("PutBlob", container="catalog", extra={"blob": "*state.json"}),
        SERVES,
        quick=True,
    ),
    # Lasting from the start, it first hits the route's fence record: the route refuses (503), nothing starts.
    Cell(
        F,
        "mark attached",
        "storage",
        StorageFault("PutBlob", container="catalog", times=None),
        REFUSES,
        names=("HTTP 503", "catalog", "cannot be written"),
    ),
    Cell(F, "attach", "cluster", ClusterFault("corefiler.createCloudFiler", cluster="dr"), SERVES, quick=True),
    Cell(F, "attach", "cluster", _until(ClusterFault("corefiler.createCloudFiler", *GENERIC, cluster="dr")), FAILS),
    Cell(F, "attach", "vault", VaultFault("/secrets/{key}/*", method="GET"), FAILS, quick=True),
    Cell(F, "attach", "vault", VaultFault("/secrets/{key}/*", method="GET", action="reset"), FAILS),
    Cell(F, "attach", "kill", Kill(), SERVES, at="attach", quick=True),
    Cell(F, "restore junctions", "cluster", ClusterFault("vserver.addJunction", cluster="dr"), SERVES, quick=True),
    Cell(F, "restore junctions", "cluster", _until(ClusterFault("vserver.addJunction", *GENERIC, cluster="dr")), FAILS),
    Cell(
        F, "record", "storage", StorageFault("PutBlob", container="catalog", times=2), SERVES, at="attach", quick=True
    ),
    Cell(F, "record", "storage", StorageFault("PutBlob", container="catalog", times=None), FAILS | SERVES, at="attach"),
    # --- failback: attach the re-protect backup at the primary, record the new home -----------------------------
    Cell(FB, "attach", "cluster", ClusterFault("corefiler.createCloudFiler"), HOME, quick=True),
    Cell(
        FB,
        "attach",
        "cluster",
        _until(ClusterFault("corefiler.createCloudFiler", *GENERIC)),
        FAILS,
        names=("re-added at the DR cluster",),
    ),
    Cell(FB, "attach", "kill", Kill(), HOME, at="attach"),
    Cell(FB, "record", "storage", StorageFault("PutBlob", container="catalog", times=2), HOME, at="attach"),
)
