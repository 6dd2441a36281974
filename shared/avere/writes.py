"""A write that must not be applied twice: sent once, and after a lost answer the cluster's state decides."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from shared.avere.errors import AvereAnswerLost

log = logging.getLogger("shared.avere.client")
T = TypeVar("T")


def send_once(label: str, send: Callable[[], T], applied: Callable[[], T | None], *, resends: int) -> T:
    """`send()` the write. When its answer is lost (it may or may not have run), read the state back with
    `applied()`: what the write was to make is there -> that result; it is not -> the write did not run, so
    it is sent again (at most `resends` times). A fault answer is never retried here: it surfaces typed."""
    again = 0
    while True:
        try:
            return send()
        except AvereAnswerLost:
            found = applied()
            if found is not None:
                log.info("avere: %s: the answer was lost, the cluster shows the write applied; going on", label)
                return found
            if again >= resends:
                raise
            again += 1
            log.info(
                "avere: %s: the answer was lost and the write is not applied; sending it again (%d/%d)",
                label,
                again,
                resends,
            )
