"""Mass-delete approval is a table: only an explicit JSON true for this run's reference approves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.runbook.approval import decide

REF = "job-1/approval-7"
GOOD = {"approve": True, "approval_ref": REF}

REJECTED: list[Any] = [
    None,
    "",
    {},
    "0",
    0,
    1,
    [],
    "true",
    True,
    "yes",
    "approve",
    '"true"',
    {"approve": "false"},
    {"approve": "true"},
    {"approve": 1},
    {"approve": False},
    '{ "approve": false }',
    {"approve": True},
    {"approve": True, "approval_ref": "other"},
    {"approve": True, "approval_ref": None},
    {"approval_ref": REF},
    {"approve": [True], "approval_ref": REF},
    json.dumps({"approve": "true", "approval_ref": REF}),
    json.dumps(json.dumps(json.dumps(GOOD))),  # three encodings: more than the SDK ever adds
    "not json {",
]


@pytest.mark.parametrize("payload", REJECTED, ids=repr)
def test_everything_but_an_explicit_true_for_this_run_rejects(payload: Any) -> None:
    decision = decide(payload, REF)
    assert decision.approved is False
    assert decision.reason and decision.reason != "approved"
    assert decision.received  # the run says what it received


@pytest.mark.parametrize(
    "payload", [GOOD, json.dumps(GOOD), json.dumps(json.dumps(GOOD))], ids=["object", "json", "json-twice"]
)
def test_an_explicit_true_with_the_reference_approves(payload: Any) -> None:
    decision = decide(payload, REF)
    assert decision.approved is True
    assert decision.reason == "approved"


def test_no_reference_on_the_run_means_no_approval() -> None:
    assert decide(GOOD, None).approved is False
    assert decide(GOOD, "").approved is False


def test_the_approver_is_carried_when_the_route_supplies_it() -> None:
    assert decide({**GOOD, "by": "alice@contoso"}, REF).decided_by == "alice@contoso"
    assert decide({**GOOD, "by": 42}, REF).decided_by == ""


def test_what_it_received_is_short() -> None:
    decision = decide({"approve": False, "note": "x" * 5000}, REF)
    assert len(decision.received) <= 200
