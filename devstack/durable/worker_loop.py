"""The functions event loop: one asyncio loop on its own thread for async functions, as in the worker."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("devstack.durable")


class LoopNotRunning(RuntimeError):
    """The functions loop has not started or has stopped."""


class FunctionsLoop:
    """Async functions, the client's calls and async activities share this loop (the SDK's aiohttp
    session is module-wide and bound to the loop that made it, so one loop per process is the rule)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> asyncio.AbstractEventLoop:
        _forget_foreign_sdk_session()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="durable-functions", daemon=True)
        self._thread.start()
        return self.loop

    def call(self, coro: Coroutine, timeout: float | None = 60.0) -> Any:
        loop = self.loop
        if loop is None or loop.is_closed() or not self._thread or not self._thread.is_alive():
            coro.close()
            raise LoopNotRunning("the runner's functions loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def stop(self) -> None:
        if self.loop is None:
            return
        self._release_sdk_session()
        self._cancel_running()
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _release_sdk_session(self) -> None:
        """Close the SDK's session if our loop made it; the next runner's loop makes a fresh one."""
        from azure.durable_functions.models.utils import http_utils

        session = http_utils._client_session
        if session is not None and getattr(session, "_loop", None) is self.loop:
            try:
                self.call(session.close(), timeout=5)
            except Exception:  # a session that will not close is dropped all the same
                log.debug("could not close the SDK's client session", exc_info=True)
            http_utils._client_session = None

    def _cancel_running(self) -> None:
        """Cancel coroutines still running (async activities), so no worker thread waits on them forever."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        try:
            self.call(cancel_all(), timeout=10)
        except Exception:
            log.debug("could not cancel running functions", exc_info=True)


def _forget_foreign_sdk_session() -> None:
    """Drop an SDK session left bound to a loop that has gone (another runner, or asyncio.run)."""
    from azure.durable_functions.models.utils import http_utils

    session = http_utils._client_session
    loop = getattr(session, "_loop", None)
    if session is not None and (loop is None or loop.is_closed() or not loop.is_running()):
        http_utils._client_session = None
