"""The preflight's credential probes: each proves, by using it, one credential the run needs, and leaves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared.avere.client import AvereClient
from shared.avere.errors import AvereError
from shared.azure.keyvault import KeyVaultError
from shared.azure.retry import PROBE_RETRY
from shared.azure.storage import SasToken, StorageAccount, StorageConfigError
from shared.blobcopy.errors import CopyInputError, describe_http_error, redact
from shared.plan.load import Cluster, Filer, Plan
from shared.runbook import services
from shared.runbook.copy import copy_job
from shared.runbook.payloads import RunContext

# The backup account's write probe: in the catalog container, outside `filers/` (the only prefix the catalog
# and the copy engine list), never in a generation container. One name per filer, deleted after writing.
PROBE_PREFIX = "preflight/"
_PROBE_BODY = b"vfxtdr preflight write probe: deleted right after it is written; safe to delete"


@dataclass(frozen=True)
class Probe:
    """One probe's verdict and its reason (never a secret: texts are redacted, SDK errors reduced to codes)."""

    ok: bool
    detail: str


def probe_blob(filer: Filer) -> str:
    return f"{PROBE_PREFIX}{filer.cluster}/{filer.name}/probe"


def credential_used(plan: Plan, key_secret: str | None) -> str:
    """How the app reaches a storage account, for a finding: never the key, only where it is kept."""
    if plan.storage_auth == "identity":
        return "with the app's managed identity"
    return f"with the account key in secret {key_secret}"


def login(plan: Plan, cluster: Cluster, retries: int | None = None) -> tuple[AvereClient | None, str]:
    """A logged-in client of the cluster's management API, or None and why not (`retries`: a quick probe)."""
    try:
        options = {} if retries is None else {"retries": retries}
        client = services.avere_client(cluster, plan.keyvault_url, **options)
    except KeyVaultError as exc:
        return None, f"cannot read the admin password of cluster {cluster.name}: {exc}"
    except (AvereError, ValueError) as exc:
        return None, f"cluster {cluster.name}: {redact(exc)}"
    try:
        client.session.login()
    except AvereError as exc:
        client.close()
        return None, f"cluster {cluster.name} at {cluster.management_address}: {redact(exc)}"
    return client, f"logged in to {cluster.name} at {cluster.management_address} as {cluster.admin_user}"


class _Refused(Exception):
    """A probe step that failed; its text is the finding's reason."""


def source_read(plan: Plan, filer: Filer) -> Probe:
    """List the source container with the app's credential, mint the SAS (or user-delegation key) the copy
    will mint, and read a blob through that SAS as the backup account's service will during Copy Blob."""
    src = filer.source
    where = f"source account {src.account} at {src.account_url} ({credential_used(plan, src.key_secret)})"
    try:
        account, lifetime = _source_account(plan, filer)
        first = _first_blob(account, src.container)
        kind = "user-delegation SAS" if account.auth_kind == "token" else "account-key SAS"
        sas = _copy_sas(account, src.container, lifetime)
        _read_through(account, src.container, sas, first, kind)
    except _Refused as exc:
        return Probe(False, f"{where}: {exc}")
    read = "read a blob through it" if first is not None else "the service accepted it (the container is empty)"
    return Probe(
        True, f"{where}: listed container {src.container}; made the copy's {kind} (read-only, {lifetime}) and {read}"
    )


def _source_account(plan: Plan, filer: Filer) -> tuple[StorageAccount, timedelta]:
    try:
        account = services.source_account(filer, plan.storage_auth, plan.keyvault_url).with_retry(PROBE_RETRY)
        job = copy_job(
            RunContext.from_plan(plan, filer.cluster, filer.name), "preflight", filer.backup.containers[0], "mirror"
        )
        return account, StorageAccount.sas_lifetime(job.pending_limit_seconds, job.sas_margin_seconds)
    except (KeyVaultError, StorageConfigError, CopyInputError) as exc:
        raise _Refused(f"no usable credential: {redact(exc)}") from None


def _first_blob(account: StorageAccount, container: str) -> str | None:
    try:
        with account.service_client() as client:
            pages = client.get_container_client(container).list_blobs(results_per_page=1).by_page()
            first = next(iter(next(pages, [])), None)
    except AzureError as exc:
        raise _Refused(f"cannot list container {container}: {describe_http_error(exc)}") from None
    return None if first is None else str(first.name)


def _copy_sas(account: StorageAccount, container: str, lifetime: timedelta) -> str:
    try:
        return account.read_sas(container, lifetime)
    except StorageConfigError as exc:
        raise _Refused(f"cannot make the copy's SAS: {redact(exc)}") from None
    except AzureError as exc:
        raise _Refused(
            "cannot get a user-delegation key (the identity needs Storage Blob Delegator on the "
            f"account): {describe_http_error(exc)}"
        ) from None


def _read_through(account: StorageAccount, container: str, sas: str, first: str | None, kind: str) -> None:
    # An empty container has no blob to read: a name that cannot exist then shows the same thing, since the
    # service checks the SAS before it looks for the blob (403 for a refused SAS, 404 for a missing blob).
    name = first if first is not None else f"vfxtdr-preflight-absent-{uuid.uuid4().hex}"
    reader = StorageAccount(
        account.name,
        account.blob_endpoint,
        SasToken(sas),
        retry=account.retry,
        ca_file=account.ca_file,
        api_version=account.api_version,
    )

    async def head() -> None:
        # The aio client, as the copy engine's: the sync transport (urllib3) logs request URLs, SAS and all,
        # at DEBUG.
        async with reader.async_service_client(2) as client:
            await client.get_blob_client(container, name).get_blob_properties()

    try:
        asyncio.run(head())
    except ResourceNotFoundError:
        if first is not None:
            raise _Refused(f"blob {first!r} vanished between listing and reading it; run the preflight again") from None
    except AzureError as exc:
        raise _Refused(
            f"the copy's {kind} was refused reading container {container}: {describe_http_error(exc)}"
        ) from None


def backup_write(plan: Plan, filer: Filer) -> Probe:
    """Write a probe blob into the backup account's catalog container and delete it again."""
    bak = filer.backup
    where = f"backup account {bak.account} at {bak.account_url} ({credential_used(plan, bak.storage_key_secret)})"
    path = probe_blob(filer)
    try:
        account = services.backup_account(filer, plan.storage_auth, plan.keyvault_url).with_retry(PROBE_RETRY)
        with account.service_client() as client:
            container = client.get_container_client(plan.catalog_container)
            blob = container.get_blob_client(path)
            try:
                blob.upload_blob(_PROBE_BODY, overwrite=True)
            except ResourceNotFoundError:  # the catalog container is made on first use: it is the catalog's
                with contextlib.suppress(ResourceExistsError):
                    container.create_container()
                blob.upload_blob(_PROBE_BODY, overwrite=True)
            left = _delete(blob)
    except (KeyVaultError, StorageConfigError) as exc:
        return Probe(False, f"{where}: no usable credential: {redact(exc)}")
    except AzureError as exc:
        return Probe(False, f"{where}: cannot write {plan.catalog_container}/{path}: {describe_http_error(exc)}")
    return Probe(True, f"{where}: wrote and deleted {plan.catalog_container}/{path}{left}")


def _delete(blob: BlobClient) -> str:
    """Delete the probe; a failure is reported, not fatal (one small blob per filer, overwritten next time)."""
    try:
        blob.delete_blob()
    except ResourceNotFoundError:
        pass  # a concurrent preflight of the same filer deleted it first
    except AzureError as exc:
        return f" (but it could not be deleted: {describe_http_error(exc)}; it holds nothing secret)"
    return ""


def vault_write(plan: Plan, filer: Filer) -> Probe:
    """Store a one-off probe secret in the plan's Key Vault (then delete it): the key rotation stores the new
    key there before activating it, so a vault that refuses writes must stop the run before anything changes."""
    vault = plan.keyvault_url
    try:
        result = services.key_vault(vault).probe_write(tags={"cluster": filer.cluster, "filer": filer.name})
    except (KeyVaultError, ValueError) as exc:
        return Probe(
            False,
            f"cannot store a secret in {vault} (the app's identity needs to set secrets there "
            f"to keep rotated keys): {redact(exc)}",
        )
    if result.left:
        after = f" ({result.left})"
    elif result.purged:
        after = " and purged"
    else:
        after = f" (recovery level {result.recovery_level}: the vault keeps it deleted until its retention ends)"
    return Probe(True, f"{vault}: stored and deleted probe secret {result.name}{after}")
