"""Typed workflow errors: what failed, on which filer, the state it was left in, and what to do."""

from __future__ import annotations


class DrError(Exception):
    """A run stopped. The message is complete on its own: operators read it in the orchestration status."""

    kind = "failed"

    def __init__(self, what: str, *, filer: str, state: str, action: str) -> None:
        self.what, self.filer, self.state, self.action = what, filer, state, action
        super().__init__(f"{what} [filer {filer}; state: {state}; to do: {action}]")


class PreflightFailed(DrError):
    kind = "preflight"


class FlushTimeout(DrError):
    kind = "flush_timeout"


class CopyFailed(DrError):
    kind = "copy"


class ReaddFailed(DrError):
    kind = "readd"


class RunCancelled(DrError):
    kind = "cancelled"


class FailoverFailed(DrError):
    kind = "failover"


class CatalogConflict(DrError):
    """The catalog forbids what was asked (an attached container, an unresolved attention mark)."""

    kind = "catalog"


class InputRefused(DrError):
    """An orchestration or activity input this app does not act on: it names something outside the plan or the
    catalog's rules, is malformed, or was written by an earlier version whose inputs carried plan parts. Nothing
    was changed."""

    kind = "refused"

    def __init__(
        self,
        what: str,
        *,
        filer: str = "not resolved",
        state: str = "nothing changed",
        action: str = "start runs through the app's routes or timer: inputs name plan entities and run state only",
    ) -> None:
        super().__init__(what, filer=filer, state=state, action=action)


class DrillFailed(DrError):
    """A drill did not show the backup restorable (or could not clean up after itself)."""

    kind = "drill"
