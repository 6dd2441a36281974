"""How activities reach the world: the plan, Key Vault, the clusters' APIs and the storage accounts."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.avere.client import AvereClient
from shared.azure.keyvault import KeyVault
from shared.azure.storage import RetrySettings, StorageAccount, StorageConfigError
from shared.blobcopy.model import AccountRef
from shared.blobcopy.session import Connector, CopyEnv
from shared.catalog.store import Catalog
from shared.core import clock
from shared.plan.load import ENV_PLAN, ENV_PLAN_FILE, Cluster, Filer, Plan, load_plan_from_env
from shared.runbook.payloads import RunContext

log = logging.getLogger("vfxtdr.tls")
# The stable event name of the warning logged for every cluster client made without TLS verification: point
# an alert at it.
TLS_UNVERIFIED = "VFXTDR_TLS_UNVERIFIED"


@dataclass(frozen=True)
class Settings:
    """Process-wide knobs of the cluster clients and storage retries; production keeps the defaults."""

    avere_timeout: float = 30.0
    avere_retries: int = 5
    avere_backoff: float = 1.0
    storage_retry: RetrySettings | None = None
    # Key Vault client retries (azure-core RetryPolicy options such as retry_total, retry_backoff_factor); None:
    # the SDK's defaults. Vault clients are cached: set it before the first read (forget_vaults drops them).
    vault_retry: dict[str, Any] | None = None


@dataclass
class _Process:
    """What this process caches: settings, vault clients, the parsed plan, the managed-identity credential."""

    settings: Settings = dataclasses.field(default_factory=Settings)
    vaults: dict[str, KeyVault] = dataclasses.field(default_factory=dict)
    plans: dict[tuple[str, str, float], Plan] = dataclasses.field(default_factory=dict)
    credential: Any = None


_lock = threading.Lock()
_process = _Process()


def settings() -> Settings:
    return _process.settings


def configure(**changes: Any) -> Settings:
    """Replace some settings (tests, the local stack); returns the previous ones so they can be restored."""
    with _lock:
        previous = _process.settings
        _process.settings = dataclasses.replace(previous, **changes)
    return previous


def restore(previous: Settings) -> None:
    with _lock:
        _process.settings = previous


def now() -> float:
    """Epoch seconds: catalog times and the copy engine's clock."""
    return time.time()


def now_iso() -> str:
    """The settings' clock as catalog text (shared.core.clock's one format)."""
    return clock.to_iso(clock.from_epoch(now()))


# --- the plan --------------------------------------------------------------------------------------------
def load_plan() -> Plan:
    """The plan from the app settings, parsed once per distinct setting value (and plan file version)."""
    text = os.environ.get(ENV_PLAN, "")
    path = os.environ.get(ENV_PLAN_FILE, "").strip()
    try:
        stamp = os.stat(path).st_mtime if path else 0.0
    except OSError:
        stamp = -1.0  # load_plan_from_env reports the unreadable file
    key = (text, path, stamp)
    with _lock:
        cached = _process.plans.get(key)
    if cached is not None:
        return cached
    plan = load_plan_from_env()
    with _lock:
        _process.plans.clear()  # only the current setting matters; an edited plan replaces the old one
        _process.plans[key] = plan
    return plan


# --- Key Vault -------------------------------------------------------------------------------------------
def key_vault(url: str) -> KeyVault:
    """One client per vault and process (its credential caches tokens)."""
    with _lock:
        vault = _process.vaults.get(url)
        if vault is None:
            vault = _process.vaults[url] = KeyVault(url, retry=_process.settings.vault_retry)
        return vault


def forget_vaults() -> None:
    """Drop cached vault clients (after the identity environment changed, e.g. between tests)."""
    with _lock:
        vaults = list(_process.vaults.values())
        _process.vaults.clear()
        _process.credential = None
    for vault in vaults:
        vault.close()


def read_secret(keyvault_url: str, name: str, version: str | None = None) -> str:
    """A secret's value, read when needed and never kept: callers hand it straight to an SDK."""
    return key_vault(keyvault_url).read(name, version).value


def azure_credential() -> Any:
    """DefaultAzureCredential, one per process (managed identity in Azure)."""
    with _lock:
        if _process.credential is None:
            from azure.identity import DefaultAzureCredential

            _process.credential = DefaultAzureCredential()
        return _process.credential


# --- clusters --------------------------------------------------------------------------------------------
def tls_unverified_because(cluster: Cluster) -> str:
    """Why the plan lets verification be off for this cluster (plan validation refuses any other case)."""
    return "acknowledged in the plan" if cluster.tls.insecure_acknowledged else "loopback host"


def avere_client(cluster: Cluster, keyvault_url: str, **options: Any) -> AvereClient:
    """A client of the cluster's management API, logged in with the admin password from Key Vault. With TLS
    verification off (plan: `tls.verify: false`) every client made says so in a VFXTDR_TLS_UNVERIFIED line."""
    if not cluster.tls.verify:
        log.warning(
            "%s cluster=%s address=%s: TLS certificate verification is off (%s): the admin password "
            "goes to a server whose identity is not checked",
            TLS_UNVERIFIED,
            cluster.name,
            cluster.management_address,
            tls_unverified_because(cluster),
        )
    password = read_secret(keyvault_url, cluster.admin_password_secret)
    s = _process.settings
    kwargs: dict[str, Any] = {
        "timeout": s.avere_timeout,
        "retries": s.avere_retries,
        "backoff": s.avere_backoff,
        **cluster.tls.client_kwargs(),
    }
    kwargs.update(options)
    return AvereClient(cluster.management_url, cluster.admin_user, password, **kwargs)


# --- storage ---------------------------------------------------------------------------------------------
def _retry_kwargs() -> dict[str, Any]:
    retry = _process.settings.storage_retry
    return {"retry": retry} if retry else {}


def storage_account(
    name: str, blob_endpoint: str, *, storage_auth: str, keyvault_url: str, key_secret: str | None
) -> StorageAccount:
    """An account reached with the plan's storage_auth: "key" reads the account key from Key Vault,
    "identity" uses the app's managed identity."""
    kwargs = _retry_kwargs()
    if storage_auth == "identity":
        return StorageAccount(name, blob_endpoint, azure_credential(), **kwargs)
    if storage_auth != "key":
        raise StorageConfigError(f"storage_auth must be 'identity' or 'key', not {storage_auth!r}")
    if not key_secret:
        raise StorageConfigError(f"account {name!r}: storage_auth is 'key' but no Key Vault secret names its key")
    return StorageAccount(name, blob_endpoint, read_secret(keyvault_url, key_secret), **kwargs)


def source_account(filer: Filer, storage_auth: str, keyvault_url: str) -> StorageAccount:
    src = filer.source
    return storage_account(
        src.account, src.account_url, storage_auth=storage_auth, keyvault_url=keyvault_url, key_secret=src.key_secret
    )


def backup_account(filer: Filer, storage_auth: str, keyvault_url: str) -> StorageAccount:
    bak = filer.backup
    return storage_account(
        bak.account,
        bak.account_url,
        storage_auth=storage_auth,
        keyvault_url=keyvault_url,
        key_secret=bak.storage_key_secret,
    )


def open_catalog(context: RunContext) -> Catalog:
    """The run's catalog, in the filer's backup account (the DR region)."""
    bak = context.catalog_account
    account = storage_account(
        bak.account,
        bak.account_url,
        storage_auth=context.storage_auth,
        keyvault_url=context.keyvault_url,
        key_secret=bak.storage_key_secret,
    )
    return Catalog(account, context.catalog_container, side=context.side)


def secret_id(keyvault_url: str, name: str) -> str:
    """A Key Vault secret identifier (vault URL + name): a reference that says which vault to ask."""
    return f"{keyvault_url.rstrip('/')}/secrets/{name}"


def parse_secret_id(reference: str) -> tuple[str | None, str, str | None]:
    """(vault URL or None for the plan's vault, name, version) of a secret identifier or a bare name."""
    if "://" not in reference:
        return None, reference, None
    parts = urlsplit(reference)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "https" or len(segments) not in (2, 3) or segments[0] != "secrets":
        raise StorageConfigError(
            "an account credential reference must be a Key Vault secret name or "
            "https://<vault>/secrets/<name>[/<version>]"
        )
    return f"https://{parts.netloc}", segments[1], segments[2] if len(segments) == 3 else None


def account_ref(
    name: str, blob_endpoint: str, storage_auth: str, keyvault_url: str, key_secret: str | None
) -> AccountRef:
    """The copy engine's description of an account: with key auth its credential is the key's secret id."""
    if storage_auth == "key":
        if not key_secret:
            raise StorageConfigError(f"account {name!r}: storage_auth is 'key' but no Key Vault secret names its key")
        return AccountRef(name=name, blob_endpoint=blob_endpoint, credential=secret_id(keyvault_url, key_secret))
    return AccountRef(name=name, blob_endpoint=blob_endpoint, credential=None)


def copy_connector() -> Connector:
    """The copy engine's connector: an AccountRef whose credential references a Key Vault secret is reached
    with that account key (the plan's vault for a bare name); one without, with the managed identity."""
    opened: dict[AccountRef, StorageAccount] = {}

    def connect(ref: AccountRef) -> StorageAccount:
        if ref not in opened:
            if ref.credential is None:
                opened[ref] = storage_account(
                    ref.name, ref.blob_endpoint, storage_auth="identity", keyvault_url="", key_secret=None
                )
            else:
                vault, name, version = parse_secret_id(ref.credential)
                key = read_secret(vault or load_plan().keyvault_url, name, version)
                opened[ref] = StorageAccount(ref.name, ref.blob_endpoint, key, **_retry_kwargs())
        return opened[ref]

    return connect


def copy_env() -> CopyEnv:
    return CopyEnv(connect=copy_connector(), clock=now)
