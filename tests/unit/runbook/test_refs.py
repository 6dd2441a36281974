"""Inputs are references: every orchestration and activity input class (read from the app's own registrations)
holds plan entity names and run state only, refuses a key no field names, refuses an earlier version's shape
saying so, and checks the names it carries."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest

from shared.blobcopy.model import PageCursor
from shared.core.codec import JsonRecord
from shared.core.errors import InputRefused
from shared.runbook.payloads import CopyTotals
from shared.runbook.refs import INPUT_FORMAT, Ref, RunRef, RunStart, StartInput
from tests.unit.capture_fixtures import _activity_inputs

# What an input may hold: names, ids, numbers, flags, and these records of run state.
RUN_STATE = (RunRef, PageCursor, CopyTotals)
# Field names that would say an input carries a plan part or a setting.
PLAN_WORDS = (
    "endpoint",
    "url",
    "account",
    "container",
    "secret",
    "key",
    "credential",
    "bucket",
    "server",
    "mode",
    "guard",
    "plan",
    "context",
    "job",
    "record",
    "cluster_config",
    "limit",
    "concurrency",
)


def _input_classes() -> dict[str, type[JsonRecord]]:
    return _activity_inputs()


def _leaves(kind: Any) -> list[Any]:
    """The types a field's annotation allows (Optional, tuples and nested tuples unwrapped)."""
    args = typing.get_args(kind)
    if not args:
        return [kind]
    return [leaf for arg in args if arg is not Ellipsis for leaf in _leaves(arg)]


def test_every_input_class_is_a_reference_of_names_and_run_state() -> None:
    inputs = _input_classes()
    orchestrations = {"backup_orchestrator", "copy_orchestrator", "readd_orchestrator", "failover_orchestrator"}
    assert orchestrations <= set(inputs) and len(inputs) > len(orchestrations) + 20
    for name, kind in inputs.items():
        assert issubclass(kind, Ref), f"{name}: {kind.__name__} is not a Ref"
        if name in orchestrations:
            assert issubclass(kind, StartInput), f"{name}: an orchestration input carries its format"
        for field in dataclasses.fields(kind):
            hints = typing.get_type_hints(kind)
            for leaf in _leaves(hints[field.name]):
                assert leaf in (str, int, float, bool, type(None)) or leaf in RUN_STATE, (
                    f"{kind.__name__}.{field.name} holds {leaf}: not a name or run state"
                )
            if field.name not in ("backup_id", "job_id", "approval_ref", "activity_ids"):
                assert not any(word in field.name for word in PLAN_WORDS), f"{kind.__name__}.{field.name}"


@pytest.mark.parametrize(
    "kind", sorted(set(_activity_inputs().values()), key=lambda k: k.__name__), ids=lambda k: k.__name__
)
def test_a_key_no_field_names_or_an_earlier_shape_is_refused(kind: type[Ref]) -> None:
    data = {"whatever": 1, **({"format": INPUT_FORMAT} if issubclass(kind, StartInput) else {})}
    with pytest.raises(InputRefused):
        kind.from_json(data)
    for old in ({"context": {}}, {"job": {}}, {"choice": {}}, {"keyvault_url": "https://x"}):
        with pytest.raises(InputRefused, match="an earlier version of this app"):
            kind.from_json({**data, **old})


def test_orchestration_inputs_need_this_format() -> None:
    from shared.runbook.payloads import BackupRequest

    assert BackupRequest.from_json({"cluster": "c", "filer": "f", "format": 2}) == BackupRequest("c", "f")
    with pytest.raises(InputRefused, match="without a format"):
        BackupRequest.from_json({"cluster": "c", "filer": "f"})
    with pytest.raises(InputRefused, match="format '3': this version reads format 2 only"):
        BackupRequest.from_json({"cluster": "c", "filer": "f", "format": 3})


@pytest.mark.parametrize(
    "bad",
    [
        {"cluster": "", "filer": "f", "instance_id": "i", "run_id": "r"},
        {"cluster": "c/d", "filer": "f", "instance_id": "i", "run_id": "r"},
        {"cluster": "c", "filer": "..", "instance_id": "i", "run_id": "r"},
        {"cluster": "c", "filer": "f", "instance_id": "i/../j", "run_id": "r"},
        {"cluster": "c", "filer": "f", "instance_id": "i", "run_id": "r" * 81},
        {"cluster": "c", "filer": "f", "instance_id": "i\n", "run_id": "r"},
    ],
)
def test_names_travel_into_catalog_paths_only_when_they_are_one_plain_segment(bad: dict[str, str]) -> None:
    with pytest.raises(InputRefused, match=r"is not an? (name|id)"):
        RunRef.from_json(bad)


def test_run_start_names_a_known_workflow_and_reason() -> None:
    run = {"cluster": "c", "filer": "f", "instance_id": "backup-c-f", "run_id": "r1"}
    assert RunStart.from_json({"run": run, "kind": "backup"}).run == RunRef("c", "f", "backup-c-f", "r1")
    with pytest.raises(InputRefused, match="run kind 'drop' is not one of"):
        RunStart.from_json({"run": run, "kind": "drop"})
    with pytest.raises(InputRefused, match="run reason 'x' is not one of manual, schedule"):
        RunStart.from_json({"run": run, "kind": "backup", "reason": "x"})


def test_instance_ids_may_hold_the_run_id_separator_and_a_readd_may_lift_a_fence() -> None:
    run = {"cluster": "c", "filer": "f", "instance_id": "readd~c~f", "run_id": "r1"}
    assert RunRef.from_json(run).instance_id == "readd~c~f"
    with pytest.raises(InputRefused, match="is not a name"):
        RunRef.from_json({**run, "cluster": "c~d"})  # a plan name never holds it
    assert RunStart.from_json({"run": run, "kind": "readd", "reason": "lift_fence"}).reason == "lift_fence"
    with pytest.raises(InputRefused, match="is not one of manual, schedule"):
        RunStart.from_json({"run": run, "kind": "backup", "reason": "lift_fence"})
