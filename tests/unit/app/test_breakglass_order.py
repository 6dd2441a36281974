"""Break glass calls the failover orchestrator's activities in the orchestrator's order: a step added to one and
not the other fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CALL = re.compile(r"\b(runs_acts|failover_acts|attach_acts)\.(\w+)")


def calls(path: Path) -> list[str]:
    names = [m.group(2) for m in CALL.finditer(path.read_text())]
    return list(dict.fromkeys(names))  # first use of each, in order


def test_break_glass_calls_the_orchestrators_activities_in_its_order() -> None:
    orchestrator = calls(ROOT / "orchestrators" / "failover.py")
    # The orchestrator attaches through the shared attach helper (durable_helpers.attach: attach_step).
    text = (ROOT / "orchestrators" / "failover.py").read_text()
    at = text.index("yield from attach(")
    before = [n for n in orchestrator if text.index(f"acts.{n}") < at]
    after = [n for n in orchestrator if text.index(f"acts.{n}") > at]
    order = [*before, "attach_step", *after]
    breakglass = calls(ROOT / "tools" / "breakglass.py")
    # verify_backup_page is defined before failover() in both (the _verify helper): compare the main path.
    assert sorted(breakglass) == sorted(order)
    main = (ROOT / "tools" / "breakglass.py").read_text()
    body = main[main.index("def failover("):]
    steps = [m.group(2) for m in CALL.finditer(body)]
    assert [s for s in order if s not in ("verify_backup_page", "attach_step")] == steps
    # Both check the backup (the _verify helpers call verify_backup_page) before marking it attached.
    flow = text[text.index("def failover_orchestrator"):]
    assert flow.index("_verify(") < flow.index("mark_attached") < flow.index("attach(") < flow.index(
        "record_failover")
    assert body.index("_verify(") < body.index("mark_attached") < body.index("_attach(") < body.index(
        "record_failover")
