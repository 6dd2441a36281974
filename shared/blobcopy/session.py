"""What one step needs while it runs: the job's clients, the source SAS, the state store, dest lookups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from shared.azure.storage import StorageAccount, StorageConfigError
from shared.blobcopy.entries import BlobEntry, order_key
from shared.blobcopy.errors import CopyError, CopyInputError, SourceUnreachable, describe_http_error
from shared.blobcopy.listing import range_map
from shared.blobcopy.manifest import ManifestReader
from shared.blobcopy.model import AccountRef, CopyJob
from shared.blobcopy.state import BlobStateStore, StateStore

Connector = Callable[[AccountRef], StorageAccount]
DEST_INCLUDE = ["copy", "metadata"]


@dataclass
class CopyEnv:
    """How steps reach the world: a connector from account descriptions to StorageAccount (the activity
    resolves credentials here), a clock (epoch seconds; virtual in tests), and an optional state store
    that replaces the catalog (CLI runs without --catalog)."""

    connect: Connector
    clock: Callable[[], float] = time.time
    store: StateStore | None = None
    head_threshold: int = 16  # up to this many blobs are looked up one by one instead of a range listing
    limiter: asyncio.Semaphore | None = None  # shared across steps run in one loop (the plain driver)
    pool: ClientPool | None = None  # likewise: clients shared by the driver's steps


def key_connector(keys: dict[str, str], **kwargs: Any) -> Connector:
    """Connector for accounts reached with shared keys (local stack, plan storage_auth "key")."""

    def connect(ref: AccountRef) -> StorageAccount:
        if ref.name not in keys:
            raise CopyInputError(f"no key for storage account {ref.name!r}")
        return StorageAccount(ref.name, ref.blob_endpoint, keys[ref.name], **kwargs)

    return connect


def credential_connector(credential: Any, **kwargs: Any) -> Connector:
    """Connector for accounts reached with a token credential (managed identity in Azure)."""

    def connect(ref: AccountRef) -> StorageAccount:
        return StorageAccount(ref.name, ref.blob_endpoint, credential, **kwargs)

    return connect


class ClientPool:
    """Open aio clients per account reference. A step opens its own; the plain driver shares one across
    all the steps of a run, so connections are reused."""

    def __init__(self, connect: Connector, max_connections: int) -> None:
        self._connect = connect
        self._max = max_connections
        self._stack = AsyncExitStack()
        self._open: dict[AccountRef, tuple[StorageAccount, Any]] = {}

    async def get(self, ref: AccountRef) -> tuple[StorageAccount, Any]:
        # Keyed by the whole reference: two containers of one account may carry different SASes (CLI).
        if ref not in self._open:
            try:
                # A connector may read a credential (the app's: Key Vault): blocking I/O, off the event loop.
                account = await asyncio.to_thread(self._connect, ref)
            except StorageConfigError as exc:
                raise CopyInputError(str(exc)) from None
            client = await self._stack.enter_async_context(account.async_service_client(self._max))
            self._open[ref] = (account, client)
        return self._open[ref]

    async def aclose(self) -> None:
        self._open.clear()
        await self._stack.aclose()


class Session:
    """Opened per step (`async with Session(job, env) as s`): clients for source, dest and catalog."""

    def __init__(self, job: CopyJob, env: CopyEnv) -> None:
        self.job = job
        self.env = env
        self._pool = env.pool or ClientPool(env.connect, job.concurrency + 8)
        self._sas: str | None = None
        self._readers: dict[str, ManifestReader] = {}
        self.requests = env.limiter or asyncio.Semaphore(job.concurrency)
        self.no_put_from_url = False
        self.sent = 0  # copy requests sent by this step: a step's time budget never stops the first one

    def out_of_time(self, deadline: float | None) -> bool:
        """The step's budget is spent (and it has made progress, so the next step continues from there)."""
        return deadline is not None and self.sent > 0 and time.monotonic() > deadline

    async def __aenter__(self) -> Session:
        job, env = self.job, self.env
        try:
            self.src_account, self.src_client = await self._pool.get(job.source.account)
            self.dst_account, self.dst_client = await self._pool.get(job.dest.account)
            self.source = self.src_client.get_container_client(job.source.container)
            self.dest = self.dst_client.get_container_client(job.dest.container)
            if env.store is not None:
                self.store: StateStore = env.store
            elif job.catalog is not None:
                _, cat_client = await self._pool.get(job.catalog.account)
                self.store = BlobStateStore(cat_client.get_container_client(job.catalog.container), job.catalog.prefix)
            else:
                raise CopyInputError("a copy job needs a catalog (or an explicit state store)")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._pool is not self.env.pool:
            await self._pool.aclose()

    def now(self) -> float:
        return float(self.env.clock())

    # --- the source as the destination service reads it ---------------------------------------------------
    async def source_url(self, name: str) -> str:
        """The source blob's URL with a read-only SAS; it must never be logged, stored or returned."""
        if self._sas is None:
            job = self.job
            lifetime = StorageAccount.sas_lifetime(job.pending_limit_seconds, job.sas_margin_seconds)
            try:
                self._sas = await self.src_account.read_sas_async(self.src_client, self.job.source.container, lifetime)
            except StorageConfigError as exc:
                raise CopyInputError(str(exc)) from None
            except (HttpResponseError, ServiceRequestError) as exc:
                raise SourceUnreachable(
                    f"cannot get a user-delegation key from account "
                    f"{self.src_account.name!r}: {describe_http_error(exc)}"
                ) from None
        return f"{self.src_account.blob_url(self.job.source.container, name)}?{self._sas}"

    async def source_entry(self, name: str) -> BlobEntry | None:
        """The source blob's current properties (None when it no longer exists)."""
        try:
            props = await self.source.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return BlobEntry.from_properties(props)

    # --- manifests ----------------------------------------------------------------------------------------
    async def reader(self, job_id: str) -> ManifestReader:
        if job_id not in self._readers:
            self._readers[job_id] = await ManifestReader.open(self.store, job_id)
        return self._readers[job_id]

    # --- destination lookups: one HEAD per blob for a few, one range listing for many ---------------------
    async def dest_view(self, names: list[str], include: list[str] = DEST_INCLUDE) -> dict[str, BlobEntry]:
        if not names:
            return {}
        if len(names) <= self.env.head_threshold:
            return await self._heads(names)
        ordered = sorted(names, key=order_key)
        wanted = set(names)
        found = await range_map(self.dest, ordered[0], ordered[-1], include=include, inclusive_lower=True)
        return {name: entry for name, entry in found.items() if name in wanted}

    async def _heads(self, names: list[str]) -> dict[str, BlobEntry]:
        async def head(name: str) -> BlobEntry | None:
            async with self.requests:
                try:
                    props = await self.dest.get_blob_client(name).get_blob_properties()
                    return BlobEntry.from_properties(props)
                except ResourceNotFoundError:
                    return None
                except (HttpResponseError, ServiceRequestError) as exc:
                    raise CopyError(
                        f"cannot read destination blob properties in "
                        f"{self.job.dest.container!r}: {describe_http_error(exc)}"
                    ) from None

        results = await asyncio.gather(*(head(n) for n in names))
        return {entry.name: entry for entry in results if entry is not None}
