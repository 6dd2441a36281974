"""The status page as served (no browser): self-contained, one inline style and one inline script, both allowed
by hash in its Content-Security-Policy, nothing else allowed; refusals are escaped text; a caller with no
sign-in is sent to App Service authentication's sign-in."""

from __future__ import annotations

import base64
import hashlib
import re

import azure.functions as func

from triggers import status_page


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_is_self_contained_and_its_csp_allows_exactly_its_own_code():
    page = status_page.PAGE
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, re.DOTALL)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", page, re.DOTALL)
    assert len(scripts) == 1 and len(styles) == 1
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(|\bsrc=", page, re.IGNORECASE)
    assert "innerHTML" not in page and "eval(" not in page  # data goes in as text only
    csp = dict(part.strip().split(" ", 1) for part in status_page.HEADERS["Content-Security-Policy"].split(";"))
    assert csp == {
        "default-src": "'none'",
        "script-src": _sha(scripts[0]),
        "style-src": _sha(styles[0]),
        "connect-src": "'self'",
        "img-src": "data:",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert status_page.HEADERS["Cache-Control"] == "no-store"


def test_a_refusal_is_escaped_text_under_the_same_policy(monkeypatch):
    monkeypatch.setenv("WEBSITE_SITE_NAME", "vfxtdr")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    req = func.HttpRequest(
        "GET",
        "https://vfxtdr.azurewebsites.net/api/status",
        headers={"X-MS-CLIENT-PRINCIPAL": "<script>alert(1)</script>"},
        body=b"",
    )
    answer = status_page.status_page(req)
    body = answer.get_body().decode()
    assert answer.status_code == 401 and "<script>" not in body and "not Base64 JSON" in body
    assert answer.headers["Content-Security-Policy"] == status_page.HEADERS["Content-Security-Policy"]


def test_a_browser_without_any_sign_in_is_sent_to_entra_id_sign_in_and_back(monkeypatch):
    monkeypatch.setenv("WEBSITE_SITE_NAME", "vfxtdr")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    req = func.HttpRequest("GET", "https://vfxtdr.azurewebsites.net/api/status", headers={}, body=b"")
    answer = status_page.status_page(req)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/.auth/login/aad?post_login_redirect_uri=/api/status"
    assert answer.headers["Content-Security-Policy"] == status_page.HEADERS["Content-Security-Policy"]
    # without App Service authentication, signing in cannot help: a refusal, not a redirect
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
    answer = status_page.status_page(req)
    assert answer.status_code == 403 and "Location" not in answer.headers
    assert "WEBSITE_AUTH_ENABLED" in answer.get_body().decode()
