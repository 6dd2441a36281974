"""Retries for storage clients: backoff on throttling (429/503 ServerBusy), 5xx, timeouts and resets,
honouring Retry-After (the SDK's own policy never retries 429)."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, HTTPPolicy
from shared.core.clock import utc_now

# Service error codes worth a retry even on a 4xx: the copy source was throttled or timed out.
_RETRY_COPY_SOURCE_CODES = {"OperationTimedOut", "InternalError", "ServerBusy"}
_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
# Options the SDK's own retry policy would consume; left in place they would reach the transport.
_RETRY_OPTION_KEYS = (
    "retry_total",
    "retry_connect",
    "retry_read",
    "retry_status",
    "retry_to_secondary",
    "retry_hook",
    "hosts",
)


@dataclass(frozen=True)
class RetrySettings:
    """Backoff for 408/429/5xx/ServerBusy/timeouts/resets; Retry-After is honoured up to max_retry_after."""

    total: int = 10
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    jitter: float = 0.2
    max_retry_after: float = 300.0
    connection_timeout: float = 20.0
    read_timeout: float = 120.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        wait = min(self.max_backoff, self.initial_backoff * (2**attempt))
        wait *= 1 + random.uniform(-self.jitter, self.jitter)  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return max(0.0, wait)


# A probe (the preflight's): an account that does not answer is the finding, reported in seconds, not after the
# several minutes of backoff a copy rides out (a lost region refuses or drops every connection).
PROBE_RETRY = RetrySettings(
    total=2, initial_backoff=0.5, max_backoff=2.0, max_retry_after=5.0, connection_timeout=5.0, read_timeout=30.0
)


def is_retryable(response: Any) -> bool:
    """True for throttling and transient server answers (the SDK's own policy skips 429)."""
    status = response.status_code
    if status in _RETRY_STATUSES:
        return True
    source_code = response.headers.get("x-ms-copy-source-error-code")
    return 400 <= status < 500 and source_code in _RETRY_COPY_SOURCE_CODES


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested delay: retry-after-ms, x-ms-retry-after-ms, or Retry-After (seconds or date)."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, (parsed - utc_now()).total_seconds())


class _RetryState:
    def __init__(self, request: PipelineRequest, settings: RetrySettings) -> None:
        options = request.context.options
        for key in _RETRY_OPTION_KEYS:
            options.pop(key, None)
        self.mode = options.pop("location_mode", "primary")
        self.settings = settings
        self.attempt = 0
        body = request.http_request.body
        self.body_position = body.tell() if hasattr(body, "tell") and hasattr(body, "seek") else None

    def next_wait(self, request: PipelineRequest, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try, or None when out of retries or the body cannot be replayed."""
        if self.attempt >= self.settings.total:
            return None
        body = request.http_request.body
        if hasattr(body, "read"):
            if self.body_position is None:
                return None
            body.seek(self.body_position)
        wait = self.settings.backoff(self.attempt, retry_after)
        self.attempt += 1
        return wait

    def finish(self, response: PipelineResponse) -> PipelineResponse:
        response.http_response.location_mode = self.mode  # the SDK's response handlers read it
        return response


class StorageRetry(HTTPPolicy):
    """Retry policy for sync clients (see RetrySettings)."""

    def __init__(self, settings: RetrySettings) -> None:
        super().__init__()
        self.settings = settings

    def send(self, request: PipelineRequest) -> PipelineResponse:
        state = _RetryState(request, self.settings)
        while True:
            try:
                response = self.next.send(request)
            except (ServiceRequestError, ServiceResponseError):
                wait = state.next_wait(request, None)
                if wait is None:
                    raise
                time.sleep(wait)
                continue
            if is_retryable(response.http_response):
                wait = state.next_wait(request, retry_after_seconds(response.http_response.headers))
                if wait is not None:
                    time.sleep(wait)
                    continue
            return state.finish(response)


class AsyncStorageRetry(AsyncHTTPPolicy):
    """Retry policy for aio clients (see RetrySettings)."""

    def __init__(self, settings: RetrySettings) -> None:
        super().__init__()
        self.settings = settings

    async def send(self, request: PipelineRequest) -> PipelineResponse:
        state = _RetryState(request, self.settings)
        while True:
            try:
                response = await self.next.send(request)
            except (ServiceRequestError, ServiceResponseError):
                wait = state.next_wait(request, None)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                continue
            if is_retryable(response.http_response):
                wait = state.next_wait(request, retry_after_seconds(response.http_response.headers))
                if wait is not None:
                    await response.http_response.load_body()
                    await asyncio.sleep(wait)
                    continue
            return state.finish(response)
