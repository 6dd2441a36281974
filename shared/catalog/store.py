"""The backup catalog in the DR region: per filer, its backup generations and marks, and its backup entries.

`filers/<cluster>/<filer>/state.json` is changed read-modify-write under an ETag condition, so a timer tick
and a run updating it at the same time never lose each other's change. Backup entries and captured
records sit beside it, with each run's plan snapshot (`runs/<instance id>.json`) and the key a backup rotated
(`keys/<backup id>.json`); the copy engine keeps its state and manifests under `filers/<cluster>/<filer>/copy/`.

Every catalog document (state, backup entry, captured record) is written with `"schema": SCHEMA`; one without
it is schema 0, the format written before versions, which reads as schema 1 unchanged. A document of a newer
schema than this app knows is refused rather than rewritten.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContainerClient, ContentSettings

from shared.avere.records import FilerRecord
from shared.azure.keyvault import SecretRef
from shared.azure.storage import StorageAccount
from shared.core.codec import SCHEMA_KEY, JsonRecord, RecordError, json_options, schema_of, with_schema
from shared.core.errors import CatalogConflict
from shared.plan.load import Filer
from shared.plan.model import GENERATION_IDS

T = TypeVar("T")

EMPTY, WRITING, VERIFIED, FAILED, ATTACHED = "empty", "writing", "verified", "failed", "attached"
STATUSES = (EMPTY, WRITING, VERIFIED, FAILED, ATTACHED)
NOT_APPROVED = "changes_not_approved"  # a run's outcome: the change guard held it and nobody approved
MAX_ATTEMPTS = 50
SCHEMA = 1  # of every catalog document; 0 (no "schema" key): the same format, written before versions
# Folders of a filer's entries: one JSON document per backup run, per failover, per drill. Drill entries are
# written by the drill workflow; what the read API takes from them is in docs/operations.md.
BACKUPS, FAILOVERS, DRILLS = "backups", "failovers", "drills"
_JSON = ContentSettings(content_type="application/json")


def filer_prefix(cluster: str, filer: str) -> str:
    return f"filers/{cluster}/{filer}/"


def copy_prefix(cluster: str, filer: str) -> str:
    """Where the copy engine keeps a filer's job state and manifests (a CatalogRef prefix)."""
    return f"{filer_prefix(cluster, filer)}copy/"


# The generations a re-protect backup writes (the primary region's account, while the filer serves at DR) keep
# their own state document beside the filer's: its marks are the re-protect runs' own, and the DR generations'
# retention and the failover's fence never mix with them.
SIDES = ("dr", "reprotect")


def state_path(cluster: str, filer: str, side: str = "dr") -> str:
    if side not in SIDES:
        raise ValueError(f"catalog side {side!r} is not one of {', '.join(SIDES)}")
    return filer_prefix(cluster, filer) + ("state.json" if side == "dr" else "reprotect/state.json")


def run_path(cluster: str, filer: str, instance_id: str) -> str:
    """Where a run's plan snapshot lives: found by the run's instance id, beside the filer's backup entries."""
    return f"{filer_prefix(cluster, filer)}runs/{instance_id}.json"


def _ref(data: Any) -> SecretRef | None:
    return SecretRef.from_json(data) if data else None


@dataclass
class Generation(JsonRecord):
    """One backup container of a filer and what it holds."""

    container: str
    status: str = EMPTY
    backup_id: str | None = None
    verified_at: str | None = None
    manifest: str | None = None  # copy job id of the verified manifest
    key: SecretRef | None = None
    extras: bool = False
    previous_manifest: str | None = None  # what a `writing` run compares against (fixed when it began)
    attached_to: dict[str, Any] | None = None
    # Left out of JSON when unset, and of repr, so documents written before them read and write back the same:
    # who keeps backup runs out of this generation (a drill holding it, say): no run writes a pinned one;
    pinned_by: str | None = field(default=None, repr=False, metadata=json_options(omit=None))
    # the backup's consistent point: when its run removed the filer (nothing changed after that).
    consistent_at: str | None = field(default=None, repr=False, metadata=json_options(omit=None))
    # while a run writes it: the verified generation as it was before, kept again when that run ends without
    # having copied anything into it (the change guard held it and nobody approved).
    before_run: dict[str, Any] | None = field(default=None, repr=False, metadata=json_options(omit=None))

    def _checked(self) -> Generation:
        if self.status not in STATUSES:
            raise RecordError(f"catalog generation status {self.status!r} is not one of {', '.join(STATUSES)}")
        return self


@dataclass
class FilerState(JsonRecord):
    """state.json of one filer."""

    SCHEMA: ClassVar[int | None] = SCHEMA

    generations: dict[str, Generation] = field(default_factory=dict)
    latest_verified: str | None = None
    removed_by_app: dict[str, Any] | None = None
    needs_attention: dict[str, Any] | None = None
    failed_over: dict[str, Any] | None = None
    last_scheduled: str | None = None
    last_run: dict[str, Any] | None = None
    # generation -> the drill reading it ({drill_id, instance_id, backup_id, since}): no backup writes a pinned
    # generation. Added after the captured formats: left out of JSON and repr while empty.
    pins: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, metadata=json_options(omit={}))
    # after a failover: how the primary filer is kept from serving (shared/catalog/fence.py); absent before that
    fence: dict[str, Any] | None = field(default=None, metadata=json_options(omit=None))
    # where the filer lives (shared/runbook/home.py): absent means the plan's source container on its own cluster
    home: dict[str, Any] | None = field(default=None, repr=False, metadata=json_options(omit=None))
    # keys a newer app version wrote: kept as they are
    extra: dict[str, Any] = field(default_factory=dict, metadata=json_options(extra=True))

    @classmethod
    def new(cls, containers: tuple[str, ...]) -> FilerState:
        return cls(generations={g: Generation(c) for g, c in zip(GENERATION_IDS, containers, strict=False)})

    def align(self, containers: tuple[str, ...]) -> None:
        """Generations follow the plan's containers (a, b, c, ... in order); a renamed one starts empty (an
        attached one is kept: it is the record of where a failed-over filer serves from). Generations beyond
        the plan's count are kept as they are: outside retention, never written, never deleted."""
        for g, container in zip(GENERATION_IDS, containers, strict=False):
            gen = self.generations.get(g)
            if gen is None or (gen.container != container and gen.status != ATTACHED):
                self.generations[g] = Generation(container)
                if self.latest_verified == g:
                    self.latest_verified = None

    # --- questions ---------------------------------------------------------------------------------------
    def attached(self) -> list[str]:
        return [g for g in GENERATION_IDS if g in self.generations and self.generations[g].status == ATTACHED]

    def newest_verified(self) -> str | None:
        """The generation holding the newest verified backup: the one recorded last, else (that one renamed or
        attached since) the verified one verified last."""
        g = self.latest_verified
        if g and g in self.generations and self.generations[g].status == VERIFIED:
            return g
        verified = [(gen.verified_at or "", g) for g, gen in self.generations.items() if gen.status == VERIFIED]
        return max(verified)[1] if verified else None

    def outside_retention(self, count: int) -> list[str]:
        """Generations beyond the plan's count that still hold something (a lowered `generations`): kept and
        listed, never written, never deleted by the app."""
        kept = set(GENERATION_IDS[:count])
        return [
            g for g in GENERATION_IDS if g in self.generations and g not in kept and self.generations[g].status != EMPTY
        ]

    def generation_of(self, backup_id: str) -> str | None:
        return next((g for g, v in self.generations.items() if v.backup_id == backup_id), None)

    def removed_record(self) -> tuple[FilerRecord | None, SecretRef | None]:
        """The record and key this app last removed the filer with (from either mark)."""
        for mark in (self.removed_by_app, self.needs_attention):
            if mark and mark.get("record"):
                return FilerRecord.from_json(mark["record"]), _ref(mark.get("key"))
        return None, None


# --- the store -------------------------------------------------------------------------------------------
class Catalog:
    """The catalog container of a backup account (sync SDK: activities run in worker threads)."""

    def __init__(self, account: StorageAccount, container: str, side: str = "dr") -> None:
        self.account = account
        self.container_name = container
        self.side = side
        state_path("x", "x", side)  # a side this version knows
        self._service = account.service_client()
        self._container: ContainerClient = self._service.get_container_client(container)

    def close(self) -> None:
        self._service.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exists(self) -> bool:
        """Whether the catalog container exists (an unreachable account raises)."""
        return self._container.exists()

    def ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._container.create_container()

    def ensure_backup_container(self, name: str) -> None:
        """A backup container of the same account (it only ever receives the source's blobs)."""
        with contextlib.suppress(ResourceExistsError):
            self._service.create_container(name)

    # --- documents ---------------------------------------------------------------------------------------
    def read_json(self, path: str) -> tuple[Any, str | None]:
        """(document, etag), or (None, None) when it does not exist."""
        try:
            downloader = self._container.download_blob(path)
        except ResourceNotFoundError:
            return None, None
        return json.loads(downloader.readall()), downloader.properties.etag

    def write_json(self, path: str, data: Any) -> None:
        body = json.dumps(data, sort_keys=True, indent=1).encode()
        try:
            self._container.upload_blob(path, body, overwrite=True, content_settings=_JSON)
        except ResourceNotFoundError:
            self.ensure_container()
            self._container.upload_blob(path, body, overwrite=True, content_settings=_JSON)

    def create_or_replace_json(self, path: str, data: Any, etag: str | None) -> bool:
        """Write only if the blob is absent (etag None) or unchanged since `etag`; False when another writer won."""
        body = json.dumps(data, sort_keys=True, indent=1).encode()
        condition: dict[str, Any] = (
            {"overwrite": False}
            if etag is None
            else {"overwrite": True, "etag": etag, "match_condition": MatchConditions.IfNotModified}
        )
        try:
            self._container.upload_blob(path, body, content_settings=_JSON, **condition)
        except (ResourceExistsError, ResourceModifiedError):
            return False
        return True

    def list_paths(self, prefix: str) -> Iterator[str]:
        try:
            for item in self._container.list_blobs(name_starts_with=prefix):
                yield item.name
        except ResourceNotFoundError:
            return

    # --- filer state -------------------------------------------------------------------------------------
    def load(self, filer: Filer) -> FilerState:
        return self._load(filer)[0]

    def _load(self, filer: Filer) -> tuple[FilerState, str | None]:
        data, etag = self.read_json(state_path(filer.cluster, filer.name, self.side))
        containers = filer.generation_containers()
        state = FilerState.from_json(data) if data is not None else FilerState.new(containers)
        state.align(containers)
        return state, etag

    def update(self, filer: Filer, change: Callable[[FilerState], T]) -> T:
        """Apply change to the current state and store it only if nobody stored another meanwhile; on a lost
        race, read again and re-apply. change must only look at the state (it may run several times); an
        exception from it leaves the catalog unchanged."""
        path = state_path(filer.cluster, filer.name, self.side)
        for attempt in range(MAX_ATTEMPTS):
            state, etag = self._load(filer)
            result = change(state)
            body = json.dumps(state.to_json(), sort_keys=True, indent=1).encode()
            try:
                if etag is None:
                    self._container.upload_blob(path, body, overwrite=False, content_settings=_JSON)
                else:
                    self._container.upload_blob(
                        path,
                        body,
                        overwrite=True,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                        content_settings=_JSON,
                    )
                return result
            except (ResourceModifiedError, ResourceExistsError):
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
            except ResourceNotFoundError:
                self.ensure_container()
        raise CatalogConflict(
            f"the catalog state changed {MAX_ATTEMPTS} times while being updated",
            filer=filer.key,
            state="catalog unchanged",
            action="retry the operation",
        )

    # --- backup entries and records ----------------------------------------------------------------------
    def put_backup(self, filer: Filer, backup_id: str, entry: dict[str, Any]) -> None:
        self.write_json(
            f"{filer_prefix(filer.cluster, filer.name)}backups/{backup_id}.json", with_schema(entry, SCHEMA)
        )

    def backup(self, filer: Filer, backup_id: str) -> dict[str, Any] | None:
        path = f"{filer_prefix(filer.cluster, filer.name)}backups/{backup_id}.json"
        return _entry(self.read_json(path)[0], path)

    def list_backups(self, filer: Filer) -> list[dict[str, Any]]:
        """Every backup entry of the filer, oldest first."""
        return sorted(
            self.list_entries(filer, BACKUPS), key=lambda e: (str(e.get("started_at") or ""), str(e.get("backup_id")))
        )

    def list_entries(self, filer: Filer, folder: str) -> list[dict[str, Any]]:
        """Every JSON object under `filers/<cluster>/<filer>/<folder>/` (backups, failovers, drills), unordered;
        a document that is not a JSON object (or of a newer schema) is skipped."""
        prefix = f"{filer_prefix(filer.cluster, filer.name)}{folder}/"
        documents = ((p, self.read_json(p)[0]) for p in self.list_paths(prefix) if p.endswith(".json"))
        entries = [_entry(data, p) for p, data in documents if isinstance(data, dict)]
        return [e for e in entries if e is not None]

    def put_failover(self, filer: Filer, entry: dict[str, Any]) -> None:
        """One entry per failover that served (its history: the state's `failed_over` mark holds the last); named
        by the backup and the run, so a retried activity writes the same entry again rather than a second one."""
        name = f"{entry['backup_id']}-{entry['instance_id']}".replace(":", "")
        self.write_json(f"{filer_prefix(filer.cluster, filer.name)}{FAILOVERS}/{name}.json", entry)

    def put_record(self, filer: Filer, backup_id: str, record: FilerRecord) -> None:
        self.write_json(
            f"{filer_prefix(filer.cluster, filer.name)}records/{backup_id}.json", with_schema(record.to_json(), SCHEMA)
        )

    def put_key(self, filer: Filer, backup_id: str, key: SecretRef, key_id: str) -> None:
        """The Key Vault secret version of the key a backup rotated (before it was activated)."""
        self.write_json(
            f"{filer_prefix(filer.cluster, filer.name)}keys/{backup_id}.json",
            with_schema({**SecretRef.to_json(key), "key_id": key_id}, SCHEMA),
        )

    def key(self, filer: Filer, backup_id: str) -> tuple[SecretRef, str] | None:
        """(the secret version, the key id) a backup rotated, or None when it rotated none."""
        path = f"{filer_prefix(filer.cluster, filer.name)}keys/{backup_id}.json"
        data = _entry(self.read_json(path)[0], path)
        if data is None:
            return None
        return SecretRef(name=str(data["name"]), version=str(data["version"])), str(data["key_id"])

    def record(self, filer: Filer, backup_id: str) -> FilerRecord | None:
        path = f"{filer_prefix(filer.cluster, filer.name)}records/{backup_id}.json"
        data = self.read_json(path)[0]
        if data is None:
            return None
        schema_of(data, SCHEMA, path)  # 0 and 1 are the same format
        return FilerRecord.from_json({k: v for k, v in data.items() if k != SCHEMA_KEY})


def _entry(data: Any, path: str) -> dict[str, Any] | None:
    """A backup entry as stored (a plain document: its shape is runbook.record's), checked for its schema."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: a backup entry must be a JSON object")
    schema_of(data, SCHEMA, path)  # 0 and 1 are the same format
    return data
