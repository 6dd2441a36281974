"""The copy engine's small, secret-free descriptors and step reports (records of shared.core.codec)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.blobcopy.errors import CopyInputError
from shared.core.codec import JsonRecord, json_options

MODES = ("full", "incremental", "mirror", "precopy")
ENGINES = ("copy", "blocks")
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_MAX_SAS_SECONDS = 7 * 24 * 3600


class _Json(JsonRecord):
    """The copy engine's descriptors: the one record codec (shared.core.codec), strict about what it reads.

    A job comes from callers and the CLI as well as from history: a key that names no field is refused (a typo
    must not silently fall back to a default), and every decoding problem is a CopyInputError."""

    UNKNOWN_KEYS: ClassVar[str] = "refuse"
    ERROR: ClassVar[type[Exception]] = CopyInputError


@dataclass(frozen=True)
class AccountRef(_Json):
    """A storage account by name and endpoint; `credential` is an opaque reference (e.g. a Key Vault
    secret name) the caller's connector resolves. Never a key or SAS."""

    name: str
    blob_endpoint: str
    credential: str | None = None


@dataclass(frozen=True)
class ContainerRef(_Json):
    account: AccountRef
    container: str

    def same_as(self, other: ContainerRef) -> bool:
        return (self.account.name, self.account.blob_endpoint.rstrip("/"), self.container) == (
            other.account.name,
            other.account.blob_endpoint.rstrip("/"),
            other.container,
        )


@dataclass(frozen=True)
class CatalogRef(_Json):
    """Where bulky state and manifests live: a container of the backup account and a prefix in it."""

    account: AccountRef
    container: str
    prefix: str = ""

    def as_container(self) -> ContainerRef:
        return ContainerRef(self.account, self.container)


@dataclass(frozen=True)
class Guard(_Json):
    """Deletes are applied only when counted deletes <= max(min_count, max_delete_fraction * dest blobs).

    With max_change_fraction set (the change guard), blobs of the destination a pass would overwrite are
    copied only once the pass is cleared: overwrites <= max(min_count, max_change_fraction * the blobs the
    destination held), or an approval. None (the default, the CLI's) leaves overwrites unguarded."""

    max_delete_fraction: float = 0.10
    min_count: int = 100
    # Left out of JSON when unset and out of repr: jobs written before the change guard read the same.
    max_change_fraction: float | None = field(default=None, repr=False, metadata=json_options(omit=None))

    def limit(self, dest_total: int) -> int:
        return max(self.min_count, int(self.max_delete_fraction * dest_total))

    @property
    def guards_changes(self) -> bool:
        return self.max_change_fraction is not None

    def change_limit(self, base: int) -> int:
        return max(self.min_count, int((self.max_change_fraction or 0.0) * base))


@dataclass(frozen=True)
class CopyJob(_Json):
    """One copy pass of one container into another. Small and secret-free: it travels in Durable payloads.

    mode: full (copy everything), incremental (copy new/changed), mirror (incremental + deletes under the
    guard), precopy (incremental while the source is still written: changed blobs are left for later).
    previous_manifest: a job id under the same catalog prefix whose manifest says what dest last received.
    precopy_manifest: the same run's precopy pass; blobs it copied are not counted by the delete guard.
    """

    job_id: str
    source: ContainerRef
    dest: ContainerRef
    catalog: CatalogRef | None = None
    mode: str = "incremental"
    engine: str = "copy"
    concurrency: int = 64
    page_size: int = 5000
    pending_limit_seconds: float = 3600.0
    sas_margin_seconds: float = 900.0
    max_attempts: int = 3
    step_budget_seconds: float = 240.0
    block_size: int = 8 * 1024 * 1024
    guard: Guard = field(default_factory=Guard)
    previous_manifest: str | None = None
    precopy_manifest: str | None = None

    def validate(self) -> CopyJob:
        """Raise CopyInputError naming every problem; return self when the job can run."""
        problems = list(self._problems())
        if problems:
            raise CopyInputError("invalid copy job: " + "; ".join(problems))
        return self

    def _problems(self) -> Any:
        yield from self._name_problems()
        yield from self._setting_problems()
        yield from self._manifest_problems()

    def _name_problems(self) -> Any:
        if not _JOB_ID.match(self.job_id or ""):
            yield "job_id: 1-100 of letters, digits, '.', '_', '-' (starting with a letter or digit)"
        for label, ref in (("source", self.source), ("dest", self.dest)):
            if not _CONTAINER.match(ref.container or ""):
                yield f"{label}.container: {ref.container!r} is not a valid container name"
        if self.source.same_as(self.dest):
            yield "dest: must differ from source"
        if self.catalog:
            cat = self.catalog.as_container()
            if not _CONTAINER.match(self.catalog.container or ""):
                yield f"catalog.container: {self.catalog.container!r} is not a valid container name"
            if cat.same_as(self.dest) or cat.same_as(self.source):
                yield "catalog.container: must be neither the backup (dest) nor the source container"

    def _setting_problems(self) -> Any:
        checks = (
            (self.mode in MODES, f"mode: must be one of {', '.join(MODES)}"),
            (self.engine in ENGINES, f"engine: must be one of {', '.join(ENGINES)}"),
            (1 <= self.concurrency <= 1000, "concurrency: must be 1..1000"),
            (1 <= self.page_size <= 5000, "page_size: must be 1..5000"),
            (
                self.pending_limit_seconds > 0 and self.sas_margin_seconds >= 0,
                "pending_limit_seconds must be > 0 and sas_margin_seconds >= 0",
            ),
            (
                self.pending_limit_seconds + self.sas_margin_seconds <= _MAX_SAS_SECONDS,
                "pending_limit_seconds + sas_margin_seconds: must not exceed 7 days",
            ),
            (1 <= self.max_attempts <= 20, "max_attempts: must be 1..20"),
            (self.step_budget_seconds > 0, "step_budget_seconds: must be > 0"),
            (1024 * 1024 <= self.block_size <= 4000 * 1024 * 1024, "block_size: must be 1 MiB..4000 MiB"),
            (
                0.0 <= self.guard.max_delete_fraction <= 1.0
                and self.guard.min_count >= 0
                and (self.guard.max_change_fraction is None or 0.0 <= self.guard.max_change_fraction <= 1.0),
                "guard: max_delete_fraction and max_change_fraction 0..1, min_count >= 0",
            ),
        )
        yield from (problem for ok, problem in checks if not ok)

    def _manifest_problems(self) -> Any:
        for label, ref in (("previous_manifest", self.previous_manifest), ("precopy_manifest", self.precopy_manifest)):
            if ref is None:
                continue
            if not self.catalog:
                yield f"{label}: needs a catalog"
            if not _JOB_ID.match(ref):
                yield f"{label}: not a job id"
            if ref == self.job_id:
                yield f"{label}: cannot be this job's own id"
        if self.precopy_manifest and self.mode != "mirror":
            yield "precopy_manifest: only a mirror pass follows a precopy"


@dataclass(frozen=True)
class PageCursor(_Json):
    """Where the next page of the source listing starts: page number, continuation token, last name seen."""

    page: int = 0
    token: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class PagePlan(_Json):
    job_id: str
    page: int
    listed: int
    to_copy: int
    bytes_to_copy: int
    skipped: int
    delete_candidates: int
    next_cursor: PageCursor | None
    verified: bool = False  # nothing to copy: the page verified while planning (skip start/poll/verify)
    # destination blobs the page would overwrite (the change guard counts them); out of repr, 0 left out
    changes: int = field(default=0, repr=False, metadata=json_options(omit=0))

    @property
    def ref(self) -> int:
        return self.page


@dataclass(frozen=True)
class PageProgress(_Json):
    page: int
    done: bool
    pending: int
    todo: int
    copied: int
    failed: int
    source_changed: int
    bytes: int


@dataclass(frozen=True)
class PageVerify(_Json):
    page: int
    verified: bool
    checked: int
    mismatches: int
    bytes: int
    failed: int
    source_changed: int
    problems: tuple[str, ...] = ()  # a few redacted examples (name: field), never secrets

    def __post_init__(self) -> None:
        object.__setattr__(self, "problems", tuple(self.problems))  # JSON brings a list back


@dataclass(frozen=True)
class Summary(_Json):
    job_id: str
    mode: str
    pages: int
    listed: int
    copied: int
    skipped: int
    failed: int
    source_changed: int
    bytes_copied: int
    verified: bool
    mismatches: int
    deleted: int
    delete_candidates: int
    needs_approval: bool
    approval_ref: str | None
    manifest_state: str | None
    guard_counted: int = 0
    guard_limit: int = 0
    guard_dest_total: int = 0
    # the change guard: destination blobs this pass overwrote, out of how many it held (out of repr, 0 omitted)
    changes: int = field(default=0, repr=False, metadata=json_options(omit=0))
    change_base: int = field(default=0, repr=False, metadata=json_options(omit=0))


@dataclass(frozen=True)
class ChangeCheck(_Json):
    """Whether a planned pass may overwrite destination blobs: how (off, within_limit, approved, held), how
    many it would overwrite (with an earlier pass of the same run) out of how many the destination held, the
    limit, and the reference an approval must name while it is held."""

    cleared: bool
    how: str
    changes: int = 0
    base: int = 0
    limit: int = 0
    approval_ref: str | None = None


@dataclass(frozen=True)
class DeleteReport(_Json):
    approval_ref: str
    deleted: int
    missing: int
    changed: int
