"""Break glass calls the failover orchestrator's activities in the orchestrator's order: a step added to one and
not the other fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CALL = re.compile(r"\b(runs_acts|failover_acts|attach_acts)\.(\w+)")
MAIN = ["begin_run", "fence_primary", "choose_backup", "mark_attached", "record_failover"]
CHECKS = {"verify_backup_sample", "verify_backup_page"}


def calls(*paths: Path) -> set[str]:
    return {m.group(2) for path in paths for m in CALL.finditer(path.read_text())}


def test_break_glass_calls_the_orchestrators_activities_in_its_order() -> None:
    orchestrators = ROOT / "orchestrators"
    # The failover orchestrator, its full check (failover_verify) and the attach helper (durable_helpers.attach).
    orchestrated = calls(orchestrators / "failover.py", orchestrators / "failover_verify.py") | {"attach_step"}
    tool = (ROOT / "tools" / "breakglass.py").read_text()
    assert calls(ROOT / "tools" / "breakglass.py") == orchestrated == {*MAIN, *CHECKS, "attach_step"}

    flow = (orchestrators / "failover.py").read_text()
    main = flow[flow.index("def failover_orchestrator") : flow.index("class Phases")]
    order = [
        main.index(s)
        for s in ("begin_run", "fence_primary", "choose_backup", "check_backup(", "attach_backup(", "record_failover")
    ]
    assert order == sorted(order)
    attach = flow[flow.index("def attach_backup") :]
    assert attach.index("mark_attached") < attach.index("yield from attach(")
    body = tool[tool.index("def failover(") : tool.index("class _Phases")]
    order = [
        body.index(s)
        for s in (
            "begin_run",
            "fence_primary",
            "choose_backup",
            "_check(",
            "mark_attached",
            "_attach(",
            "record_failover",
        )
    ]
    assert order == sorted(order)
