"""The app indexes as the worker and host would (offline check), its health probe, host.json and settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import azure.functions as func
import pytest

from shared.plan.cli import EXAMPLE
from tests.paths import REPO
from tools.indexcheck import check_app, parse_route

# fixture module -> (the problem it must produce, how many findings in all)
DEFECTS = {
    "no_app": ("app: tests.unit.app.index_apps.no_app defines no top-level FunctionApp/DFApp instances", 1),
    "two_apps": ("app: tests.unit.app.index_apps.two_apps defines 2 top-level FunctionApp/DFApp instances", 1),
    "import_error": (
        "app: importing tests.unit.app.index_apps.import_error failed: KeyError: \"Can not parse '['FETCH']'",
        1,
    ),
    "param_mismatch": ("copy_page: bindings ['job'] have no Python parameter of that name", 2),
    "out_not_annotated": (
        "enqueue: binding 'msg' is an output binding but its annotation is not azure.functions.Out[...]",
        1,
    ),
    "wrong_annotation": (
        "nightly: binding 'timer' of type 'timerTrigger' does not accept the annotation HttpRequest",
        1,
    ),
    "bad_return": ("status: the return annotation dict does not match the 'http' output binding", 1),
    "context_param": ("who: parameter 'context' must be azure.functions.Context", 1),
    "no_trigger": ("lonely: Function lonely does not have a trigger", 1),
    "bad_route": ("item: route 'items/{id': unbalanced braces", 1),
    "route_param_missing": (
        "filer: reads route parameters ['filer'] that route 'filers/{cluster}' does not declare",
        1,
    ),
    "route_conflict": ("get_backup_by_name: route 'backups/{name}' (GET) is also served by get_backup", 1),
    "empty_methods": ("nothing: methods is an empty list", 1),
    "bad_schedule": ("nightly: schedule is not NCRONTAB the host accepts: hour field '25'", 1),
    "sunday_seven": ("weekly: schedule is not NCRONTAB the host accepts: day-of-week field '7'", 1),
    "unset_setting": (
        "nightly: schedule '%VFXTDR_INDEXCHECK_UNSET_SCHEDULE%' names app setting "
        "VFXTDR_INDEXCHECK_UNSET_SCHEDULE, which is not set",
        1,
    ),
    "run_on_startup": ("nightly: run_on_startup fires on every start and scale-out", 1),
    "duplicate_names": ("backup: 2 functions share this name", 2),
    "unknown_activity": (
        "backup: line 10: call_activity('copy_pgae') names no registered activityTrigger "
        "function (registered: copy_page)",
        1,
    ),
    "builder_name": ("backup: line 15: call_activity('copy_page_impl') names no registered activityTrigger", 1),
}


def test_the_real_app_indexes() -> None:
    assert check_app("function_app") == []


def test_every_fixture_app_is_covered() -> None:
    modules = {p.stem for p in (REPO / "tests" / "unit" / "app" / "index_apps").glob("*.py")} - {"__init__", "ok_app"}
    assert modules == set(DEFECTS)


def test_a_healthy_app_with_every_kind_of_function_passes() -> None:
    assert check_app("tests.unit.app.index_apps.ok_app", settings={"OK_APP_SCHEDULE": "0 0 2 * * *"}) == []


@pytest.mark.parametrize("module", sorted(DEFECTS))
def test_each_defect_is_caught(module: str) -> None:
    expected, count = DEFECTS[module]
    findings = [str(f) for f in check_app(f"tests.unit.app.index_apps.{module}", settings={})]
    assert any(f.startswith(expected) for f in findings), findings
    assert len(findings) == count, findings


def test_a_setting_schedule_is_checked_with_its_value() -> None:
    findings = check_app("tests.unit.app.index_apps.ok_app", settings={"OK_APP_SCHEDULE": "0 0 2 * * 7"})
    assert [str(f) for f in findings] == [
        "nightly: schedule is not NCRONTAB the host accepts: day-of-week field '7': 7 is outside 0-6 (the "
        "Functions host reads Sunday as 0 or sun only)"
    ]


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("health", []),
        ("backups/{cluster}/{filer}", ["cluster", "filer"]),
        ("items/{id:int:min(1)}/{*rest}", ["id", "rest"]),
        ("files/{name?}", ["name"]),
        ("files/{name=latest}", ["name"]),
        ("v{version:regex(^\\d$)}/status", ["version"]),
        ("literal/{{braces}}", []),
    ],
)
def test_route_templates_that_parse(route: str, params: list[str]) -> None:
    assert parse_route(route) == (params, [])


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ("/health", "must not start with '/'"),
        ("a//b", "empty segment"),
        ("items/{id", "unbalanced braces"),
        ("items/id}", "unbalanced braces"),
        ("items/{}", "{} is not a valid parameter"),
        ("items/{1d}", "{1d} is not a valid parameter"),
        ("items/{id:integer}", "unknown constraint 'integer'"),
        ("items/{*rest}/more", "{*rest} may only be in the last segment"),
        ("items/{id?}/more", "{id?} may only be in the last segment"),
        ("a/{id}/b/{ID}", "parameter 'ID' appears twice"),
        ("search?q", "'?' is only allowed inside a parameter"),
    ],
)
def test_route_templates_that_do_not(route: str, problem: str) -> None:
    _, problems = parse_route(route)
    assert len(problems) == 1
    assert problem in problems[0]


def test_command_line_exit_codes() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "tools.indexcheck"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert re.match(r"index OK: \d+ functions \(.*health.*\)", ok.stdout)
    bad = subprocess.run(
        [sys.executable, "-m", "tools.indexcheck", "tests.unit.app.index_apps.bad_route"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout.splitlines() == [
        "item: route 'items/{id': unbalanced braces in segment '{id'",
        "index check failed: 1 problem",
    ]


# --- the health probe ---------------------------------------------------------------------------------------


def _health(monkeypatch: pytest.MonkeyPatch, plan: str | None) -> dict:
    from triggers.health import health

    monkeypatch.delenv("VFXTDR_PLAN_FILE", raising=False)
    if plan is None:
        monkeypatch.delenv("VFXTDR_PLAN", raising=False)
    else:
        monkeypatch.setenv("VFXTDR_PLAN", plan)
    response = health(func.HttpRequest(method="GET", url="/api/health", body=b""))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def test_health_reports_a_valid_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _health(monkeypatch, json.dumps(EXAMPLE)) == {"status": "ok", "plan": "valid"}


def test_health_says_where_a_plan_is_wrong_not_what(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plan = json.loads(json.dumps(EXAMPLE))
    plan["filers"][0]["source"]["key_secret"] = "P@ss+word/with=secret"
    plan["filers"][1]["backup"]["account"] = "Not-An-Account"
    answer = _health(monkeypatch, json.dumps(plan))
    assert answer["status"] == "ok"
    assert answer["plan"] == (
        "invalid: 2 problem(s) at filers[0].source.key_secret, "
        "filers[1].backup.account; run `python -m shared.plan validate`"
    )
    assert "P@ss" not in caplog.text
    assert "filers[1].backup.account: must be a storage account name" in caplog.text
    assert _health(monkeypatch, None)["plan"].startswith("invalid: 1 problem(s) at VFXTDR_PLAN")


def test_health_is_anonymous_get_under_api() -> None:
    import function_app
    from triggers.health import health

    trigger = health.build().get_trigger()
    assert trigger.route == "health"
    assert [m.name for m in trigger.methods] == ["GET"]
    assert trigger.auth_level.name == "ANONYMOUS"
    assert function_app.app.auth_level.name == "FUNCTION"
    # As the app registers it (its blueprint, built with the app's default level).
    (served,) = [
        f
        for f in (b.build(function_app.app.auth_level) for b in function_app.app._function_builders)
        if f.get_function_name() == "health"
    ]
    assert (served.get_trigger().route, served.get_trigger().auth_level.name) == ("health", "ANONYMOUS")


# --- host.json and settings ---------------------------------------------------------------------------------


def test_host_json() -> None:
    host = json.loads((REPO / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["extensions"]["http"]["routePrefix"] == "api"
    durable = host["extensions"]["durableTask"]
    assert durable["hubName"] == "%VFXTDR_TASK_HUB%"
    assert 1 <= durable["maxConcurrentActivityFunctions"] <= 100
    assert 1 <= durable["maxConcurrentOrchestratorFunctions"] <= 100
    assert durable["tracing"]["traceInputsAndOutputs"] is False
    hours, minutes, seconds = (int(x) for x in host["functionTimeout"].split(":"))
    timeout = hours * 3600 + minutes * 60 + seconds
    # longer than legacy Consumption's cap, bounded so that a hung activity is noticed
    assert 10 * 60 < timeout <= 2 * 3600


def test_local_settings_example() -> None:
    settings = json.loads((REPO / "local.settings.example.json").read_text())
    values = settings["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert "AzureWebJobsStorage" in values
    # a task hub name: letters and digits, starting with a letter, 3-45 characters
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", values["VFXTDR_TASK_HUB"])
    assert ("VFXTDR_PLAN" in values) != ("VFXTDR_PLAN_FILE" in values)
    text = json.dumps(settings)
    for secret_marker in ("AccountKey=", "SharedAccessSignature", "sig=", "password"):
        assert secret_marker not in text
    assert (REPO / ".gitignore").read_text().splitlines().count("local.settings.json") == 1
