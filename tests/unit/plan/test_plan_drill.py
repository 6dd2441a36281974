"""The plan's drill settings: the probe, sample size and parallelism at both levels, drill schedules, and the
container prefix drills reserve."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.plan.cli import EXAMPLE
from shared.plan.drill import DEFAULT_MAX_PARALLEL, DEFAULT_SAMPLE_SIZE, Probe
from shared.plan.load import PlanError, parse_plan


def example() -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data.pop("drill")
    for f in data["filers"]:
        f.pop("drill_schedule", None)
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    return list(err.value.problems)


PROBE = {"url": "https://probe.internal.example/read", "key_secret": "probe-key"}


def test_drills_are_off_until_the_plan_says_otherwise() -> None:
    plan = parse_plan(example())
    filer = plan.filers[0]
    assert plan.drill is None and filer.drill is None and filer.drill_schedule is None
    assert plan.drill_probe(filer) == (None, DEFAULT_SAMPLE_SIZE)
    assert plan.drill_parallel() == DEFAULT_MAX_PARALLEL
    assert "drill" not in plan.to_json() and "drill_schedule" not in filer.to_json()


def test_a_filers_drill_settings_override_the_plans() -> None:
    data = example()
    data["drill"] = {"probe": PROBE, "sample_size": 5, "max_parallel": 3}
    data["filers"][0]["drill"] = {"probe": {**PROBE, "url": "https://other.example/read", "timeout_seconds": 60}}
    data["filers"][1]["drill"] = {"sample_size": 50}
    data["filers"][1]["drill_schedule"] = "0 30 3 * * sat"
    plan = parse_plan(data)
    first, second = plan.filers
    assert plan.drill_probe(first) == (Probe("https://other.example/read", "probe-key", None, 60.0), 5)
    assert plan.drill_probe(second) == (Probe(PROBE["url"], "probe-key"), 50)
    assert plan.drill_parallel() == 3 and second.drill_schedule == "0 30 3 * * sat"
    assert parse_plan(plan.to_json()) == plan


def test_bad_drill_settings_are_named() -> None:
    data = example()
    data["drill"] = {
        "probe": {"url": "http://probe.example/read?code=abc", "key_secret": "not a name"},
        "sample_size": 0,
        "max_parallel": 21,
    }
    data["filers"][0]["drill"] = {"max_parallel": 2}
    data["filers"][0]["drill_schedule"] = "every sunday"
    found = problems(data)
    for expected in (
        "drill.probe.url",
        "drill.probe.key_secret",
        "drill.sample_size",
        "drill.max_parallel",
        "filers[0].drill.max_parallel",
        "filers[0].drill_schedule",
    ):
        assert any(p.startswith(expected + ":") for p in found), (expected, found)
    assert not any("abc" in p for p in found)  # a query string is never echoed


def test_plain_http_probe_only_on_loopback() -> None:
    data = example()
    data["drill"] = {"probe": {**PROBE, "url": "http://127.0.0.1:9999/read"}}
    assert parse_plan(data).drill is not None
    data["drill"] = {"probe": {**PROBE, "url": "http://probe.example/read"}}
    assert any("must use https" in p for p in problems(data))


def test_the_drill_prefix_is_reserved_in_backup_accounts() -> None:
    data = example()
    data["filers"][0]["backup"]["containers"] = ["drill-projects-a", "projects-b"]
    assert any("'drill-projects-a'" in p and "reserved for drills" in p for p in problems(data))
    data = example()
    data["catalog_container"] = "drill-catalog"
    assert any(p.startswith("catalog_container:") and "reserved" in p for p in problems(data))
