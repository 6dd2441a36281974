"""The demo's independent checks: blob inventories, a filer's junctions, and proof that a region is gone."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.avere.client import AvereClient
from shared.avere.errors import AvereError
from shared.avere.records import FilerRecord


class DemoFailed(Exception):
    """A step's check did not hold (the message says what and where)."""


# --- storage, seen directly on Azurite (not through the app's proxy): what is really there ------------------
def account_client(stack: dict, role: str, *, via_app: bool = False, **options: Any) -> BlobServiceClient:
    """The account of `role` ("source", "dr"), on Azurite itself or, via_app, where the app reaches it."""
    account = stack["storage"]["accounts"][role]
    root = stack["app"]["blob_endpoint"] if via_app else stack["storage"]["blob_endpoint"]
    return BlobServiceClient(
        f"{root}/{account['name']}",
        credential={"account_name": account["name"], "account_key": account["key"]},
        **options,
    )


@dataclass(frozen=True)
class BlobFacts:
    """Everything a byte-for-byte backup must keep of one blob."""

    size: int
    md5: str
    content_type: str | None
    content_encoding: str | None
    content_language: str | None
    content_disposition: str | None
    cache_control: str | None
    metadata: tuple[tuple[str, str], ...]


def inventory(container: ContainerClient) -> dict[str, BlobFacts]:
    """name -> facts. A blob stored without Content-MD5 gets the MD5 of its bytes, read here."""
    found: dict[str, BlobFacts] = {}
    for blob in container.list_blobs(include=["metadata"]):
        settings = blob.content_settings
        md5 = bytes(settings.content_md5 or b"").hex()
        if not md5:
            md5 = (
                "computed:"
                + hashlib.md5(container.download_blob(blob.name).readall(), usedforsecurity=False).hexdigest()
            )
        found[blob.name] = BlobFacts(
            size=blob.size,
            md5=md5,
            content_type=settings.content_type,
            content_encoding=settings.content_encoding,
            content_language=settings.content_language,
            content_disposition=settings.content_disposition,
            cache_control=settings.cache_control,
            metadata=tuple(sorted((blob.metadata or {}).items())),
        )
    return found


def inventory_differences(source: dict[str, BlobFacts], backup: dict[str, BlobFacts]) -> list[str]:
    """Why backup is not exactly source (empty when it is): missing, extra, and per-blob differences."""
    problems = [f"missing {name}" for name in sorted(source.keys() - backup.keys())]
    problems += [f"extra {name}" for name in sorted(backup.keys() - source.keys())]
    for name in sorted(source.keys() & backup.keys()):
        a, b = source[name], backup[name]
        if a != b:
            fields = [f for f in BlobFacts.__dataclass_fields__ if getattr(a, f) != getattr(b, f)]
            problems.append(f"{name}: {', '.join(fields)} differ")
    return problems


# --- the filer on a cluster --------------------------------------------------------------------------------
def junctions(record: FilerRecord) -> list[tuple[str, ...]]:
    """The junctions as clients see them: vserver, path, export, subdir, policy (inherited or named)."""
    return sorted(
        (j.vserver, j.path, j.export, j.subdir, "inherit" if j.inherit_policy else j.policy, j.access, j.permissions)
        for j in record.junctions
    )


def describe_junctions(record: FilerRecord) -> str:
    return ", ".join(
        f"{j.path} ({'inherits' if j.inherit_policy else 'policy ' + j.policy})"
        for j in sorted(record.junctions, key=lambda j: j.path)
    )


def policies(record: FilerRecord) -> list[Any]:
    return sorted((p.vserver, p.name, tuple(p.rules)) for p in record.export_policies)


# --- losing the primary region ----------------------------------------------------------------------------
def source_unreachable(stack: dict, container: str) -> str:
    """One request for the source account where the app reaches it; it must fail. Returns what happened."""
    service = account_client(stack, "source", via_app=True, retry_total=0, connection_timeout=5, read_timeout=5)
    try:
        service.get_container_client(container).get_container_properties()
    except AzureError as err:
        return f"{type(err).__name__}: {str(err.message)[:160]}"
    raise DemoFailed(f"the source account still answers the app at {stack['app']['blob_endpoint']}")


@contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Silence these loggers for a step whose warnings the demo expects (and says in its own words)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def cluster_unreachable(info: dict) -> str:
    """One login to a cluster's management API; it must fail. Returns what happened."""
    client = AvereClient(info["url"], info["user"], info["password"], ca_file=info["ca_cert"], timeout=5, retries=0)
    try:
        with quiet("shared.avere.client"):  # the client warns about the refused connection this probe expects
            client.list_core_filers()
    except AvereError as err:
        return type(err).__name__
    finally:
        client.close()
    raise DemoFailed(f"the primary cluster still answers at {info['url']}")
