"""The activity every run starts with: record its plan snapshot (shared/runbook/runs.py)."""

from __future__ import annotations

import azure.durable_functions as df

from shared.core.codec import decode
from shared.runbook import runs
from shared.runbook.payloads import RunStarted
from shared.runbook.refs import RunStart

bp = df.Blueprint()


@bp.activity_trigger(input_name="start")
def begin_run(start: RunStart) -> RunStarted:
    return runs.begin_run(decode(RunStart, start))
