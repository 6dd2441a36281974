"""`python -m devstack demo`: the local stack end to end: a Key Vault secret, a blob copied across regions."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from devstack.stack import DEFAULT_STATE_DIR, running_stack, start_stack, stop_stack
from shared.keyvault import KeyVault

COPY_TIMEOUT = 60.0


class DemoFailed(Exception):
    """A step's check did not hold."""


def _say(step: str, detail: str = "") -> None:
    print(f"[demo] {step}" + (f": {detail}" if detail else ""), flush=True)


def _use_stack_identity(stack: dict) -> None:
    """Point this process's DefaultAzureCredential at the stack's identity endpoint; trust the stack's CA."""
    os.environ["IDENTITY_ENDPOINT"] = stack["identity"]["endpoint"]
    os.environ["IDENTITY_HEADER"] = stack["identity"]["header"]
    os.environ["REQUESTS_CA_BUNDLE"] = stack["keyvault"]["ca_cert"]


def secret_round_trip(stack: dict) -> None:
    """Store a secret and read it back by its version through the real SDK, challenge and managed identity."""
    _use_stack_identity(stack)
    value = secrets.token_urlsafe(32)
    name = f"demo-passphrase-{secrets.token_hex(4)}"
    with KeyVault(stack["keyvault"]["url"]) as vault:
        ref = vault.store(name, value, content_type="text/plain", tags={"cluster": "demo", "filer": "demo"})
        _say("stored secret", f"{ref.name} version {ref.version}")
        got = vault.read(ref.name, ref.version)
        if got.value != value or got.ref != ref:
            raise DemoFailed(f"secret {ref.name}/{ref.version} read back differently")
        newest = vault.versions(ref.name)[0].ref
        if newest != ref:
            raise DemoFailed(f"secret {ref.name}: newest version is {newest.version}, expected {ref.version}")
    _say("read it back by version", "value matches")


def blob_copy(stack: dict) -> None:
    """Copy one blob from the source account to the DR account server-side (Copy Blob + read-only SAS)."""
    storage = stack["storage"]
    src_acct, dr_acct = storage["accounts"]["source"], storage["accounts"]["dr"]
    endpoint = storage["blob_endpoint"]
    source = BlobServiceClient(f"{endpoint}/{src_acct['name']}", credential=src_acct["key"])
    target = BlobServiceClient(f"{endpoint}/{dr_acct['name']}", credential=dr_acct["key"])
    suffix = secrets.token_hex(4)
    src_container = source.get_container_client(f"demo-src-{suffix}")
    dst_container = target.get_container_client(f"demo-dr-{suffix}")
    src_container.create_container()
    dst_container.create_container()
    try:
        payload = secrets.token_bytes(256 * 1024)
        blob_name = "dir/demo object.bin"
        src_blob = src_container.upload_blob(blob_name, payload, metadata={"origin": "demo"})
        _say("uploaded to source", f"{src_acct['name']} ({src_acct['region']}) {len(payload)} bytes")
        sas = generate_blob_sas(src_acct["name"], src_container.container_name, blob_name,
                                account_key=src_acct["key"], permission=BlobSasPermissions(read=True),
                                expiry=datetime.now(UTC) + timedelta(minutes=15))
        dst_blob = dst_container.get_blob_client(blob_name)
        dst_blob.start_copy_from_url(f"{src_blob.url}?{sas}")
        deadline = time.monotonic() + COPY_TIMEOUT
        while (props := dst_blob.get_blob_properties()).copy.status == "pending":
            if time.monotonic() > deadline:
                raise DemoFailed(f"copy of {blob_name} still pending after {COPY_TIMEOUT:.0f}s")
            time.sleep(0.2)
        if props.copy.status != "success":
            raise DemoFailed(f"copy of {blob_name} ended {props.copy.status}: "
                             f"{props.copy.status_description}")
        if dst_blob.download_blob().readall() != payload or props.metadata != {"origin": "demo"}:
            raise DemoFailed(f"copy of {blob_name} differs from the source")
        _say("copied to DR", f"{dr_acct['name']} ({dr_acct['region']}): bytes and metadata match")
    finally:
        src_container.delete_container()
        dst_container.delete_container()


STEPS: list[tuple[str, Callable[[dict], None]]] = [
    ("Key Vault secret round trip", secret_round_trip),
    ("cross-region blob copy", blob_copy),
]


def run(state_dir: Path) -> int:
    """Stack up, every step in order, stack down (unless it ran before the demo); 0 only if all held."""
    was_running = running_stack(Path(state_dir).resolve()) is not None
    _say("stack up", f"state in {state_dir}" + (" (already running)" if was_running else ""))
    stack = start_stack(state_dir)
    failed = False
    try:
        for title, step in STEPS:
            _say(f"step: {title}")
            try:
                step(stack)
            except Exception as err:  # a demo reports every failure and exits non-zero
                _say(f"FAILED: {title}", f"{type(err).__name__}: {err}")
                failed = True
                break
    finally:
        if not was_running:
            stop_stack(state_dir)
            _say("stack down")
    _say("FAILED" if failed else "all steps passed")
    return 1 if failed else 0


def add_arguments(parser: argparse.ArgumentParser, command_name: str) -> None:
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="the stack's state dir (default: .devstack)")


def main(args: argparse.Namespace) -> int:
    try:
        return run(Path(args.state_dir))
    except Exception as err:  # e.g. a component that would not start: say which, and its log
        print(f"[demo] FAILED: {err}", file=sys.stderr)
        return 1
