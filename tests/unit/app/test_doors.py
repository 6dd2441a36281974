"""The doors' shared rules (no stack): function keys on every route but health, the app's own run URLs in every
202, the caller's identity, and a start the engine refuses read as a conflict."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from tests.paths import REPO
from triggers.common import caller, is_start_conflict, run_url, started

SYSTEM_KEY_HINTS = ("code=", "runtime/webhooks", "durabletask")


def _routes() -> dict[tuple[str, str], str]:
    import function_app

    out = {}
    for builder in function_app.app._function_builders:
        fn = builder.build(function_app.app.auth_level)
        trigger = fn.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            for method in trigger.methods:
                out[(trigger.route, method.name)] = trigger.auth_level.name
    return out


# The routes that start or steer runs: each needs a function key.
CONTROL = {
    ("runs/{id}", "GET"),
    ("runs/{id}/cancel", "POST"),
    ("runs/{id}/approve-deletes", "POST"),
    ("backups/{cluster}/{filer}", "POST"),
    ("filers/{cluster}/{filer}/readd", "POST"),
    ("failovers/{cluster}/{filer}", "POST"),
}
# Anonymous at the function level: the probe, and the read views, which admit only a signed-in person
# (triggers/access.py); none of them starts or steers a run.
ANONYMOUS = {("health", "GET"), ("filers", "GET"), ("filers/{cluster}/{filer}", "GET"), ("status", "GET")}


def test_every_route_that_starts_or_steers_a_run_needs_a_function_key() -> None:
    routes = _routes()
    assert set(routes) >= CONTROL
    assert {r: routes[r] for r in CONTROL} == dict.fromkeys(CONTROL, "FUNCTION")
    assert {r for r, a in routes.items() if a != "FUNCTION"} <= ANONYMOUS


def _request(url: str, headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url=url, headers=headers or {}, body=b"")


def test_a_started_run_answers_the_apps_own_urls_and_no_key() -> None:
    req = _request("https://dr-app.azurewebsites.net/api/backups/prod/east-fs1?code=the-callers-own-key")
    reply = started(req, "backup~prod~east-fs1", cancellable=True)
    body = json.loads(reply.get_body())
    assert reply.status_code == 202
    assert body == {
        "id": "backup~prod~east-fs1",
        "statusUri": "https://dr-app.azurewebsites.net/api/runs/backup~prod~east-fs1",
        "cancelUri": "https://dr-app.azurewebsites.net/api/runs/backup~prod~east-fs1/cancel",
    }
    assert reply.headers["Location"] == body["statusUri"]
    text = reply.get_body().decode() + json.dumps(dict(reply.headers))
    assert "the-callers-own-key" not in text and not any(h in text for h in SYSTEM_KEY_HINTS)
    failover = json.loads(started(req, "failover~prod~east-fs1", cancellable=False).get_body())
    assert failover["cancelUri"] is None
    assert (
        run_url(_request("http://127.0.0.1:7071/api/x"), "readd~c~f", "cancel")
        == "http://127.0.0.1:7071/api/runs/readd~c~f/cancel"
    )


def test_the_caller_is_who_the_platform_names_and_nobody_else(monkeypatch: pytest.MonkeyPatch) -> None:
    named = _request("http://h/api/x", {"X-MS-CLIENT-PRINCIPAL-NAME": " ops@example.com "})
    for name in (
        "WEBSITE_SITE_NAME",
        "WEBSITE_INSTANCE_ID",
        "WEBSITE_OWNER_NAME",
        "WEBSITE_SKU",
        "WEBSITE_AUTH_ENABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    assert caller(named) == ""  # off App Service anyone could write the header: nobody is named
    monkeypatch.setenv("WEBSITE_SITE_NAME", "vfxtdr")
    assert caller(named) == ""  # on App Service without its authentication: the same
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    assert caller(named) == "ops@example.com"  # the platform set it, and drops a copy a client sends
    assert caller(_request("http://h/api/x")) == ""


# What the host answers (and the Python client raises as Exception(args[0] = that dict)) for a start on a live id.
HOST_CONFLICT = {
    "Message": "Something went wrong while processing your request",
    "ExceptionMessage": "An Orchestration instance with the status Running already exists.",
    "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
    "StackTrace": "   at ...",
}


@pytest.mark.parametrize(
    ("exc", "conflict"),
    [
        (Exception(HOST_CONFLICT), True),
        (
            Exception(
                {
                    **HOST_CONFLICT,
                    "ExceptionMessage": "An Orchestration instance with the status Pending already exists.",
                }
            ),
            True,
        ),
        (Exception({"ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"}), True),
        (Exception({"Message": "Something went wrong", "ExceptionMessage": "storage unavailable"}), False),
        (Exception("An Orchestration instance with the status Running already exists."), False),  # a 400's text
        (Exception(), False),
        (RuntimeError("boom"), False),
    ],
)
def test_a_start_conflict_is_the_hosts_already_exists_answer_only(exc: Exception, conflict: bool) -> None:
    assert is_start_conflict(exc) is conflict


def test_host_json_refuses_a_start_on_a_running_instance() -> None:
    durable = json.loads((REPO / "host.json").read_text())["extensions"]["durableTask"]
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
