"""The tick's alert signals (pure): one status line per filer, a breach line per filer in breach, the heartbeat;
each line is its event name then one JSON object, and the event names are stable."""

from __future__ import annotations

import logging

import pytest

from shared.runbook import payloads, signals
from shared.runbook.report import FilerFacts, RunInfo
from shared.runbook.report import report as make_report
from tests.unit.runbook.test_report import FILER, NOW, PLAN, entry, verified_state


def test_event_names_are_stable_and_defined_once():
    # Alert rules match these strings: a rename breaks them silently.
    assert signals.EVENTS == (
        "VFXTDR_FILER_STATUS",
        "VFXTDR_RPO_BREACH",
        "VFXTDR_TICK",
        "VFXTDR_NEEDS_ATTENTION",
        "VFXTDR_DRILL_FAILED",
    )
    assert payloads.NEEDS_ATTENTION is signals.NEEDS_ATTENTION


def test_a_tick_logs_status_lines_breaches_and_the_heartbeat_last():
    fresh = make_report(PLAN, FilerFacts(FILER, verified_state(3), entry(3)), NOW)
    late = make_report(
        PLAN, FilerFacts(FILER, verified_state(30), entry(30), running=[RunInfo("backup-c1-f1", "backup", "live")]), NOW
    )
    lines = signals.for_tick([fresh, late], started=1, skipped=0, readd=0)
    parsed = [signals.parse(s.line()) for s in lines]
    assert [p[0] for p in parsed if p] == [
        "VFXTDR_FILER_STATUS",
        "VFXTDR_FILER_STATUS",
        "VFXTDR_RPO_BREACH",
        "VFXTDR_TICK",
    ]
    status = parsed[0][1]
    assert status == {
        "filer": "c1/f1",
        "cluster": "c1",
        "name": "f1",
        "state": "protected",
        "serving_cluster": "c1",
        "rpo_target_hours": 24,
        "rpo_age_s": 3 * 3600,
        "rpo_age_hours": 3.0,
        "badge": "green",
        "breach": False,
        "last_backup_id": "b1",
        "last_backup_started_at": "2030-01-10T09:00:00Z",
        "running": [],
    }
    assert parsed[1][1]["running"] == [{"instance_id": "backup-c1-f1", "kind": "backup"}]
    assert parsed[2][1] == {
        "filer": "c1/f1",
        "state": "running",
        "reason": "newest verified backup older than target",
        "rpo_target_hours": 24,
        "rpo_age_s": 30 * 3600,
        "rpo_age_hours": 30.0,
        "last_backup_id": "b1",
    }
    assert parsed[3][1] == {"filers": 2, "breaches": 1, "started": 1, "skipped": 0, "readd": 0}
    assert [s.level for s in lines] == [logging.INFO, logging.INFO, logging.WARNING, logging.INFO]


def test_no_verified_backup_breach_names_why():
    state = verified_state(3)
    state.generations["a"].status = "failed"
    state.last_scheduled = "2030-01-10T02:00:00Z"
    lines = signals.for_tick([make_report(PLAN, FilerFacts(FILER, state, None), NOW)], started=0, skipped=0, readd=0)
    breach = signals.parse(lines[1].line())
    assert breach is not None and breach[0] == "VFXTDR_RPO_BREACH"
    assert breach[1]["reason"] == "no verified backup" and breach[1]["rpo_age_s"] is None


def test_emit_logs_each_line_at_its_level(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    signals.emit(logging.getLogger("test.signals"), [signals.drill_failed("c1/f1", drill_id="d1", error="no")])
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert signals.parse(record.getMessage()) == (
        "VFXTDR_DRILL_FAILED",
        {"filer": "c1/f1", "drill_id": "d1", "error": "no"},
    )


@pytest.mark.parametrize(
    "line",
    [
        "VFXTDR_TICK",
        "VFXTDR_TICK not json",
        "VFXTDR_TICK [1]",
        "OTHER {}",
        "VFXTDR_NEEDS_ATTENTION filer=c1/f1 instance=x: boom",
    ],
)
def test_parse_refuses_what_is_not_a_signal_line(line):
    assert signals.parse(line) is None
