"""How a matrix cell hurts a run: one small injector per fault kind, each arming one stand-in's own fault API.

Every injector is driven black-box: the cluster simulator's `sim.injectFault` (codes and texts from the Avere
reference), the fault proxy in front of Azurite (error / reset rules), the Key Vault stand-in's test-only
faults (error / reset), or the Durable runner stopped and started again on its state dir.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.reliability.world import World

# The reference's fault codes and texts (vFXT.py retries 100, 102 and 109; 101 is the maintenance-API refusal).
BUSY = (109, "Cannot modify while a group of nodes is joining")
DENIED = (101, "Permission denied")
GENERIC = (100, "Could not start job, internal error")
MANY = 1000  # "until cleared": the cell ends with the cluster still refusing


@dataclass(frozen=True)
class ClusterFault:
    """`sim.injectFault` on one method of one cluster: `count` calls fail before (or after) they run."""

    method: str
    code: int = BUSY[0]
    text: str = BUSY[1]
    count: int = 1
    when: str = "before"
    cluster: str = "primary"

    def arm(self, world: World) -> None:
        world.env.client(world.cluster_name(self.cluster)).call(
            "sim.injectFault",
            {
                "method": self.method,
                "action": "fault",
                "code": self.code,
                "text": self.text,
                "count": self.count,
                "when": self.when,
            },
        )

    def label(self) -> str:
        lasting = "until cleared" if self.count >= MANY else f"x{self.count}"
        after = ", after it ran" if self.when == "after" else ""
        return f"{self.method} fault {self.code} {lasting}{after}"


@dataclass(frozen=True)
class ClusterRule:
    """Any other `sim.injectFault` rule (drop, http, leaveDirty ...), given as the rule struct."""

    rule: dict[str, Any]
    cluster: str = "primary"

    def arm(self, world: World) -> None:
        world.env.client(world.cluster_name(self.cluster)).call("sim.injectFault", dict(self.rule))

    def label(self) -> str:
        extra = {k: v for k, v in self.rule.items() if k not in ("method", "action")}
        return f"{self.rule['method']} {self.rule['action']} {extra or ''}".strip()


@dataclass(frozen=True)
class StorageFault:
    """A fault proxy rule: `error` (status, code) or `reset`, on an operation of one account (and container)."""

    operation: str
    action: str = "error"
    status: int = 503
    account: str = "backup"  # source | backup
    container: str | None = None  # backup | catalog | generation container name; None: any
    times: int | None = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def arm(self, world: World) -> None:
        code = {503: "ServerBusy", 429: "TooManyRequests", 500: "InternalError"}.get(self.status, "ServerBusy")
        fields: dict[str, Any] = {
            "account": world.account(self.account),
            "operation": self.operation,
            "times": self.times,
            **self.extra,
        }
        if self.container is not None:
            fields["container"] = world.container_name(self.container)
        if self.action == "error":
            fields.update(status=self.status, code=code)
            if self.status == 429:
                fields.setdefault("retry_after", 0.05)
        world.proxy.add_rule(self.action, **fields)

    def label(self) -> str:
        what = f"{self.status}" if self.action == "error" else self.action
        where = f"{self.account}{'/' + self.container if self.container else ''}"
        lasting = "until cleared" if self.times is None else f"x{self.times}"
        return f"{self.operation} {what} on {where} {lasting}"


@dataclass(frozen=True)
class VaultFault:
    """A Key Vault stand-in fault: `error` (status) or `reset` on requests whose path matches."""

    path: str
    method: str = "*"
    action: str = "error"
    status: int = 500
    times: int | None = None

    def arm(self, world: World) -> None:
        path = self.path.replace("{key}", world.key_secret)
        world.env.keyvault.add_fault(self.action, method=self.method, path=path, status=self.status, times=self.times)

    def label(self) -> str:
        what = f"{self.status}" if self.action == "error" else "unreachable (reset)"
        lasting = "until cleared" if self.times is None else f"x{self.times}"
        return f"vault {self.method} {self.path} {what} {lasting}"


@dataclass(frozen=True)
class Kill:
    """The runner is stopped while the run is at this step (work in flight is abandoned and its completion lost,
    as when the host dies right after an activity acted) and a new runner starts on the same state dir."""

    def arm(self, world: World) -> None:
        world.restart_runner()

    def label(self) -> str:
        return "runner killed, restarted on its state dir"


Injector = ClusterFault | ClusterRule | StorageFault | VaultFault | Kill
