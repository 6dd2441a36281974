"""Paged, streamed listings: one source page per step, and a destination name range for polling/verify.

List Blobs is sent through the SDK client's own pipeline (auth, retries, logging redaction) but its XML
is parsed here: the SDK's model deserialization costs about four times the CPU, and on a busy worker
the listing is most of the engine's own work.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.rest import HttpRequest

from shared.blobcopy.entries import BlobEntry, order_key
from shared.blobcopy.errors import CopyError, SourceUnreachable, describe_http_error

MAX_PAGE = 5000
_PROPS = ("Content-Type", "Content-Encoding", "Content-Language", "Content-Disposition", "Cache-Control")
_EXPLICIT_TIERS = {"Hot", "Cool", "Cold"}


def _epoch(value: str | None) -> float | None:
    return parsedate_to_datetime(value).timestamp() if value else None


def parse_list_blobs(body: bytes) -> tuple[list[BlobEntry], str | None]:
    """A List Blobs (flat) response: the entries and the next marker."""
    root = ET.fromstring(body)  # noqa: S314 - the storage service's own response
    entries: list[BlobEntry] = []
    blobs = root.find("Blobs")
    for blob in blobs.iterfind("Blob") if blobs is not None else ():
        name_node = blob.find("Name")
        name = (name_node.text or "") if name_node is not None else ""
        if name_node is not None and name_node.get("Encoded") == "true":
            name = unquote(name)  # names with characters XML cannot carry come percent-encoded
        props_node = blob.find("Properties")
        props = {child.tag: child.text for child in props_node} if props_node is not None else {}
        meta_node = blob.find("Metadata")
        metadata = (
            {child.tag: child.text or "" for child in meta_node if child.tag != "x-ms-invalid-name"}
            if meta_node is not None
            else {}
        )
        tier = props.get("AccessTier")
        entries.append(
            BlobEntry(
                name=name,
                etag=(props.get("Etag") or "").strip('"'),
                size=int(props.get("Content-Length") or 0),
                md5=props.get("Content-MD5") or None,
                modified=_epoch(props.get("Last-Modified")) or 0.0,
                props=tuple(props.get(key) or None for key in _PROPS),
                metadata=metadata,
                blob_type=props.get("BlobType") or "BlockBlob",
                tier=tier if tier in _EXPLICIT_TIERS and props.get("AccessTierInferred") != "true" else None,
                copy_status=props.get("CopyStatus") or None,
                copy_id=props.get("CopyId") or None,
                copy_completed=_epoch(props.get("CopyCompletionTime")),
            )
        )
    return entries, root.findtext("NextMarker") or None


async def list_page(
    container: Any,
    *,
    include: list[str],
    marker: str | None = None,
    start_from: str | None = None,
    size: int = MAX_PAGE,
) -> tuple[list[BlobEntry], str | None]:
    """One List Blobs call: up to `size` entries from marker (or from the name start_from, inclusive)."""
    send = getattr(getattr(container, "_client", None), "_send_request", None)
    if send is None:  # an SDK without the raw-request hook: its own (slower) paging
        return await _sdk_page(container, include=include, marker=marker, start_from=start_from, size=size)
    params = {"restype": "container", "comp": "list", "maxresults": str(size)}
    if include:
        params["include"] = ",".join(include)
    if marker:
        params["marker"] = marker
    if start_from is not None:
        params["startFrom"] = start_from
    base, _, sas = container.url.partition("?")
    # %20, not '+', for spaces: the shared-key signature canonicalizes the query with unquote.
    url = f"{base}?{urlencode(params, quote_via=quote)}" + (f"&{sas}" if sas else "")
    request = HttpRequest("GET", url, headers={"x-ms-version": container.api_version, "Accept": "application/xml"})
    response = await send(request)
    body = await response.read()
    if response.status_code != 200:
        error_type = ResourceNotFoundError if response.status_code == 404 else HttpResponseError
        error = error_type(message=f"List Blobs failed ({response.status_code})", response=response)
        # As the blob SDK's own errors carry it (its process_storage_error sets it the same way; azure-core
        # does not declare the attribute); error_code() and the copy engine's retry decisions read it.
        error.error_code = response.headers.get("x-ms-error-code")  # type: ignore[attr-defined]
        raise error
    # Parsing 5,000 entries takes ~0.1 s of CPU: in a thread, the loop keeps feeding requests meanwhile.
    return await asyncio.to_thread(parse_list_blobs, body)


async def _sdk_page(
    container: Any, *, include: list[str], marker: str | None, start_from: str | None, size: int
) -> tuple[list[BlobEntry], str | None]:
    kwargs: dict[str, Any] = {"include": include or None, "results_per_page": size}
    if start_from is not None:
        kwargs["start_from"] = start_from
    pager = container.list_blobs(**kwargs).by_page(continuation_token=marker)
    try:
        page = await pager.__anext__()
    except StopAsyncIteration:
        return [], None
    return [BlobEntry.from_properties(blob) async for blob in page], pager.continuation_token


async def list_source_page(
    container: Any, page_size: int, token: str | None, what: str = "source"
) -> tuple[list[BlobEntry], str | None]:
    """One page of the container listing with metadata, and the continuation token of the next one."""
    try:
        return await list_page(container, include=["metadata"], marker=token, size=page_size)
    except ResourceNotFoundError as exc:
        raise SourceUnreachable(
            f"{what} container {container.container_name!r} not found: {describe_http_error(exc)}"
        ) from None
    except (AzureError, ServiceRequestError) as exc:
        raise SourceUnreachable(
            f"cannot list {what} container {container.container_name!r}: {describe_http_error(exc)}"
        ) from None


async def iter_range(
    container: Any, lower: str | None, upper: str | None, *, include: list[str], inclusive_lower: bool = False
) -> AsyncIterator[BlobEntry]:
    """Blobs of container named in (lower, upper] ([lower, upper] if inclusive_lower), in listing order.

    Starts the listing at lower with `start_from`, so a page's range costs about one list call per
    5,000 names however large the container is.
    """
    upper_key = order_key(upper) if upper is not None else None
    lower_key = order_key(lower) if lower is not None else None
    marker: str | None = None
    try:
        while True:
            entries, marker = await list_page(
                container, include=include, marker=marker, start_from=lower if marker is None else None
            )
            for entry in entries:
                key = order_key(entry.name)
                if upper_key is not None and key > upper_key:
                    return
                if lower_key is not None and (key < lower_key or (key == lower_key and not inclusive_lower)):
                    continue
                yield entry
            if marker is None:
                return
    except ResourceNotFoundError as exc:
        raise CopyError(f"container {container.container_name!r} not found: {describe_http_error(exc)}") from None
    except AzureError as exc:
        raise CopyError(f"cannot list container {container.container_name!r}: {describe_http_error(exc)}") from None


async def range_map(
    container: Any, lower: str | None, upper: str | None, *, include: list[str], inclusive_lower: bool = False
) -> dict[str, BlobEntry]:
    return {
        entry.name: entry
        async for entry in iter_range(container, lower, upper, include=include, inclusive_lower=inclusive_lower)
    }
