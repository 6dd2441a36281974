"""Durable payloads as today's history holds them, and as runs started before the move of shared/ into packages
hold them (envelopes naming `shared.workflow`, ...): each decodes to the same values, and such a run replays."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.functions._durable_functions import df_loads

from shared.core.codec import JsonRecord, RecordError, decode
from shared.runbook.failover_payloads import BackupPageCheck, FailoverChoice, FailoverRequest
from shared.runbook.payloads import FORMER_MODULES, FilerRef
from tests.unit.capture_fixtures import _activity_inputs

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected-2f032a3.json").read_text())
TODAY = json.loads((DATA / "history-2f032a3.json").read_text())
BEFORE_MOVE = json.loads((DATA / "history-before-move-6233bc6.json").read_text())
INPUTS = _activity_inputs()


@pytest.fixture(scope="module", autouse=True)
def _app() -> None:
    import function_app  # noqa: F401 - registers the former module paths, as the worker's import does


def _class(module: str, name: str) -> type[JsonRecord]:
    kind: type[JsonRecord] = getattr(importlib.import_module(module), name)
    return kind


def _envelope(text: str) -> dict[str, Any] | None:
    value = json.loads(text)
    return value if isinstance(value, dict) and "__class__" in value else None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # loose mode announces its own deprecation
@pytest.mark.parametrize("n", [n for n, item in enumerate(TODAY) if item.get("Result")])
def test_todays_results_decode_to_the_same_values(n: int) -> None:
    envelope = _envelope(TODAY[n]["Result"])
    if envelope is None:  # a plain dict (complete_backup's entry) or null
        return
    kind = _class(envelope["__module__"], envelope["__class__"])
    expected = EXPECTED[f"history-2f032a3.json[{n}].Result"]
    assert repr(decode(kind, TODAY[n]["Result"])) == expected  # the text, as the activity wrote it
    assert repr(df_loads(TODAY[n]["Result"], expected_type=kind)) == expected  # as the SDK replays it
    assert json.loads(json.dumps(decode(kind, envelope).to_json())) == envelope["__data__"]


@pytest.mark.parametrize("n", [n for n, item in enumerate(TODAY) if item.get("Input")])
def test_todays_inputs_decode_to_the_same_values(n: int) -> None:
    item = TODAY[n]
    kind = INPUTS[item.get("name") or item["orchestrator"]]
    # Orchestration inputs arrive as JSON text holding the JSON text of the payload: decode reads both.
    assert repr(decode(kind, item["Input"])) == EXPECTED[f"history-2f032a3.json[{n}].Input"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("n", range(len(BEFORE_MOVE)))
def test_envelopes_naming_modules_before_the_move_decode_to_the_moved_classes(n: int) -> None:
    text = BEFORE_MOVE[n]["Result"]
    old = json.loads(text)["__module__"]
    expected = EXPECTED[f"history-before-move-6233bc6.json[{n}].Result"]
    value = df_loads(text)  # loose mode: the class is looked up by its module path in sys.modules
    assert repr(value) == expected
    assert type(value).__module__ == FORMER_MODULES.get(old, old)
    assert repr(df_loads(text, expected_type=type(value))) == expected  # with the activity's return type
    assert repr(decode(type(value), text)) == expected


def test_every_former_module_path_resolves() -> None:
    for old, new in FORMER_MODULES.items():
        module = sys.modules[old]
        target = importlib.import_module(new)
        records = [v for v in vars(target).values()
                   if isinstance(v, type) and issubclass(v, JsonRecord) and v.__module__ == new]
        assert records and all(getattr(module, r.__name__) is r for r in records), old


def test_a_run_started_before_the_move_replays() -> None:
    """The history of a failover started on the old code: choose_backup's result names shared.workflow_failover.
    The orchestrator replays it into a FailoverChoice and goes on to verify the backup's manifest pages."""
    import function_app
    from devstack.durable import protocol as p
    from devstack.durable.functions import Registry

    handle = Registry.load(function_app.app).orchestrators["failover_orchestrator"]
    started = next(i for i in TODAY if i.get("orchestrator") == "failover_orchestrator"
                   and i["event"] == "ExecutionStarted")
    chosen = next(i for i in BEFORE_MOVE if i["name"] == "choose_backup")
    assert json.loads(chosen["Result"])["__module__"] == "shared.workflow_failover"
    t0 = 1_796_530_400.0
    history = [
        {**p.event(p.ORCHESTRATOR_STARTED, t0), "IsPlayed": True},
        {**p.execution_started(t0, "failover_orchestrator", "failover-primary-demo-filer", "e1",
                               started["Input"]), "IsPlayed": True},
        {**p.event(p.TASK_SCHEDULED, t0, 0, Name="choose_backup", Input=None), "IsPlayed": True},
        {**p.event(p.ORCHESTRATOR_COMPLETED, t0), "IsPlayed": True},
        p.event(p.ORCHESTRATOR_STARTED, t0 + 5),
        p.event(p.TASK_COMPLETED, t0 + 5, TaskScheduledId=0, Result=chosen["Result"]),
    ]
    body = p.context_json(history, "failover-primary-demo-filer", None, json.loads(started["Input"]))
    state = p.parse_state(handle(body), None)
    assert state.error is None and not state.done, state.error
    choice = FailoverChoice.from_json(json.loads(chosen["Result"])["__data__"])
    assert state.custom_status["step"] == "chosen" and state.custom_status["backup_id"] == choice.backup_id
    verify = [a for a in state.actions if a.get("functionName") == "verify_backup_page"]
    assert [json.loads(a["input"])["page"] for a in verify] == [0, 1, 2, 3]
    assert all(json.loads(a["input"])["choice"]["backup_id"] == choice.backup_id for a in verify)


# --- payloads with every optional field set, as today's classes wrote them ------------------------------------
BUILT = json.loads((DATA / "built-2f032a3-payloads.json").read_text())


@pytest.mark.parametrize("item", BUILT, ids=[i["class"].rsplit(":", 1)[1] for i in BUILT])
def test_every_payload_class_reads_todays_json_into_the_same_values(item: dict[str, Any]) -> None:
    kind = _class(*item["class"].split(":"))
    value = kind.from_json(item["json"])
    assert repr(value) == item["repr"]
    assert json.loads(json.dumps(value.to_json())) == item["json"]


def test_decode_takes_the_forms_a_payload_arrives_in_and_refuses_the_rest() -> None:
    ref = FilerRef("c1", "f1")
    text = json.dumps(ref.to_json())
    assert decode(FilerRef, text.encode()) == ref
    assert decode(FilerRef, json.dumps(text)) == ref  # text holding text: the raise_event quirk
    envelope = {"__class__": "FilerRef", "__module__": "shared.workflow", "__data__": ref.to_json()}
    assert decode(FilerRef, envelope) == ref  # the class is named; the module path may be a former one
    with pytest.raises(TypeError, match=r"expected a FilerRef payload, got the envelope of .*FailoverRequest"):
        decode(FilerRef, {**envelope, "__class__": "FailoverRequest"})
    with pytest.raises(TypeError, match="expected a FailoverRequest payload, got list"):
        decode(FailoverRequest, [1])
    with pytest.raises(RecordError, match=r"BackupPageCheck\.page must be int, got str"):
        decode(BackupPageCheck, {"page": "1", "checked": 0, "mismatches": 0, "missing": 0, "last": True})
