"""The read API through the local runner: what `GET /api/filers` and `GET /api/filers/{cluster}/{filer}` say
before any backup, after backups (ages on the virtual clock), after a failover, for a filer that needs attention;
its paging and refusals; who it admits; and that no body holds the Durable system key or a secret."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.catalog.store import FilerState
from tests.fixtures.durable import HttpReply, http_call
from tests.fixtures.secrets import find_leaks
from tests.fixtures.workflow import AppEnv
from tests.integration.workflow.test_workflow_routes import catalog_blobs, instances

HOUR = 3600.0


@pytest.fixture
def app_runner(app_env: AppEnv, durable_runner) -> Any:
    import function_app

    return durable_runner(function_app.app, clock=app_env.clock)


def get(runner: Any, path: str, headers: dict[str, str] | None = None) -> HttpReply:
    return http_call("GET", f"{runner.base_url}/api/{path}", headers=headers)


def unredirected(runner: Any, path: str) -> http.client.HTTPResponse:
    """One GET whose redirect is answered, not followed (urllib follows it to a sign-in page served in Azure)."""
    where = urlsplit(runner.base_url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
    try:
        connection.request("GET", f"/api/{path}")
        reply = connection.getresponse()
        reply.read()
        return reply
    finally:
        connection.close()


def filers(runner: Any, bodies: list[str]) -> dict[str, dict]:
    reply = get(runner, "filers")
    assert reply.status == 200, reply.body
    bodies.append(reply.body.decode())
    return {f["key"]: f for f in reply.json()["filers"]}


def detail(runner: Any, env: AppEnv, bodies: list[str], query: str = "") -> dict:
    reply = get(runner, f"filers/primary/{env.filer_name}{query}")
    assert reply.status == 200, reply.body
    bodies.append(reply.body.decode())
    return reply.json()


def post(runner: Any, path: str) -> str:
    reply = http_call("POST", f"{runner.base_url}/api/{path}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=180)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    return reply.json()["id"]


def assert_clean(env: AppEnv, runner: Any, bodies: list[str]) -> None:
    """No body holds the Durable system key, a status URL, or any secret value of the environment."""
    text = "\n".join(bodies)
    assert runner.system_key not in text and "runtime/webhooks" not in text and "code=" not in text
    assert not find_leaks(env, {"read API bodies": text})


def test_before_any_backup_the_filer_is_unprotected_and_not_yet_in_breach(app_env: AppEnv, app_runner: Any) -> None:
    env, runner, bodies = app_env, app_runner, []
    before = (instances(runner), catalog_blobs(env))
    report = filers(runner, bodies)[f"primary/{env.filer_name}"]
    assert report["state"] == "unprotected" and report["serving_cluster"] == "primary"
    assert report["rpo"] == {
        "target_hours": 24,
        "age_s": None,
        "age_hours": None,
        "badge": "red",
        "reason": "no verified backup",
        "breach": False,
    }
    assert report["last_backup"] is None and report["last_drill"] is None and report["running"] == []
    assert report["links"]["self"] == f"/api/filers/primary/{env.filer_name}"
    one = detail(runner, env, bodies)
    assert one["filer"]["state"] == "unprotected"
    for name in ("runs", "backups", "drills", "failovers"):
        assert one[name] == {"total": 0, "page": 1, "pageSize": 20, "items": []}
    assert (instances(runner), catalog_blobs(env)) == before  # reading changes nothing
    assert_clean(env, runner, bodies)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("?page=0", "page"),
        ("?page=abc", "page"),
        ("?page=-1", "page"),
        ("?page=1.5", "page"),
        ("?page=%EF%BC%91", "page"),  # a full-width digit: int() would take it, the API does not
        ("?pageSize=0", "pageSize"),
        ("?pageSize=101", "pageSize"),
        ("?pageSize=", "pageSize"),
    ],
)
def test_bad_paging_is_400_naming_the_parameter(app_env: AppEnv, app_runner: Any, query: str, name: str) -> None:
    reply = get(app_runner, f"filers/primary/{app_env.filer_name}{query}")
    assert reply.status == 400, reply.body
    assert reply.json()["error"].startswith(f"query parameter {name}:") and "1 to" in reply.json()["error"]


def test_unknown_filer_or_cluster_is_404(app_env: AppEnv, app_runner: Any) -> None:
    for path in ("filers/primary/no-such-filer", f"filers/nowhere/{app_env.filer_name}"):
        reply = get(app_runner, path)
        assert reply.status == 404 and ("no-such-filer" in reply.json()["error"] or "nowhere" in reply.json()["error"])


def _principal() -> dict[str, str]:
    body = {"auth_typ": "aad", "claims": [{"typ": "name", "val": "Operator"}], "name_typ": "name", "role_typ": "roles"}
    return {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(body).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-ID": "1111",
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


def test_who_may_read(app_env: AppEnv, app_runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env, runner = app_env, app_runner
    paths = ("filers", f"filers/primary/{env.filer_name}", "status")
    # Off Azure, on loopback: open; through a proxy or tunnel: refused (the caller is elsewhere).
    for path in paths:
        assert get(runner, path).status == 200
        refused = get(runner, path, {"X-Forwarded-For": "203.0.113.7"})
        assert refused.status == 403 and b"proxy" in refused.body and b"203.0.113.7" not in refused.body
    # On App Service (the platform sets WEBSITE_INSTANCE_ID) without its authentication: closed to everyone.
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123abcd")
    for path in paths:
        refused = get(runner, path, _principal())
        assert refused.status == 403 and b"WEBSITE_AUTH_ENABLED" in refused.body
    # With it: a signed-in Entra ID principal only (loopback is no way in).
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    for path in paths:
        unsigned = unredirected(runner, path)
        if path == "status":  # a person is sent to the platform's sign-in, which returns to the page
            assert unsigned.status == 302
            assert unsigned.getheader("Location") == "/.auth/login/aad?post_login_redirect_uri=/api/status"
        else:
            assert unsigned.status == 401
        assert get(runner, path, _principal()).status == 200
    page = get(runner, "status", _principal())
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_filer_that_needs_attention_says_what_to_do(app_env: AppEnv, app_runner: Any) -> None:
    env, runner, bodies = app_env, app_runner, []

    def change(state: FilerState) -> None:
        state.needs_attention = {
            "since": "2027-01-15T07:00:00Z",
            "last": "2027-01-15T07:30:00Z",
            "instance_id": f"backup-primary-{env.filer_name}",
            "error": "re-add failed 4 times: createCloudFiler refused",
            "record": None,
        }

    env.catalog().update(env.filer, change)
    report = filers(runner, bodies)[f"primary/{env.filer_name}"]
    assert report["state"] == "needs_attention" and report["serving_cluster"] is None
    assert report["rpo"]["badge"] == "red" and report["rpo"]["reason"] == "needs attention"
    assert report["attention"] == {
        "since": "2027-01-15T07:00:00Z",
        "error": "re-add failed 4 times: createCloudFiler refused",
        "action": f"fix the cluster, then POST /api/filers/primary/{env.filer_name}/readd",
    }
    assert_clean(env, runner, bodies)


def test_after_backups_and_a_failover(app_env: AppEnv, app_runner: Any) -> None:
    env, runner, bodies = app_env, app_runner, []
    key = f"primary/{env.filer_name}"
    env.write("/data/a.txt", b"first")
    first = post(runner, f"backups/primary/{env.filer_name}")
    first_out = runner.status(first)["output"]
    report = filers(runner, bodies)[key]
    with env.catalog() as catalog:
        entry = catalog.backup(env.filer, first_out["backup_id"])
    age = env.clock.now() - _epoch(entry["started_at"])
    assert report["state"] == "protected" and report["serving_cluster"] == "primary"
    assert report["home"]["side"] == "primary" and report["home"]["container"] == env.filer.source.container
    assert report["rpo"]["badge"] == "green" and report["rpo"]["breach"] is False
    assert report["rpo"]["age_s"] == round(age) and report["last_backup"]["backup_id"] == first_out["backup_id"]
    assert report["last_backup"]["link"] == f"/api/runs/{first}"
    assert report["last_backup"]["blobs"] == entry["verified"]["blobs"] > 0
    assert report["last_run"]["status"] == "verified" and report["running"] == []

    # Virtual time passes: the same backup turns amber past the target, red past 1.5x.
    env.clock.advance(30 * HOUR)
    report = filers(runner, bodies)[key]
    assert report["rpo"]["badge"] == "amber" and report["rpo"]["breach"] is True
    assert report["rpo"]["age_s"] == round(age + 30 * HOUR)
    env.clock.advance(7 * HOUR)
    assert filers(runner, bodies)[key]["rpo"]["badge"] == "red"

    env.write("/data/b.txt", b"second")
    second = post(runner, f"backups/primary/{env.filer_name}")
    second_out = runner.status(second)["output"]
    assert filers(runner, bodies)[key]["rpo"]["badge"] == "green"

    # Paged history, newest first.
    page1 = detail(runner, env, bodies, "?page=1&pageSize=1")
    page2 = detail(runner, env, bodies, "?page=2&pageSize=1")
    assert page1["backups"]["total"] == 2 and page1["backups"]["pageSize"] == 1
    assert [b["backup_id"] for b in page1["backups"]["items"] + page2["backups"]["items"]] == [
        second_out["backup_id"],
        first_out["backup_id"],
    ]
    assert all(
        b["restorable"] and b["status"] == "verified" for b in page1["backups"]["items"] + page2["backups"]["items"]
    )
    assert detail(runner, env, bodies, "?page=3&pageSize=1")["backups"]["items"] == []

    failover = post(runner, f"failovers/primary/{env.filer_name}")
    report = filers(runner, bodies)[key]
    assert report["state"] == "failed_over" and report["serving_cluster"] == "dr"
    assert (report["home"]["side"], report["home"]["cluster"]) == ("dr", "dr")  # it lives at DR until a failback
    # The attached backup serves the DR cluster; the other DR generation is in the same region: until a re-protect
    # backup is verified in the primary region's account, nothing protects the filer (red, no last backup).
    assert report["last_backup"] is None and report["rpo"]["badge"] == "red" and report["rpo"]["breach"] is True
    assert "no re-protect backup" in report["state_detail"]
    history = detail(runner, env, bodies)
    assert history["failovers"]["total"] == 1
    [fo] = history["failovers"]["items"]
    assert fo["target_cluster"] == "dr" and fo["backup_id"] == second_out["backup_id"] and fo["status"] == "serving"
    assert fo["link"] == f"/api/runs/{failover}"
    assert [r["kind"] for r in history["runs"]["items"]] == ["failover", "backup", "backup"]
    assert history["drills"]["total"] == 0 and history["filer"]["last_drill"] is None
    assert_clean(env, runner, bodies)


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
