"""A failover route's start: record each filer's fence, start the run, and withdraw those fences if nothing started.

The fence goes first so that a backup cancelled after the start finds it. But a route that records fences and
then starts nothing (the catalog refused a later filer's fence, or the engine refused the start) must not leave
a primary fenced with no failover coming: the next timer tick would apply a pending fence. Each fence carries the
request's own token; the route withdraws only fences with its token that no failover run has claimed and nothing
has applied on the primary cluster (shared/catalog/fence.py: `withdraw_fence`). A fence it cannot withdraw stays,
and the answer names it with the override that lifts it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from shared.catalog.fence import HELD, OVERRIDE
from shared.plan.load import Filer, Plan
from shared.runbook import fence as fencing
from triggers.common import Refusal, catalog_io

log = logging.getLogger("vfxtdr.http")


@dataclass(frozen=True)
class FenceAsk:
    """One filer to fence for the failover run `instance_id` towards `target`."""

    filer: Filer
    instance_id: str
    target: str


async def fence_then_start(plan: Plan, asks: list[FenceAsk], by: str, start: Callable[[], Awaitable[None]]) -> None:
    """Record every fence, then `start()`. If a fence cannot be written or the start fails, withdraw the fences
    this request wrote and re-raise (a Refusal's message then says which fences stayed)."""
    token = uuid.uuid4().hex
    tried: list[Filer] = []  # a write that failed may still have landed: its filer is looked at too
    try:
        for ask in asks:
            tried.append(ask.filer)
            fence = partial(
                fencing.request_fence,
                plan,
                ask.filer,
                instance_id=ask.instance_id,
                target=ask.target,
                by=by,
                request=token,
            )
            await catalog_io(ask.filer, fence, what="written")
        await start()
    except BaseException as err:
        kept = await _withdraw(plan, tried, token)
        if isinstance(err, Refusal) and kept:
            raise Refusal(
                err.status,
                f"{err}. The failover fence of {', '.join(kept)} may stay (applied meanwhile, or the catalog "
                "could not be read to withdraw it): if GET /api/filers/{cluster}/{filer} shows it fenced, "
                f"POST /api/filers/{{cluster}}/{{filer}}/readd?override={OVERRIDE} lifts it",
            ) from None
        raise


async def _withdraw(plan: Plan, filers: list[Filer], token: str) -> list[str]:
    """Withdraw this request's fences; the filers whose fence may stay with no failover to rely on it (applied
    meanwhile, or the catalog could not be read or written). A fence a run claimed, or another request's, stays
    without a word."""
    kept: list[str] = []
    for filer in filers:
        try:
            outcome = await catalog_io(filer, partial(fencing.withdraw, plan, filer, request=token), what="written")
            if outcome == HELD:
                kept.append(filer.key)
        except Refusal:
            log.warning("%s: the fence of a failover that never started could not be withdrawn", filer.key)
            kept.append(filer.key)
    return kept
