"""Activity functions: thin adapters (decode the payload, call shared/, return a small secret-free result).

Register every blueprint in function_app.py:  `for bp in activities.blueprints(): app.register_functions(bp)`.
"""

from __future__ import annotations

from typing import Any


def blueprints() -> list[Any]:
    from activities import backup, drill, failback, failover, runs
    from activities import copy as copy_pages
    from activities import readd as attach

    return [runs.bp, backup.bp, attach.bp, copy_pages.bp, failover.bp, drill.bp, failback.bp]
