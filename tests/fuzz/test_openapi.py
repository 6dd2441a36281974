"""docs/openapi.yaml cannot drift from the app: every HTTP route function_app registers is described (method,
path, function name as operationId, auth level), nothing else is, and the bodies it describes are the ones the
code builds (triggers/common.py `refuse`, the Durable client's check-status response; the status page, a page
for a person, refuses with HTML)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from devstack.durable.management import client_binding
from tests.fuzz.spec import Operation, app_routes, load_spec, operations, route_prefix, schema_problems
from triggers.common import Refusal, refuse

ERROR_REF = "#/components/schemas/Error"


def described() -> dict[tuple[str, str], Operation]:
    ops = operations()
    keys = [(op.method, op.path) for op in ops]
    assert len(set(keys)) == len(keys), f"an operation is described twice: {keys}"
    return dict(zip(keys, ops, strict=True))


def test_every_route_the_app_registers_is_described_and_no_other() -> None:
    routes = {(r.method, r.path): r for r in app_routes()}
    docs = described()
    missing = [str(routes[k]) for k in sorted(set(routes) - set(docs))]
    extra = [str(docs[k]) for k in sorted(set(docs) - set(routes))]
    assert not missing, f"function_app registers routes docs/openapi.yaml does not describe: {missing}"
    assert not extra, f"docs/openapi.yaml describes routes function_app does not register: {extra}"
    # The four routes of today, so that an app that fails to register its blueprints cannot pass vacuously.
    assert {
        ("POST", "/backups/{cluster}/{filer}"),
        ("POST", "/filers/{cluster}/{filer}/readd"),
        ("POST", "/failovers/{cluster}/{filer}"),
        ("GET", "/health"),
        ("GET", "/filers"),
        ("GET", "/filers/{cluster}/{filer}"),
        ("GET", "/status"),
    } <= set(routes)


def test_each_operation_names_its_function_and_its_auth_level() -> None:
    docs = described()
    spec = load_spec()
    schemes = spec["components"]["securitySchemes"]
    assert {(s["type"], s["in"], s["name"]) for s in schemes.values()} == {
        ("apiKey", "header", "x-functions-key"),
        ("apiKey", "query", "code"),
    }
    for route in app_routes():
        op = docs.get((route.method, route.path))
        if op is None:
            continue  # the test above names it
        assert op.operation_id == route.function, f"{op}: operationId must be the function name {route.function}"
        assert route.auth_level in ("ANONYMOUS", "FUNCTION"), f"{route}: describe the {route.auth_level} key"
        assert op.anonymous == (route.auth_level == "ANONYMOUS"), (
            f"{op}: the function's auth level is {route.auth_level}; `security: []` marks exactly the anonymous "
            "routes, every other one takes a function key"
        )


def test_path_parameters_are_the_route_template_parameters() -> None:
    for op in operations():
        in_template = re.findall(r"\{([^}]+)\}", op.path)
        params = op.params("path")
        assert sorted(in_template) == sorted(p["name"] for p in params), op
        assert all(p.get("required") is True for p in params), f"{op}: path parameters are required"
        assert {p["in"] for p in op.parameters} <= {"path", "query", "header"}, op


def test_every_refusal_is_documented_with_the_shape_refuse_answers() -> None:
    spec = load_spec()
    error = spec["components"]["schemas"]["Error"]
    for op in operations():
        codes = set(op.responses)
        refusals = {c for c in codes if c[0] in "45"}
        if not op.anonymous:
            # The body limit is enforced by every keyed route; the fuzz run sends each one an oversized body.
            assert "413" in refusals, f"{op}: document 413 (documented: {sorted(codes)})"
        html = set(op.responses.get("200", {}).get("content") or {}) == {"text/html"}
        for code in refusals:
            if html:  # a page for a person refuses as a page: the reason as escaped text (status_page)
                assert op.responses[code]["content"] == {"text/html": {"schema": {"type": "string"}}}, (op, code)
                continue
            schema = op.response_schema(int(code))
            assert schema == {"$ref": ERROR_REF}, f"{op} {code}: a refusal's body is {ERROR_REF}"
    # What refuse() really answers matches the schema, and the schema admits nothing else.
    answer = refuse(Refusal(409, "backup-c-f is running; one run per filer at a time"))
    assert answer.status_code == 409 and answer.mimetype == "application/json"
    body = json.loads(answer.get_body())
    assert schema_problems(spec, error, body) == []
    assert schema_problems(spec, error, {**body, "detail": "x"}) == ["body.detail: not described"]
    assert schema_problems(spec, error, {"error": ""}) == ["body.error: shorter than 1"]
    assert schema_problems(spec, error, {"message": "x"}) == ["body.error: required", "body.message: not described"]
    assert schema_problems(spec, error, {"error": None}) == ["body.error: expected string, got NoneType"]
    # null passes only where the file says nullable
    report = spec["components"]["schemas"]["FilerReport"]["properties"]
    assert schema_problems(spec, report["serving_cluster"], None) == []
    assert schema_problems(spec, report["state_detail"], None) == ["body: expected string, got NoneType"]


# The routes that start a run answer the Started response; the run routes' 202s (an event raised) do not.
STARTERS = {
    "start_backup",
    "readd_filer",
    "start_failover",
    "start_failback",
    "start_cluster_failover",
    "start_drill",
    "start_cluster_drill",
}


def test_the_started_answer_is_the_apps_own_run_urls() -> None:
    """What triggers/common.py `started` builds: the app's /runs/{id} URLs, never the Durable webhooks' (their
    query string carries the system key)."""
    from triggers.common import started as started_reply

    spec = load_spec()
    started = spec["components"]["responses"]["Started"]
    schema = started["content"]["application/json"]["schema"]
    request = func.HttpRequest(method="POST", url="http://127.0.0.1:7071/api/backups/c1/f1?code=k", body=b"")
    for cancellable in (True, False):
        answer = started_reply(request, "backup~c1~f1", cancellable=cancellable)
        assert answer.status_code == 202
        body = json.loads(answer.get_body())
        assert schema_problems(spec, schema, body) == []
        assert body["statusUri"] == "http://127.0.0.1:7071/api/runs/backup~c1~f1"
        assert (body["cancelUri"] is not None) is cancellable
        assert "code=" not in answer.get_body().decode() and answer.headers["Location"] == body["statusUri"]
        assert set(started["headers"]) <= {name for name, _ in answer.headers.items()}
    # The Durable client's own check-status payload (its URLs carry the key) is not what a route answers.
    binding = json.dumps(client_binding("http://127.0.0.1:7071", "hub", "system-key"))
    durable = df.DurableOrchestrationClient(binding).create_check_status_response(request, "backup~c1~f1")
    assert schema_problems(spec, schema, json.loads(durable.get_body())) != []
    for op in operations():
        if op.operation_id in STARTERS:
            assert op.responses["202"] == started, f"{op}: a started run answers the Started response"
        elif "202" in op.responses:
            assert op.responses["202"] != started, f"{op}: only a route that starts a run answers Started"


def test_servers_carry_the_route_prefix_of_host_json() -> None:
    spec = load_spec()
    assert spec["openapi"].startswith("3.")
    prefix = route_prefix()
    for server in spec["servers"]:
        assert urlsplit(server["url"]).path.rstrip("/") == f"/{prefix}", server
    assert spec["security"] == [{"functionKey": []}, {"functionKeyQuery": []}]
