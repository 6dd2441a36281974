"""Azurite (the pinned npm package) as the stack's blob storage: two accounts, two declared regions."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from devstack.paths import REPO_ROOT
from devstack.stack.ports import LOOPBACK
from devstack.stack.procs import Proc, StartError, spawn_listening

AZURITE_BLOB = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"

# The two regions the local stack pretends to span; the plan's validation insists they differ.
SOURCE_REGION = "westus2"
DR_REGION = "eastus2"


@dataclass(frozen=True)
class Account:
    """A storage account in the local Azurite: name, shared key and the region it stands for."""

    name: str
    key: str
    region: str

    def to_json(self) -> dict:
        return {"name": self.name, "key": self.key, "region": self.region}


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service and its accounts."""

    proc: Proc
    blob_endpoint: str
    accounts: dict[str, Account]  # role ("source" / "dr") -> account

    def account_url(self, role: str) -> str:
        return f"{self.blob_endpoint}/{self.accounts[role].name}"

    def connection_string(self, role: str) -> str:
        acct = self.accounts[role]
        return (
            f"DefaultEndpointsProtocol=http;AccountName={acct.name};AccountKey={acct.key};"
            f"BlobEndpoint={self.account_url(role)};"
        )

    def storage_json(self) -> dict:
        return {
            "blob_endpoint": self.blob_endpoint,
            "accounts": {role: acct.to_json() for role, acct in self.accounts.items()},
        }


def _accounts(state_dir: Path) -> dict[str, Account]:
    """The stack's accounts; keys are made once per state dir so data written earlier stays readable."""
    path = state_dir / "azurite" / "accounts.json"
    if path.exists():
        return {role: Account(**data) for role, data in json.loads(path.read_text()).items()}
    accounts = {
        "source": Account("vfxtsource", base64.b64encode(secrets.token_bytes(64)).decode(), SOURCE_REGION),
        "dr": Account("vfxtdr", base64.b64encode(secrets.token_bytes(64)).decode(), DR_REGION),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({r: a.to_json() for r, a in accounts.items()}, indent=2))
    path.chmod(0o600)
    return accounts


def answers_as_azurite(blob_endpoint: str, accounts: dict[str, Account]) -> bool:
    """True when the service at blob_endpoint is an Azurite that holds every one of these accounts with its key:
    a shared-key request per account succeeds and the server names itself Azurite."""
    from azure.core.exceptions import AzureError
    from azure.storage.blob import BlobServiceClient

    servers: list[str] = []
    try:
        for acct in accounts.values():
            credential = {"account_name": acct.name, "account_key": acct.key}
            with BlobServiceClient(
                f"{blob_endpoint}/{acct.name}",
                credential=credential,
                retry_total=0,
                connection_timeout=2,
                read_timeout=5,
            ) as service:
                service.get_service_properties(
                    raw_response_hook=lambda r: servers.append(r.http_response.headers.get("Server", ""))
                )
    except (AzureError, OSError, ValueError):
        return False
    return len(servers) == len(accounts) and all(s.startswith("Azurite-Blob") for s in servers)


def start_azurite(
    state_dir: Path, port: int | None = None, timeout: float = 60.0, *, in_memory: bool = False
) -> Azurite:
    """Start Azurite's blob service on a free loopback port, its data under state_dir/azurite.

    Started means: the process this call spawned holds the port and answers as Azurite with the stack's
    accounts; when another process took the picked port first, it starts again on a fresh one.

    `in_memory` keeps blobs and metadata in the process only (`--inMemoryPersistence`; lost when it stops). On
    disk, Azurite's metadata database (LokiJS) saves itself whole every 5 s, blocking the emulator for a time
    that grows with the number of blobs it holds: a cost of the emulator, not of the storage API, that a
    measurement at 100,000 blobs would otherwise count.
    """
    if not AZURITE_BLOB.exists():
        raise RuntimeError(f"{AZURITE_BLOB} is missing: run `npm ci` (the Makefile does) first")
    state_dir = Path(state_dir).resolve()
    accounts = _accounts(state_dir)
    data_dir = state_dir / "azurite" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {"AZURITE_ACCOUNTS": ";".join(f"{a.name}:{a.key}" for a in accounts.values()), "NODE_NO_WARNINGS": "1"}

    def argv(chosen: int) -> list[str]:
        return [
            str(AZURITE_BLOB),
            "--blobHost",
            LOOPBACK,
            "--blobPort",
            str(chosen),
            *(["--inMemoryPersistence"] if in_memory else ["--location", str(data_dir)]),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]

    try:
        proc, port = spawn_listening(
            "azurite",
            argv,
            state_dir / "logs",
            ready=lambda chosen: answers_as_azurite(f"http://{LOOPBACK}:{chosen}", accounts),
            env=env,
            cwd=os.fspath(state_dir),
            timeout=timeout,
            port=port,
        )
    except StartError as err:
        raise RuntimeError(f"Azurite did not start: {err.problem}; see {err.log}") from None
    return Azurite(proc=proc, blob_endpoint=f"http://{LOOPBACK}:{port}", accounts=accounts)
