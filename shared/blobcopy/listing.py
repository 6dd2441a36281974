"""Paged, streamed listings: one source page per step, and a destination name range for polling/verify."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from shared.blobcopy.entries import BlobEntry, order_key
from shared.blobcopy.errors import CopyError, SourceUnreachable, describe_http_error

MAX_PAGE = 5000


async def list_source_page(container: Any, page_size: int, token: str | None,
                           what: str = "source") -> tuple[list[BlobEntry], str | None]:
    """One page of the container listing with metadata, and the continuation token of the next one."""
    pager = container.list_blobs(include=["metadata"], results_per_page=page_size).by_page(
        continuation_token=token)
    try:
        page = await pager.__anext__()
        entries = [BlobEntry.from_properties(blob) async for blob in page]
    except StopAsyncIteration:
        return [], None
    except ResourceNotFoundError as exc:
        raise SourceUnreachable(f"{what} container {container.container_name!r} not found: "
                                f"{describe_http_error(exc)}") from None
    except (HttpResponseError, ServiceRequestError) as exc:
        raise SourceUnreachable(f"cannot list {what} container {container.container_name!r}: "
                                f"{describe_http_error(exc)}") from None
    return entries, pager.continuation_token


async def iter_range(container: Any, lower: str | None, upper: str | None, *, include: list[str],
                     inclusive_lower: bool = False) -> AsyncIterator[BlobEntry]:
    """Blobs of container named in (lower, upper] ([lower, upper] if inclusive_lower), in listing order.

    Starts the listing at lower with `start_from`, so a page's range costs about one list call per
    5,000 names however large the container is.
    """
    kwargs: dict[str, Any] = {"include": include, "results_per_page": MAX_PAGE}
    if lower is not None:
        kwargs["start_from"] = lower
    upper_key = order_key(upper) if upper is not None else None
    lower_key = order_key(lower) if lower is not None else None
    try:
        async for blob in container.list_blobs(**kwargs):
            entry = BlobEntry.from_properties(blob)
            key = order_key(entry.name)
            if upper_key is not None and key > upper_key:
                return
            if lower_key is not None and (key < lower_key or (key == lower_key and not inclusive_lower)):
                continue
            yield entry
    except ResourceNotFoundError as exc:
        raise CopyError(f"container {container.container_name!r} not found: {describe_http_error(exc)}") \
            from None
    except (HttpResponseError, ServiceRequestError) as exc:
        raise CopyError(f"cannot list container {container.container_name!r}: "
                        f"{describe_http_error(exc)}") from None


async def range_map(container: Any, lower: str | None, upper: str | None, *, include: list[str],
                    inclusive_lower: bool = False) -> dict[str, BlobEntry]:
    return {entry.name: entry async for entry in
            iter_range(container, lower, upper, include=include, inclusive_lower=inclusive_lower)}
