"""The app's configuration on the local stack: the DR plan, local.settings.json and the secrets it names."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.azure.keyvault import KeyVault, SecretNotFound
from shared.runbook.key_secret import CONTENT_TYPE, KeySecret, key_secret_name

PLAN_FILE = "plan.json"
SETTINGS_FILE = "local.settings.json"
TASK_HUB = "vfxtdrlocal"
SCHEDULE = "0 0 2 * * *"  # daily at 02:00 UTC
RPO_HOURS = 26  # a day between runs plus slack, so the daily schedule draws no RPO warning
PROTECTED, FAILOVER = "primary", "dr"  # cluster names in stack.json's "clusters"
DEMO_FILER = "demo-filer"
# Small pages so the demo's container spans several of them (paging and continue_as_new get exercised).
# Azurite finishes a Copy Blob within a second, so polling every second costs nothing and saves waiting.
COPY = {
    "engine": "copy",
    "concurrency": 16,
    "page_size": 50,
    "poll_interval_seconds": 1,
    "pending_limit_seconds": 600,
    "parallel_pages": 2,
    "pages_per_execution": 4,
}
# The simulated clusters finish an activity in seconds (real time): polling them every second keeps the
# demo's offline window close to what the cluster needs, instead of rounding each wait up to 10 s.
CLUSTER_POLL_SECONDS = 1
GUARD = {"max_delete_fraction": 0.10, "min_count": 100, "approval_timeout_hours": 24}
MAX_OFFLINE_MINUTES = 10
DRILL_SAMPLE = 20  # files the probe reads back in a drill
PLAIN = "text/plain"
# Keys that hold secret values; none of them may appear anywhere in stack.json.
SECRET_FIELDS = frozenset({"passphrase", "recovery_file"})

# msal's managed-identity client reads IDENTITY_* from os.environ when it fetches a token, so `up` sets them
# for the duration of its vault calls; one at a time, since os.environ is process-wide.
_ENV_LOCK = threading.Lock()
_IDENTITY_VARS = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT")


def admin_secret_name(cluster: str) -> str:
    return f"avere-{cluster}-admin"


def storage_key_secret_name(account: str) -> str:
    return f"storage-{account}-key"


def _get(stack: dict, path: str) -> Any:
    """stack[path], a dotted path; a missing part is a ValueError naming it."""
    node: Any = stack
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"the stack description has no {path} (is it a stack.json of `devstack up`?)")
        node = node[part]
    return node


def _service_root(url: str, what: str) -> str:
    """A blob service root (scheme://host:port, no path): what an account URL is built from."""
    parts = urlsplit(str(url))
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ValueError(
            f"{what} must be a blob service root like http://127.0.0.1:10000 (no path, query or "
            f"credentials), got {str(url)[:80]!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def app_blob_endpoint(stack: dict) -> str:
    """Where the app reaches storage: the stack's fault proxy when it has one, else Azurite itself."""
    proxy = stack.get("faultproxy")
    return _service_root(proxy["url"] if proxy else _get(stack, "storage.blob_endpoint"), "the blob endpoint")


def _cluster(stack: dict, name: str, ca_file: str) -> dict[str, Any]:
    info = _get(stack, f"clusters.{name}")
    url = urlsplit(str(_get(stack, f"clusters.{name}.url")))
    if not url.hostname or not url.port:
        raise ValueError(f"clusters.{name}.url must be https://host:port/path, got {str(info['url'])[:80]!r}")
    return {
        "name": name,
        "management_address": url.netloc,
        "rpc_path": url.path or "/cgi-bin/rpc2.py",
        "region": _get(stack, f"clusters.{name}.region"),
        "admin_user": info.get("user", "admin"),
        "admin_password_secret": admin_secret_name(name),
        "poll_seconds": CLUSTER_POLL_SECONDS,
        "tls": {"ca_file": ca_file},
    }


def build_plan(
    stack: dict, *, source_endpoint: str | None = None, backup_endpoint: str | None = None
) -> dict[str, Any]:
    """The DR plan for the local stack (shared.plan.load.parse_plan accepts it) as a JSON-able dict.

    source_endpoint / backup_endpoint are blob service roots for the app's view of the two accounts;
    both default to app_blob_endpoint(stack). Azurite serves a Copy Blob only when the source URL's host
    equals the request's Host, so backup_endpoint defaults to source_endpoint when only that is given.
    """
    source, dr = _get(stack, "storage.accounts.source"), _get(stack, "storage.accounts.dr")
    source_root = _service_root(source_endpoint, "source_endpoint") if source_endpoint else app_blob_endpoint(stack)
    backup_root = _service_root(backup_endpoint, "backup_endpoint") if backup_endpoint else source_root
    ca_file = str(stack.get("tls", {}).get("ca_cert") or _get(stack, "keyvault.ca_cert"))
    filer = stack.get("demo_filer", {}).get("name", DEMO_FILER)
    container = str(stack.get("demo_filer", {}).get("bucket", filer)).rpartition("/")[2]
    return {
        "version": 1,
        "keyvault_url": _get(stack, "keyvault.url"),
        "schedule": SCHEDULE,
        "rpo_hours": RPO_HOURS,
        "storage_auth": "key",
        "short_offline_window": True,
        "catalog_container": "vfxtdr-catalog",
        "copy": dict(COPY),
        "guard": dict(GUARD),
        "clusters": [_cluster(stack, PROTECTED, ca_file)],
        "dr_clusters": [_cluster(stack, FAILOVER, ca_file)],
        "filers": [
            {
                "cluster": PROTECTED,
                "name": filer,
                "enabled": True,
                "max_offline_minutes": MAX_OFFLINE_MINUTES,
                "source": {
                    "account": source["name"],
                    "container": container,
                    "blob_endpoint": f"{source_root}/{source['name']}",
                    "region": source["region"],
                    "key_secret": storage_key_secret_name(source["name"]),
                },
                "backup": {
                    "account": dr["name"],
                    "blob_endpoint": f"{backup_root}/{dr['name']}",
                    "region": dr["region"],
                    "containers": [f"{container}-a", f"{container}-b"],
                    "storage_key_secret": storage_key_secret_name(dr["name"]),
                },
                "failover_cluster": FAILOVER,
            }
        ],
        **_drill(stack),
    }


def _drill(stack: dict) -> dict[str, Any]:
    """The plan's `drill` when the stack runs the probe stand-in: read-back through it, a small sample."""
    probe = stack.get("probe")
    if not probe:
        return {}
    return {
        "drill": {
            "probe": {"url": probe["url"], "key_secret": probe["key_secret"], "ca_file": probe["ca_cert"]},
            "sample_size": DRILL_SAMPLE,
        }
    }


def build_settings(stack: dict, plan_path: Path) -> dict[str, Any]:
    """local.settings.json for the app on this stack (Core Tools' format; the local runner loads it)."""
    dr = _get(stack, "storage.accounts.dr")
    blob = _service_root(_get(stack, "storage.blob_endpoint"), "storage.blob_endpoint")
    # The host's own storage goes straight to Azurite: blocking an account at the proxy never stops the host.
    host_storage = (
        f"DefaultEndpointsProtocol=http;AccountName={dr['name']};AccountKey={dr['key']};"
        f"BlobEndpoint={blob}/{dr['name']};"
    )
    ca_file = str(stack.get("tls", {}).get("ca_cert") or _get(stack, "keyvault.ca_cert"))
    return {
        "IsEncrypted": False,
        "Values": {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": host_storage,
            "VFXTDR_TASK_HUB": TASK_HUB,
            "VFXTDR_PLAN_FILE": str(Path(plan_path).resolve()),
            "IDENTITY_ENDPOINT": _get(stack, "identity.endpoint"),
            "IDENTITY_HEADER": _get(stack, "identity.header"),
            "REQUESTS_CA_BUNDLE": ca_file,
            "SSL_CERT_FILE": ca_file,  # aiohttp (the async SDK clients) reads this one
        },
    }


def _write_json(path: Path, data: dict, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_app_config(
    state_dir: Path, stack: dict, *, source_endpoint: str | None = None, backup_endpoint: str | None = None
) -> tuple[Path, Path]:
    """Write STATE/plan.json and STATE/local.settings.json for stack; return (plan, settings) paths.

    The plan is checked with shared.plan.load.parse_plan first, so an invalid one is never written. The
    settings hold the identity header and an account key: the file is owner-only.
    """
    from shared.plan.load import parse_plan

    state_dir = Path(state_dir).resolve()
    plan = build_plan(stack, source_endpoint=source_endpoint, backup_endpoint=backup_endpoint)
    parse_plan(plan)
    plan_path, settings_path = state_dir / PLAN_FILE, state_dir / SETTINGS_FILE
    settings = build_settings(stack, plan_path)
    state_dir.mkdir(parents=True, exist_ok=True)
    _write_json(plan_path, plan, 0o644)  # names secrets, holds none
    _write_json(settings_path, settings, 0o600)
    return plan_path, settings_path


def write_config(state_dir: Path, stack: dict) -> tuple[list, dict]:
    """Stack component: the app's plan and settings for the stack started so far."""
    plan, settings = write_app_config(state_dir, stack)
    return [], {
        "app": {
            "plan": str(plan),
            "settings": str(settings),
            "task_hub": TASK_HUB,
            "blob_endpoint": app_blob_endpoint(stack),
        }
    }


# -- the secrets the plan names ---------------------------------------------------------------------------


@contextlib.contextmanager
def stack_identity(stack: dict) -> Iterator[None]:
    """IDENTITY_ENDPOINT/IDENTITY_HEADER of the stack in os.environ while the block runs, then as before."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in _IDENTITY_VARS}
        os.environ["IDENTITY_ENDPOINT"] = _get(stack, "identity.endpoint")
        os.environ["IDENTITY_HEADER"] = _get(stack, "identity.header")
        os.environ.pop("IDENTITY_SERVER_THUMBPRINT", None)  # it would make msal pick Service Fabric
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def ensure_secret(vault: KeyVault, name: str, value: str, *, content_type: str, tags: dict[str, str]) -> bool:
    """Store value unless the latest version already holds it (same content type and tags); True if stored."""
    try:
        latest = vault.read(name)
    except SecretNotFound:
        latest = None
    if latest is not None and (latest.value, latest.content_type, latest.tags) == (value, content_type, tags):
        return False
    vault.store(name, value, content_type=content_type, tags=tags)
    return True


def ensure_key_secret(vault: KeyVault, key: KeySecret) -> bool:
    """Store a filer's key unless some version already holds that key id; True if stored.

    Any version, not just the latest: after a backup rotated the key, the latest version is the newer key,
    and storing the initial one again would make an older key look like the newest.
    """
    name = key_secret_name(key.cluster, key.filer)
    if any(v.tags.get("key_id") == key.key_id for v in vault.versions(name)):
        return False
    vault.store(name, key.dumps(), content_type=CONTENT_TYPE, tags=key.tags())
    return True


def store_secrets(state_dir: Path, stack: dict) -> tuple[list, dict]:
    """Stack component: the admin passwords, account keys and demo key into the vault, idempotently.

    Replaces stack["demo_filer"] by its public part (key id, signature, secret name), so the passphrase
    and recovery file stay out of stack.json. Returns the secret names under "secrets".
    """
    from azure.identity import ManagedIdentityCredential

    demo = dict(_get(stack, "demo_filer"))
    key = KeySecret(
        passphrase=demo.pop("passphrase"),
        recovery_file=demo.pop("recovery_file"),
        key_id=demo["key_id"],
        signature=demo["signature"],
        cluster=demo["cluster"],
        filer=demo["name"],
    )
    names: dict[str, Any] = {"admin": {}, "storage_keys": {}, "demo_key": key_secret_name(key.cluster, key.filer)}
    stored = 0
    ca = str(_get(stack, "keyvault.ca_cert"))
    with (
        stack_identity(stack),
        ManagedIdentityCredential() as credential,
        KeyVault(_get(stack, "keyvault.url"), credential, ca_bundle=ca) as vault,
    ):
        for cluster, info in _get(stack, "clusters").items():
            name = names["admin"][cluster] = admin_secret_name(cluster)
            stored += ensure_secret(
                vault,
                name,
                info["password"],
                content_type=PLAIN,
                tags={"cluster": cluster, "user": info.get("user", "admin")},
            )
        for role in ("source", "dr"):
            account = _get(stack, f"storage.accounts.{role}")
            name = names["storage_keys"][account["name"]] = storage_key_secret_name(account["name"])
            stored += ensure_secret(
                vault,
                name,
                account["key"],
                content_type=PLAIN,
                tags={"account": account["name"], "region": account["region"]},
            )
        stored += ensure_key_secret(vault, key)
    return [], {
        "demo_filer": {**demo, "key_secret": names["demo_key"]},
        "secrets": {**names, "new_versions_at_start": stored},
    }


def secret_fields_in(data: Any, path: str = "") -> list[str]:
    """Paths of SECRET_FIELDS keys anywhere in data (stack.json must have none)."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if key in SECRET_FIELDS:
                found.append(here)
            found += secret_fields_in(value, here)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += secret_fields_in(value, f"{path}[{i}]")
    return found
