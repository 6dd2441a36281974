"""Durable payloads as the history of earlier versions holds them (tests/unit/runbook/data: commit 2f032a3, and the
envelopes of runs started before the move of shared/ into packages, naming `shared.workflow`, ...).

Results of the classes this version still reads decode to the same values. Every *input* of those versions
carried plan parts (or, for orchestrations, no input format): each is refused saying it is an earlier version's,
so a run started before the upgrade stops at its next step, schedules nothing, and no activity acts on a plan
part an input carries (docs/architecture.md, "Upgrades and runs in flight")."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.functions._durable_functions import df_loads

from shared.core.codec import JsonRecord, RecordError, decode
from shared.core.errors import InputRefused
from shared.runbook.failover_payloads import BackupPageCheck, FailoverRequest
from shared.runbook.payloads import FORMER_MODULES, FilerRef
from shared.runbook.refs import Ref
from tests.unit.capture_fixtures import _activity_inputs

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected-2f032a3.json").read_text())
TODAY = json.loads((DATA / "history-2f032a3.json").read_text())
BEFORE_MOVE = json.loads((DATA / "history-before-move-6233bc6.json").read_text())
INPUTS = _activity_inputs()
# Results whose class changed shape when inputs became references (format 2): they lost the plan parts they
# carried (Preflight, ReaddPlan: the RunContext; FailoverChoice: context, cluster, record and key). A run of an
# earlier version never replays up to them: its input is refused first.
RESHAPED = {"Preflight", "ReaddPlan", "FailoverChoice"}
# Output classes that gained fields with defaults since (a failover's RPO, RTO and check): what 2f032a3 wrote
# reads the same, the new fields at their defaults.
EXTENDED = {"FailoverResult"}
# Input classes of 2f032a3 that no longer exist: each became a reference (RunRef, RunStep, CopyRef, ...).
RETIRED = {
    "BeginBackup",
    "FilerStep",
    "MarkRemoved",
    "AttachRequest",
    "CopyPageRequest",
    "CopyFinish",
    "Attention",
    "MarkAttached",
    "VerifyBackupPage",
    "RecordFailover",
}


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
def test_results_decode_to_the_same_values(n: int) -> None:
    envelope = _envelope(TODAY[n]["Result"])
    if envelope is None or envelope["__class__"] in RESHAPED:  # a plain dict (complete_backup's entry) or null
        return
    kind = _class(envelope["__module__"], envelope["__class__"])
    expected = EXPECTED[f"history-2f032a3.json[{n}].Result"]
    assert repr(decode(kind, TODAY[n]["Result"])) == expected  # the text, as the activity wrote it
    assert repr(df_loads(TODAY[n]["Result"], expected_type=kind)) == expected  # as the SDK replays it
    assert json.loads(json.dumps(decode(kind, envelope).to_json())) == envelope["__data__"]


@pytest.mark.parametrize("n", [n for n, item in enumerate(TODAY) if item.get("Input")])
def test_inputs_of_earlier_versions_are_refused_saying_so(n: int) -> None:
    item = TODAY[n]
    name = item.get("name") or item["orchestrator"]
    kind = INPUTS[name]
    assert issubclass(kind, Ref), name
    # Orchestration inputs arrive as JSON text holding the JSON text of the payload: decode reads both.
    with pytest.raises(InputRefused, match="an earlier version of this app") as refused:
        decode(kind, item["Input"])
    assert "nothing changed" in str(refused.value), name


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("n", range(len(BEFORE_MOVE)))
def test_envelopes_naming_modules_before_the_move_decode_to_the_moved_classes(n: int) -> None:
    text = BEFORE_MOVE[n]["Result"]
    old = json.loads(text)["__module__"]
    if json.loads(text)["__class__"] in RESHAPED:
        return
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
        records = [
            v
            for v in vars(target).values()
            if isinstance(v, type) and issubclass(v, JsonRecord) and v.__module__ == new
        ]
        assert records and all(getattr(module, r.__name__) is r for r in records), old


def _legacy_history(orchestrator: str) -> tuple[str, Any]:
    """(instance id, input) of a run of that orchestrator as an earlier version started it."""
    if orchestrator == "readd_orchestrator":  # none in the captured history: the same shape, without a format
        return "readd-primary-demo-filer", {"cluster": "primary", "filer": "demo-filer"}
    started = next(i for i in TODAY if i.get("orchestrator") == orchestrator and i["event"] == "ExecutionStarted")
    return f"{orchestrator.split('_', maxsplit=1)[0]}-primary-demo-filer", json.loads(started["Input"])


@pytest.mark.parametrize(
    "orchestrator", ["backup_orchestrator", "copy_orchestrator", "failover_orchestrator", "readd_orchestrator"]
)
def test_a_run_of_an_earlier_version_stops_at_its_next_step_and_schedules_nothing(orchestrator: str) -> None:
    """The history of a run started on the earlier code, with an activity it scheduled completed: replayed by
    this version, the orchestrator stops with an error naming the upgrade, before any action (a scheduled
    action would be a changed action: non-deterministic)."""
    import function_app
    from devstack.durable import protocol as p
    from devstack.durable.functions import Registry

    handle = Registry.load(function_app.app).orchestrators[orchestrator]
    instance, value = _legacy_history(orchestrator)
    t0 = 1_796_530_400.0
    history = [
        {**p.event(p.ORCHESTRATOR_STARTED, t0), "IsPlayed": True},
        {**p.execution_started(t0, orchestrator, instance, "e1", json.dumps(value)), "IsPlayed": True},
        {**p.event(p.TASK_SCHEDULED, t0, 0, Name="some_step", Input=None), "IsPlayed": True},
        {**p.event(p.ORCHESTRATOR_COMPLETED, t0), "IsPlayed": True},
        p.event(p.ORCHESTRATOR_STARTED, t0 + 5),
        p.event(p.TASK_COMPLETED, t0 + 5, TaskScheduledId=0, Result="null"),
    ]
    try:
        state = p.parse_state(handle(p.context_json(history, instance, None, value)), None)
    except Exception as raised:  # a failing orchestrator raises, its state after `$OutOfProcData$:`
        state = p.parse_state(None, raised)
    assert state.error is not None and "an earlier version of this app" in state.error, state.error
    assert f"run {instance} refused its input" in state.error
    assert not state.actions or state.actions == [[]], state.actions


# --- payloads with every optional field set, as the classes of 2f032a3 wrote them -----------------------------
BUILT = json.loads((DATA / "built-2f032a3-payloads.json").read_text())


@pytest.mark.parametrize("item", BUILT, ids=[i["class"].rsplit(":", 1)[1] for i in BUILT])
def test_every_payload_class_of_2f032a3_reads_the_same_or_is_refused_as_an_input(item: dict[str, Any]) -> None:
    module, name = item["class"].split(":")
    if name in RETIRED:
        assert not hasattr(importlib.import_module(module), name)
        return
    kind = _class(module, name)
    if issubclass(kind, Ref):  # an input then: it carried plan parts, or has no format
        with pytest.raises(InputRefused, match="an earlier version of this app"):
            kind.from_json(item["json"])
        return
    if name in RESHAPED:
        return
    value = kind.from_json(item["json"])
    if name in EXTENDED:
        written = json.loads(json.dumps(value.to_json()))
        added = {f.name for f in dataclasses.fields(kind)} - set(item["json"])
        assert added and {k: written[k] for k in item["json"]} == item["json"]
        assert all(getattr(value, f.name) == f.default for f in dataclasses.fields(kind) if f.name in added)
        return
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
