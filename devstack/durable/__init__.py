"""The local Durable runner: drives the real azure-functions-durable 1.x SDK by replay, kept in SQLite."""

from devstack.durable.runner import ConflictError, Runner, RunnerError

__all__ = ["ConflictError", "Runner", "RunnerError"]
