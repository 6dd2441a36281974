"""Who may read the operator views: an Entra ID principal behind App Service authentication, or a direct
loopback request where the app does not run on App Service. Everything else is refused, naming why; and every
anonymous route of the app but the health probe refuses like that."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
from typing import Any

import azure.functions as func
import pytest

from devstack.durable.management import client_binding
from triggers.access import check

AZURE = {"WEBSITE_INSTANCE_ID": "abc123", "WEBSITE_AUTH_ENABLED": "True"}
URL = "https://vfxtdr.azurewebsites.net/api/filers"
LOCAL = "http://127.0.0.1:7071/api/status"


def principal(auth_typ: str = "aad", claims: object = ()) -> str:
    body = {
        "auth_typ": auth_typ,
        "claims": list(claims) or [{"typ": "name", "val": "Ops"}],
        "name_typ": "name",
        "role_typ": "roles",
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def signed_in(**extra: str) -> dict[str, str]:
    return {
        "X-MS-CLIENT-PRINCIPAL": principal(),
        "X-MS-CLIENT-PRINCIPAL-ID": "00000000-1111",
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        **extra,
    }


def test_a_signed_in_entra_principal_on_app_service_is_admitted():
    assert check(URL, signed_in(), AZURE) is None
    lower = {k.lower(): v for k, v in signed_in().items()}  # header case varies by framework
    assert check(URL, lower, AZURE) is None


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "no signed-in principal"),
        (signed_in(**{"X-MS-CLIENT-PRINCIPAL": "%%%"}), "not Base64 JSON"),
        (signed_in(**{"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1, 2]").decode()}), "holds no claims"),
        (signed_in(**{"X-MS-CLIENT-PRINCIPAL": principal("github")}), "not signed in with Microsoft Entra ID"),
        (signed_in(**{"X-MS-CLIENT-PRINCIPAL-IDP": "google"}), "not signed in with Microsoft Entra ID"),
        (signed_in(**{"X-MS-CLIENT-PRINCIPAL-ID": " "}), "X-MS-CLIENT-PRINCIPAL-ID".lower()),
    ],
)
def test_on_app_service_anything_but_a_valid_principal_is_401(headers, words):
    denied = check(URL, headers, AZURE)
    assert denied is not None and denied.status == 401 and words in denied.reason
    # Only a caller with no principal at all is one signing in can admit (the status page redirects it).
    assert denied.sign_in == (headers == {})


def test_only_a_caller_without_any_principal_header_is_sent_to_sign_in():
    denied = check(URL, {"X-MS-CLIENT-PRINCIPAL-ID": "00000000-1111"}, AZURE)
    assert denied is not None and denied.status == 401 and not denied.sign_in
    for env in ({"WEBSITE_INSTANCE_ID": "abc"}, {}):  # no App Service authentication: signing in cannot help
        denied = check("http://10.1.2.3/api/status", {}, env)
        assert denied is not None and denied.status == 403 and not denied.sign_in


def test_on_app_service_without_its_authentication_even_a_principal_header_is_refused():
    # Without App Service authentication nothing strips these headers: a caller could have written them.
    for env in ({"WEBSITE_INSTANCE_ID": "abc"}, {"WEBSITE_SITE_NAME": "app", "WEBSITE_AUTH_ENABLED": "False"}):
        denied = check(URL, signed_in(), env)
        assert denied is not None and denied.status == 403 and "WEBSITE_AUTH_ENABLED" in denied.reason


def test_on_app_service_loopback_is_no_way_in():
    denied = check(LOCAL, {}, AZURE)
    assert denied is not None and denied.status == 401


@pytest.mark.parametrize("url", [LOCAL, "http://localhost:7071/api/filers", "http://[::1]:7071/api/filers"])
def test_off_app_service_a_direct_loopback_request_is_admitted(url):
    assert check(url, {"Accept": "application/json"}, {}) is None


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3:7071/api/status", "http://devbox.local/api/filers", "http://127.0.0.1.nip.io/api/status"]
)
def test_off_app_service_any_other_host_is_403(url):
    denied = check(url, {}, {})
    assert denied is not None and denied.status == 403 and "loopback" in denied.reason


@pytest.mark.parametrize("header", ["X-Forwarded-For", "x-forwarded-host", "Forwarded", "X-Original-URL"])
def test_off_app_service_a_proxied_loopback_request_is_403(header):
    denied = check(LOCAL, {header: "203.0.113.9"}, {})
    assert denied is not None and denied.status == 403 and header.lower() in denied.reason
    assert "203.0.113.9" not in denied.reason  # header values are never echoed


def test_off_app_service_a_principal_header_does_not_open_a_remote_request():
    denied = check("http://10.1.2.3/api/filers", signed_in(), {})
    assert denied is not None and denied.status == 403


def test_an_ordinary_container_is_not_app_service():
    # Linux containers commonly set CONTAINER_NAME: it does not close the loopback door, WEBSITE_SKU does.
    assert check(LOCAL, {}, {"CONTAINER_NAME": "builder-1"}) is None
    denied = check(LOCAL, {}, {"WEBSITE_SKU": "FlexConsumption"})
    assert denied is not None and denied.status == 403 and "WEBSITE_SKU" in denied.reason


# --- every anonymous door ------------------------------------------------------------------------------------
# In Azure, App Service authentication blocks nothing (AllowAnonymous, infra/main.bicep): a route is closed by
# its function key, or, when anonymous, by refusing in-app. Only the health probe is public on purpose.
PUBLIC = {"health"}


def anonymous_functions() -> dict[str, Any]:
    """Every anonymous HTTP function of the app, by name, as the worker indexes them (user functions)."""
    import function_app

    app = function_app.app
    out = {}
    for builder in app._function_builders:
        fn = builder.build(app.auth_level)
        trigger = fn.get_trigger()
        if trigger is not None and trigger.type == "httpTrigger" and trigger.auth_level == func.AuthLevel.ANONYMOUS:
            out[fn.get_function_name()] = fn.get_user_function()
    return out


def test_every_anonymous_route_but_the_probe_refuses_a_caller_app_service_did_not_sign_in(monkeypatch):
    """Fails closed for routes added later: a new anonymous route fails this test until it refuses an unsigned
    caller on App Service (as the read API and the status page do) or is deliberately added to PUBLIC."""
    monkeypatch.setenv("WEBSITE_SITE_NAME", "vfxtdr")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    functions = anonymous_functions()
    assert PUBLIC | {"status_page", "list_filers", "get_filer"} <= set(functions)
    spoofed = {"X-MS-CLIENT-PRINCIPAL": principal("github"), "X-MS-CLIENT-PRINCIPAL-ID": "x"}
    for name, user_function in sorted(functions.items()):
        if name in PUBLIC:
            continue
        for headers in ({}, spoofed, {"x-functions-key": "k", "X-Forwarded-For": "203.0.113.9"}):
            req = func.HttpRequest(
                "GET",
                f"https://vfxtdr.azurewebsites.net/api/{name}",
                headers=headers,
                body=b"",
                route_params={"cluster": "c", "filer": "f"},
            )
            params = inspect.signature(user_function).parameters
            # a Durable client that reaches nothing: a route that did not refuse first fails on it
            client = json.dumps(client_binding("http://127.0.0.1:9", "hub", "no-key"))
            answer = user_function(req, **({"client": client} if "client" in params else {}))
            if inspect.isawaitable(answer):
                answer = asyncio.run(answer)
            # 302 only to App Service authentication's own sign-in, and only for a caller with no principal
            if answer.status_code == 302:
                assert headers != spoofed and answer.headers["Location"].startswith("/.auth/login/aad?"), name
            else:
                assert answer.status_code == 401, (name, headers, answer.status_code)
