"""The copy jobs of a backup run (pure: the source is the filer's plan source, the destination only the container
of the generation the catalog reserved for the run, mode and guard the plan's), and what finished passes left in
the catalog (stored outcomes, manifests). The copy activities' steps over these jobs: shared/runbook/copy_passes.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.blobcopy import changes
from shared.blobcopy.errors import CopyInputError
from shared.blobcopy.manifest import ManifestIndex, ManifestReader, read_index
from shared.blobcopy.model import (
    AccountRef,
    CatalogRef,
    ChangeCheck,
    ContainerRef,
    CopyJob,
    DeleteReport,
    Guard,
    Summary,
)
from shared.blobcopy.pages import SKIPPED, TODO, load_page
from shared.blobcopy.state import (
    BlobStateStore,
    StateStore,
    applied_path,
    page_number,
    state_prefix,
    summary_path,
    unpack,
)
from shared.blobcopy.verify import ManifestCheck, check_manifest_page
from shared.catalog.store import copy_prefix
from shared.runbook import services
from shared.runbook.payloads import (
    BackupTarget,
    RunContext,
)

T = TypeVar("T")

# The engine bounds pending copies itself (abort and restart past the pending limit, bounded attempts); the
# copy orchestration's backstop against a page that never reports done is this many times that bound.


# --- job descriptions (pure: orchestrators call these) ---------------------------------------------------
def source_ref(context: RunContext) -> AccountRef:
    src = context.filer.source
    return services.account_ref(
        src.account, src.account_url, context.storage_auth, context.keyvault_url, src.key_secret
    )


def backup_ref(context: RunContext) -> AccountRef:
    bak = context.filer.backup
    return services.account_ref(
        bak.account, bak.account_url, context.storage_auth, context.keyvault_url, bak.storage_key_secret
    )


def catalog_ref(context: RunContext) -> CatalogRef:
    """The filer's copy state and manifests: the backup account's catalog container, under its prefix."""
    bak = context.catalog_account
    account = services.account_ref(
        bak.account, bak.account_url, context.storage_auth, context.keyvault_url, bak.storage_key_secret
    )
    return CatalogRef(
        account=account,
        container=context.catalog_container,
        prefix=copy_prefix(context.cluster.name, context.filer.name),
    )


def copy_job(
    context: RunContext,
    job_id: str,
    container: str,
    mode: str,
    *,
    previous_manifest: str | None = None,
    precopy_manifest: str | None = None,
) -> CopyJob:
    """A pass from the filer's source container into one of its backup containers, per the plan's settings."""
    src = context.filer.source
    settings = context.copy
    job = CopyJob(
        job_id=job_id,
        source=ContainerRef(source_ref(context), src.container),
        dest=ContainerRef(backup_ref(context), container),
        catalog=catalog_ref(context),
        mode=mode,
        engine=settings.engine,
        concurrency=settings.concurrency,
        page_size=settings.page_size,
        pending_limit_seconds=settings.pending_limit_seconds,
        guard=Guard(
            context.guard.max_delete_fraction,
            context.guard.min_count,
            max_change_fraction=context.guard.max_change_fraction,
        ),
        previous_manifest=previous_manifest,
        precopy_manifest=precopy_manifest,
    )
    return job.validate()


def backup_jobs(context: RunContext, target: BackupTarget) -> tuple[CopyJob | None, CopyJob]:
    """(pre-copy pass or None, final pass) of a run. With a short offline window the online pre-copy is
    incremental against the generation's last manifest, and the final mirror compares with the pre-copy;
    otherwise a single mirror pass runs while the filer is removed."""
    if context.short_offline_window:
        pre = copy_job(
            context, target.precopy_job, target.container, "precopy", previous_manifest=target.previous_manifest
        )
        final = copy_job(
            context,
            target.final_job,
            target.container,
            "mirror",
            previous_manifest=target.precopy_job,
            precopy_manifest=target.precopy_job,
        )
        return pre, final
    return None, copy_job(
        context, target.final_job, target.container, "mirror", previous_manifest=target.previous_manifest
    )


def pass_ids(context: RunContext, target: BackupTarget) -> tuple[str | None, str]:
    """(the pre-copy pass's job id or None, the final pass's): what the backup orchestration runs (pure)."""
    return (target.precopy_job if context.short_offline_window else None), target.final_job


# --- running the engine's async steps from sync activities -------------------------------------------------
def _run(factory: Callable[[], Awaitable[T]]) -> T:
    """Activities are sync (the worker runs them in threads): each step runs on its own short-lived loop."""
    return asyncio.run(_awaited(factory))


async def _awaited(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


async def _with_store(catalog: CatalogRef | None, work: Callable[[StateStore], Awaitable[T]]) -> T:
    if catalog is None:
        raise CopyInputError("this copy job has no catalog to keep its progress in")
    account = await asyncio.to_thread(services.copy_env().connect, catalog.account)  # may read Key Vault
    async with account.async_service_client(8) as client:
        return await work(BlobStateStore(client.get_container_client(catalog.container), catalog.prefix))


# --- what finished passes left (complete_backup, failover) ----------------------------------------------
def manifest_index(context: RunContext, job_id: str) -> ManifestIndex | None:
    async def work(store: StateStore) -> ManifestIndex | None:
        return await read_index(store, job_id)

    return _run(lambda: _with_store(catalog_ref(context), work))


def stored_outcome(context: RunContext, job_id: str) -> tuple[Summary | None, DeleteReport | None]:
    """The summary a pass's finish stored, and the report of its approved deletes (None: not there). Read only:
    unlike `finish`, this never computes anything or deletes a blob."""

    async def work(store: StateStore) -> tuple[Summary | None, DeleteReport | None]:
        summary, applied = await asyncio.gather(store.read(summary_path(job_id)), store.read(applied_path(job_id)))
        return (
            Summary.from_json(unpack(summary)) if summary is not None else None,
            DeleteReport.from_json(unpack(applied)) if applied is not None else None,
        )

    return _run(lambda: _with_store(catalog_ref(context), work))


def held_untouched(context: RunContext, job_ids: tuple[str, ...]) -> tuple[bool, bool]:
    """(whether the change guard holds one of these passes, unapproved; whether the engine's records show that
    none of them wrote into the generation): no deletes applied, and every planned blob still to copy or
    skipped, no copy ever started. Read only; evidence, never the orchestration's word."""

    async def pass_untouched(store: StateStore, job_id: str) -> bool:
        if await store.exists(applied_path(job_id)):
            return False
        async for path, page in store.summaries(state_prefix(job_id)):
            if page.get("copied") or page.get("failed") or page.get("sc"):
                return False
            if page.get("copy"):  # blobs to copy: each must still be waiting (a pending copy shows only here)
                state = await load_page(store, job_id, page_number(path))
                if any(t.status not in (TODO, SKIPPED) or t.copy_id or t.started for t in state.tasks):
                    return False
        return True

    async def work(store: StateStore) -> tuple[bool, bool]:
        held = False
        for job_id in job_ids:
            data = await store.read(changes.changes_path(job_id))
            held = held or (data is not None and ChangeCheck.from_json(unpack(data)).how == changes.HELD)
        untouched = [await pass_untouched(store, job_id) for job_id in job_ids]
        return held, all(untouched)

    return _run(lambda: _with_store(catalog_ref(context), work))


def check_backup_page(context: RunContext, container: str, job_id: str, position: int) -> tuple[ManifestCheck, int]:
    """One manifest page against the backup container (no source needed): (the check, the page count)."""
    catalog = catalog_ref(context)
    dest = ContainerRef(backup_ref(context), container)

    async def work(store: StateStore) -> tuple[ManifestCheck, int]:
        reader = await ManifestReader.open(store, job_id, complete_only=True)
        pages = len(reader.index.pages)
        if position < 0:
            raise CopyInputError(f"manifest {job_id!r} has no page {position}: pages count from 0")
        if position >= pages:  # the failover checks pages in batches: one past the end finds nothing
            return ManifestCheck(manifest=job_id, state=reader.index.state, pages=pages), pages
        account = await asyncio.to_thread(services.copy_env().connect, dest.account)  # may read Key Vault
        async with account.async_service_client(16) as client:
            check = await check_manifest_page(client.get_container_client(container), reader, position)
        return check, pages

    return _run(lambda: _with_store(catalog, work))
