"""Fence the primary filer after a failover: record the request, apply it on the primary cluster, honour it.

How: **suspend client access** (`corefiler.modify clientSuspend yes`), or leave a filer that is already off the
cluster removed. Suspending is one idempotent call that takes effect at once, needs no maintenance mode, flush
or junction removal (which a cluster just back from an outage may not finish), keeps whatever the primary cache
holds that the backup does not (an operator may want it) and is undone by the operator's override without a
replay. Never `invalidate`: that discards changed data. The catalog keeps how (shared/catalog/fence.py).

Where: the failover route records the request before it cancels a running backup (so that backup's
compensation finds it); the failover run applies it first thing (`fence_primary`); when the primary cluster
cannot be reached, the timer tick applies it the first time it can. Everything that would re-add or unsuspend
the filer on its own cluster asks `held(...)` first and again right after acting.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from shared.avere.client import AvereClient
from shared.avere.namespace import yes
from shared.catalog.fence import (
    PENDING,
    REMOVED,
    SUSPENDED,
    WITHDRAWN,
    active_fence,
    authorize_lift,
    begin_fence,
    describe,
    revoke_lift,
    settle_fence,
    withdraw_fence,
)
from shared.core.clock import from_epoch, to_iso
from shared.plan.load import Filer, Plan
from shared.runbook import services
from shared.runbook.failover_payloads import FenceOutcome
from shared.runbook.payloads import RunContext
from shared.runbook.refs import RunRef
from shared.runbook.runs import catalog_of, load_run

log = logging.getLogger("vfxtdr.fence")

LIFT_TTL = timedelta(hours=1)  # how long an operator's override waits for the re-add run it started
# Applying a fence tries the primary cluster briefly: a failover must not wait on a lost region (the DR cluster
# serves sooner), and the timer tick tries again every five minutes.
ATTEMPT: dict[str, Any] = {"retries": 1, "timeout": 10.0}


def lift_until() -> str:
    """When an override authorised now expires."""
    return to_iso(from_epoch(services.now()) + LIFT_TTL)


def request_fence(
    plan: Plan, filer: Filer, *, instance_id: str, target: str, by: str, request: str = "", claim: bool = False
) -> dict[str, Any]:
    """A failover was asked for: record the fence before anything else happens (idempotent). A route passes its
    own `request` token (see `withdraw`); the failover run itself passes `claim`."""
    with catalog_of(plan, filer) as catalog:
        mark = catalog.update(
            filer,
            lambda s: begin_fence(
                s, instance_id=instance_id, target=target, by=by, at=services.now_iso(), request=request, claim=claim
            ),
        )
    log.warning(
        "%s: fenced for failover %s to %s (requested by %s)",
        filer.key,
        instance_id,
        target,
        by or "an unidentified caller",
    )
    return mark


def withdraw(plan: Plan, filer: Filer, *, request: str) -> str:
    """The route that recorded a fence (token `request`) started nothing: withdraw it unless something relies on
    it (`withdraw_fence`: WITHDRAWN, IN_USE or HELD)."""
    with catalog_of(plan, filer) as catalog:
        outcome = withdraw_fence(catalog.load(filer), request)  # a look first: nothing of ours, nothing written
        if outcome == WITHDRAWN:
            outcome = catalog.update(filer, lambda s: withdraw_fence(s, request))
    if outcome == WITHDRAWN:
        log.warning("%s: the fence recorded for a failover that never started was withdrawn", filer.key)
    return outcome


def authorize(plan: Plan, filer: Filer, *, instance_id: str, by: str) -> None:
    """An operator asked to lift the filer's fence: re-add run `instance_id` may lift it, for LIFT_TTL."""
    with catalog_of(plan, filer) as catalog:
        catalog.update(
            filer,
            lambda s: authorize_lift(s, by=by, at=services.now_iso(), until=lift_until(), instance_id=instance_id),
        )
    log.warning(
        "%s: %s asked to lift the failover fence (re-add run %s)",
        filer.key,
        by or "an unidentified caller",
        instance_id,
    )


def revoke(plan: Plan, filer: Filer, *, instance_id: str) -> None:
    """The re-add run could not start: withdraw the authorisation it was given."""
    with catalog_of(plan, filer) as catalog:
        catalog.update(filer, lambda s: revoke_lift(s, instance_id))


def _suspended(client: AvereClient, name: str) -> bool:
    return yes(dict(client.call("corefiler.get", name)[name]).get("clientSuspend", "no"))


def _on_cluster(plan: Plan, filer: Filer) -> tuple[str, str, dict[str, Any] | None]:
    """Fence the filer on its cluster: (how, what the cluster showed, the filer's record when captured)."""
    cluster = plan.cluster(filer.cluster)
    try:
        with services.avere_client(cluster, plan.keyvault_url, **ATTEMPT) as client:
            if client.filer_state(filer.name) == "removed":
                return REMOVED, f"core filer {filer.name} is not on cluster {cluster.name}", None
            record = None
            try:  # what an operator's override replays; the suspension matters more, so it goes on regardless
                record = client.capture_core_filer(filer.name).to_json()
            except Exception as err:
                log.warning("%s: fencing without a fresh record (%s)", filer.key, type(err).__name__)
            client.suspend_clients(filer.name)
            if not _suspended(client, filer.name):
                return PENDING, f"cluster {cluster.name} did not confirm clientSuspend=yes", None
            return SUSPENDED, f"client access suspended on cluster {cluster.name}", record
    except Exception as err:
        return PENDING, f"cluster {cluster.name} not fenced yet: {type(err).__name__}: {str(err)[:300]}", None


def apply_fence(plan: Plan, filer: Filer) -> FenceOutcome:
    """Apply the filer's active fence on its primary cluster and record how; pending when it cannot be reached.
    Returns how ("" when the filer is not fenced)."""
    with catalog_of(plan, filer) as catalog:
        if active_fence(catalog.load(filer)) is None:
            return FenceOutcome(how="", detail="not fenced")
        how, detail, record = _on_cluster(plan, filer)
        mark = catalog.update(
            filer, lambda s: settle_fence(s, how=how, detail=detail, at=services.now_iso(), record=record)
        )
    if mark is None and how == SUSPENDED:
        # An operator lifted the fence while it was applied: give the clients back, as the lift asked.
        with services.avere_client(plan.cluster(filer.cluster), plan.keyvault_url) as client:
            client.unsuspend_clients(filer.name)
        log.warning("%s: the fence was lifted while it was applied; client access resumed", filer.key)
        return FenceOutcome(how="", detail="lifted by an operator meanwhile")
    level = logging.WARNING if how == PENDING else logging.INFO
    log.log(level, "%s: fence %s: %s", filer.key, how, detail)
    return FenceOutcome(how=how, detail=detail)


def fence_primary(run: RunRef) -> FenceOutcome:
    """The failover run's first step: the primary filer stops serving before the DR cluster serves it. The
    cluster is the one the run's plan snapshot names; the fence is recorded again if the route did not (a run
    started some other way fences all the same)."""
    snapshot = load_run(run, "failover")
    plan = snapshot.plan
    filer = plan.filer(snapshot.cluster, snapshot.filer)
    request_fence(plan, filer, instance_id=run.instance_id, target=snapshot.target_cluster or "", by="", claim=True)
    return apply_fence(plan, filer)


# --- honouring it: everything that would re-add or unsuspend a filer on its own cluster -----------------------
def held(ctx: RunContext) -> dict[str, Any] | None:
    """The active fence of the run's filer, read now from the catalog (None: not fenced)."""
    with services.open_catalog(ctx) as catalog:
        return active_fence(catalog.load(ctx.filer))


def keep(ctx: RunContext, client: AvereClient, fence: dict[str, Any], why: str) -> str:
    """A re-add or unsuspend stops at the fence: suspend what is on the cluster (idempotent), record how."""
    name = ctx.filer.name
    if client.filer_state(name) == "removed":
        how, detail = REMOVED, f"left removed: {why}"
    else:
        client.suspend_clients(name)
        how, detail = SUSPENDED, f"left client-suspended: {why}"
    with services.open_catalog(ctx) as catalog:
        catalog.update(ctx.filer, lambda s: settle_fence(s, how=how, detail=detail, at=services.now_iso()))
    text = f"{describe({**fence, 'how': how})}; {why}"
    log.warning("%s: %s", ctx.filer.key, text)
    return text
