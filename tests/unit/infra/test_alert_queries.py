"""The alert rules' KQL (infra/modules/alerts.bicep) and the guides' queries match what the app logs.

The lines are made by the app's own code (shared/runbook/signals.py over real filer reports) and formatted as the
Functions Python worker formats them for Application Insights: a logging handler's default formatter, i.e. the
message text only (that is `traces.message`; no field of ours reaches customDimensions). Each rule's query then
runs over those lines in a small evaluator of the KQL it uses (tests/unit/infra/kql.py), and must fire for exactly
the filers it is about.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pycep import BicepParser

from shared.catalog.store import VERIFIED, FilerState, Generation
from shared.plan.load import Filer, parse_plan
from shared.runbook import services, signals
from shared.runbook.report import FilerFacts
from shared.runbook.report import report as make_report
from tests.paths import REPO
from tests.unit.infra import kql
from tests.unit.infra.test_infra import INFRA, accessor, analyse, resources_of, variable
from tests.unit.runbook.test_scheduling import _cluster, _filer, plan_dict

NOW = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
PLAN = parse_plan(
    plan_dict(
        [_cluster("c1")],
        [_cluster("dr", "eastus2")],
        [_filer("c1", n, failover_cluster="dr") for n in ("ok", "late", "stuck")],
    )
)
# Every event name a query may match: the signals, and the TLS warning (a text line, never parsed as JSON).
KNOWN = {*signals.EVENTS, services.TLS_UNVERIFIED}
_BLOCK = re.compile(r"```kusto\n(.*?)```", re.DOTALL)


def _state(filer: Filer, hours_ago: float) -> FilerState:
    started = (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = FilerState.new(filer.backup.containers)
    state.generations["a"] = Generation(
        container=filer.backup.containers[0], status=VERIFIED, backup_id="b1", verified_at=started, manifest="b1-final"
    )
    state.latest_verified = "a"
    state.last_run = {"backup_id": "b1", "status": "verified", "instance_id": "i", "started_at": started}
    return state


def _entry(hours_ago: float) -> dict[str, Any]:
    started = (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"backup_id": "b1", "status": "verified", "started_at": started, "generation": "a", "instance_id": "i"}


class _Worker(logging.Handler):
    """What the Functions Python worker does with a record: `self.format(record)` (the default formatter: the
    message only) is the text sent to the host, which Application Insights stores as `traces.message`."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


def app_lines() -> list[str]:
    """One tick over three filers (ok; late: backup older than its RPO target; stuck: needs attention), the
    stuck filer's NEEDS_ATTENTION line and a failed drill of the ok one, as the app logs them."""
    ok, late, stuck = (PLAN.filer("c1", n) for n in ("ok", "late", "stuck"))
    stuck_state = _state(stuck, 3)
    stuck_state.needs_attention = {"since": "2030-01-10T11:00:00Z", "error": "re-add failed", "instance_id": "x"}
    reports = [
        make_report(PLAN, FilerFacts(ok, _state(ok, 3), _entry(3)), NOW),
        make_report(PLAN, FilerFacts(late, _state(late, 30), _entry(30)), NOW),
        make_report(PLAN, FilerFacts(stuck, stuck_state, _entry(3)), NOW),
    ]
    assert [r["state"] for r in reports] == ["protected", "protected", "needs_attention"]
    out: list[signals.Signal] = [
        *signals.for_tick(reports, started=0, skipped=0, readd=0),
        signals.needs_attention("c1/stuck", instance_id="backup~c1~stuck", error="re-add failed: cluster busy"),
        signals.drill_failed("c1/ok", drill_id="d1", instance_id="drill~c1~ok", error="read-back differs"),
    ]
    worker, log = _Worker(), logging.getLogger("vfxtdr.test.alert_queries")
    log.addHandler(worker)
    log.setLevel(logging.INFO)  # host.json: Function logs at Information
    log.propagate = False
    try:
        signals.emit(log, out)
    finally:
        log.removeHandler(worker)
    return worker.messages


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return app_lines()


@pytest.fixture(scope="module")
def rules() -> dict[str, str]:
    """Each alert rule's query by rule name (the event rules by their `name`, and the missing tick)."""
    alerts = analyse(BicepParser(), (INFRA / "modules" / "alerts.bicep").read_text())
    out = {a["name"]: a["query"] for a in variable(alerts, "eventAlerts")}
    found = resources_of(alerts, "Microsoft.Insights/scheduledQueryRules")
    (event,) = found["eventRules"]["properties"]["criteria"]["allOf"]
    assert accessor(event["query"]) == "alert.query", "the event rules no longer run their own `query`"
    (tick,) = found["missingTickRule"]["properties"]["criteria"]["allOf"]
    out["missing-tick"] = tick["query"]
    return out


def doc_queries() -> list[tuple[str, str]]:
    """Every KQL query in the guides: each ```kusto block, split at blank lines."""
    out = []
    for path in sorted((REPO / "docs").glob("*.md")):
        for block in _BLOCK.findall(path.read_text()):
            out += [(path.name, q) for q in re.split(r"\n\s*\n", block) if q.strip()]
    return out


def rows(lines: list[str]) -> list[kql.Row]:
    return [kql.Row(line) for line in lines]


def by_filer(result: list[dict[str, Any]] | None) -> dict[str, int]:
    assert result is not None, "an alert query must end in a summarize the rule can measure"
    return {r["filer"]: r["events"] for r in result}


def check_matches_the_lines(query: str, lines: list[str]) -> list[str]:
    """What is wrong with a query against the lines the app logs (empty: nothing)."""
    problems = []
    if "filer=" in query or "extract(" in query:
        problems.append("parses `filer=` text: the lines are an event name and JSON (use parse_json)")
    for literal in kql.literals(query):
        if literal.startswith("VFXTDR_") and literal.rstrip(" ") not in KNOWN:
            problems.append(f"{literal!r} is no event the app logs")
    prefixes = kql.prefixes(query)
    for prefix in prefixes:
        if prefix.startswith("VFXTDR_") and not prefix.endswith(" "):
            problems.append(f"{prefix!r} has no space after the name: it matches any longer name too")
    matched = [line for line in lines if any(line.startswith(p) for p in prefixes)]
    events = {p.rstrip(" ") for p in prefixes}
    if not matched and not events <= {services.TLS_UNVERIFIED}:
        problems.append(f"matches no line the app logs (prefixes {prefixes})")
    used = kql.fields_used(query)
    if used and kql.PARSE_STAGE not in kql.stages(query):
        problems.append(f"reads {sorted(used)} without parsing the JSON after the event name")
    parsed = [fields for line in matched if (p := signals.parse(line)) for fields in [p[1]]]
    for name in sorted(used):
        if not any(name in fields for fields in parsed):
            problems.append(f"reads field {name!r}, which no line it matches carries")
    try:
        kql.run(query, rows(lines))
    except kql.Unsupported as err:
        problems.append(f"uses KQL the check does not know: {err}")
    return problems


def test_the_lines_are_what_signals_formats_and_nothing_else(lines: list[str]) -> None:
    # traces.message is the formatted text: the event name, one space, JSON; parse() reads every line back.
    parsed = [signals.parse(line) for line in lines]
    assert all(parsed), lines
    assert [p[0] for p in parsed if p] == [
        *[signals.FILER_STATUS, signals.FILER_STATUS, signals.RPO_BREACH, signals.FILER_STATUS, signals.TICK],
        signals.NEEDS_ATTENTION,
        signals.DRILL_FAILED,
    ]


def test_the_needs_attention_rule_fires_for_the_filer_left_removed_and_stays_open_every_tick(
    rules: dict[str, str], lines: list[str]
) -> None:
    assert check_matches_the_lines(rules["needs-attention"], lines) == []
    # the marked line and the tick's status line of that filer; never a filer that is fine
    assert by_filer(kql.run(rules["needs-attention"], rows(lines))) == {"c1/stuck": 2}
    later_tick = [line for line in lines if not line.startswith(signals.NEEDS_ATTENTION)]
    assert by_filer(kql.run(rules["needs-attention"], rows(later_tick))) == {"c1/stuck": 1}


def test_the_rpo_rule_fires_for_the_filer_past_its_target_only(rules: dict[str, str], lines: list[str]) -> None:
    assert check_matches_the_lines(rules["rpo-breach"], lines) == []
    assert by_filer(kql.run(rules["rpo-breach"], rows(lines))) == {"c1/late": 1}
    sampled = [kql.Row(line, 3 if line.startswith(signals.RPO_BREACH) else 1) for line in lines]
    assert by_filer(kql.run(rules["rpo-breach"], sampled)) == {"c1/late": 3}  # itemCount, if ever sampled


def test_the_drill_rule_fires_for_the_failed_drill(rules: dict[str, str], lines: list[str]) -> None:
    assert check_matches_the_lines(rules["drill-failed"], lines) == []
    assert by_filer(kql.run(rules["drill-failed"], rows(lines))) == {"c1/ok": 1}


def test_the_missing_tick_rule_counts_heartbeats_only(rules: dict[str, str], lines: list[str]) -> None:
    assert check_matches_the_lines(rules["missing-tick"], lines) == []
    assert kql.run(rules["missing-tick"], rows(lines)) == [{"ticks": 1}]
    silent = [line for line in lines if not line.startswith(signals.TICK)]
    assert kql.run(rules["missing-tick"], rows(silent)) == [{"ticks": 0}]  # LessThan 1: fires


def test_every_rule_is_checked(rules: dict[str, str]) -> None:
    assert set(rules) == {"needs-attention", "rpo-breach", "drill-failed", "missing-tick"}


@pytest.mark.parametrize(("doc", "query"), doc_queries(), ids=lambda v: v if v.endswith(".md") else "q")
def test_every_query_in_the_guides_matches_the_lines(doc: str, query: str, lines: list[str]) -> None:
    assert check_matches_the_lines(query, lines) == [], query


def test_the_check_catches_drift(lines: list[str]) -> None:
    """The check fails the queries it exists to catch: `filer=` text, a renamed event, a name without its space,
    a field the lines do not carry."""
    old = 'traces | where message startswith_cs "VFXTDR_RPO_BREACH "\n'
    old += '| extend filer = extract(@"filer=(\\S+)", 1, message)'
    assert any("filer=" in p for p in check_matches_the_lines(old, lines))
    renamed = 'traces | where message startswith_cs "VFXTDR_RPO_BREACHED " | count'
    assert any("no event" in p for p in check_matches_the_lines(renamed, lines))
    bare = 'traces | where message startswith_cs "VFXTDR_TICK" | count'
    assert any("no space" in p for p in check_matches_the_lines(bare, lines))
    typo = (
        'traces | where message startswith_cs "VFXTDR_FILER_STATUS "\n'
        f"| {kql.PARSE_STAGE}\n| summarize n = sum(itemCount) by filer = tostring(f.filer_key)"
    )
    assert any("filer_key" in p for p in check_matches_the_lines(typo, lines))
    assert doc_queries(), "no ```kusto block found in docs/"
