"""Blocking waits on a cluster through the production client: for the local stack, the demo and tests.

Workflows never block on a cluster: they poll activity_status on durable timers. These loop with the
client's own sleep, so a client on a virtual clock (tests) advances it instead of sleeping.
"""

from __future__ import annotations

from shared.avere.errors import AvereActivityFailed, AvereError
from shared.avere.reader import AvereReader
from shared.avere.records import ActivityStatus, Health


class AvereTimeout(AvereError, TimeoutError):
    """A blocking wait ran out of time; the cluster may still be working."""


def wait_activity(client: AvereReader, activity_id: str, timeout: float = 600.0, poll: float = 1.0) -> ActivityStatus:
    """Block until the activity ends: its status, AvereActivityFailed if it failed, AvereTimeout past timeout."""
    waited = 0.0
    while True:
        status = client.activity_status(activity_id)
        if status.state == "failure":
            raise AvereActivityFailed(
                f"activity {activity_id} ({status.process}) failed: {status.status}",
                activity_id=activity_id,
                status=status.status,
            )
        if status.succeeded:
            return status
        if waited >= timeout:
            raise AvereTimeout(
                f"activity {activity_id} ({status.process}) still {status.state} at "
                f"{status.percent}% after {timeout:.0f}s"
            )
        client.session.sleep(poll)
        waited += poll


def wait_healthy(client: AvereReader, name: str, timeout: float = 600.0, poll: float = 5.0) -> Health:
    """Block until the core filer's health() is good; AvereTimeout past timeout."""
    waited = 0.0
    while True:
        health = client.health(name)
        if health.healthy:
            return health
        if waited >= timeout:
            raise AvereTimeout(f"core filer {name!r} not healthy after {timeout:.0f}s: " + "; ".join(health.reasons))
        client.session.sleep(poll)
        waited += poll
