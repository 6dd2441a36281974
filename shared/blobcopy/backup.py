"""A finished backup without its source: list its manifests, verify the container against one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.azure.storage import StorageConfigError
from shared.blobcopy.errors import CopyInputError
from shared.blobcopy.manifest import ManifestReader, latest_manifest, list_manifests
from shared.blobcopy.model import CatalogRef, ContainerRef
from shared.blobcopy.session import CopyEnv
from shared.blobcopy.state import BlobStateStore, StateStore
from shared.blobcopy.verify import ManifestCheck, check_manifest_page


@asynccontextmanager
async def _open(dest: ContainerRef | None, catalog: CatalogRef, env: CopyEnv) -> AsyncIterator[tuple[Any, StateStore]]:
    try:
        cat_account = env.connect(catalog.account)
        dst_account = env.connect(dest.account) if dest else None
    except StorageConfigError as exc:
        raise CopyInputError(str(exc)) from None
    async with cat_account.async_service_client() as cat_client:
        store: StateStore = env.store or BlobStateStore(
            cat_client.get_container_client(catalog.container), catalog.prefix
        )
        if dst_account is None or dest is None:
            yield None, store
            return
        async with dst_account.async_service_client() as dst_client:
            yield dst_client.get_container_client(dest.container), store


async def backups(catalog: CatalogRef | dict[str, Any], env: CopyEnv) -> list[dict[str, Any]]:
    """Manifests under the catalog prefix (job id, state, count, bytes, created, dest), oldest first."""
    catalog = CatalogRef.from_json(catalog)
    async with _open(None, catalog, env) as (_, store):
        return await list_manifests(store)


async def newest_backup(
    catalog: CatalogRef | dict[str, Any], dest: ContainerRef | dict[str, Any], env: CopyEnv, complete_only: bool = True
) -> str | None:
    catalog, dest = CatalogRef.from_json(catalog), ContainerRef.from_json(dest)
    async with _open(None, catalog, env) as (_, store):
        return await latest_manifest(store, f"{dest.account.name}/{dest.container}", complete_only)


async def check_backup_page(
    dest: ContainerRef | dict[str, Any],
    catalog: CatalogRef | dict[str, Any],
    manifest_id: str,
    position: int,
    env: CopyEnv,
) -> ManifestCheck:
    """One manifest page against the destination (a bounded step for an orchestrator at failover)."""
    dest, catalog = ContainerRef.from_json(dest), CatalogRef.from_json(catalog)
    async with _open(dest, catalog, env) as (container, store):
        reader = await ManifestReader.open(store, manifest_id)
        if not 0 <= position < len(reader.index.pages):
            raise CopyInputError(
                f"manifest {manifest_id!r} has {len(reader.index.pages)} pages, no position {position}"
            )
        return await check_manifest_page(container, reader, position)


async def verify_backup(
    dest: ContainerRef | dict[str, Any], catalog: CatalogRef | dict[str, Any], manifest_id: str, env: CopyEnv
) -> ManifestCheck:
    """The whole backup container against its manifest, without the source (the source region may be
    gone). Verified only if the manifest is complete and nothing is missing, different or extra."""
    dest, catalog = ContainerRef.from_json(dest), CatalogRef.from_json(catalog)
    async with _open(dest, catalog, env) as (container, store):
        reader = await ManifestReader.open(store, manifest_id)
        label = f"{dest.account.name}/{dest.container}"
        total = ManifestCheck(manifest=manifest_id, state=reader.index.state)
        if reader.index.info.get("dest") != label:
            total.problems.append(f"manifest describes {reader.index.info.get('dest')!r}, not {label!r}")
            total.mismatched += 1
            return total
        for position in range(len(reader.index.pages)):
            total.add(await check_manifest_page(container, reader, position))
        return total
