"""The status page (`GET /api/status`): one self-contained HTML page whose script reads `GET /api/filers`.

The page is static (status_page.html beside this module: inline CSS and JS, nothing fetched from elsewhere) and
holds no key or data of its own; the same access rules as the read API guard it (triggers/access.py), except
that a browser with no sign-in at all is sent to App Service authentication's Entra ID sign-in, which returns it
here. Its Content-Security-Policy allows exactly its own inline style and script (by hash) and fetches to its
own origin.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
from pathlib import Path

import azure.functions as func

from triggers import access

bp = func.Blueprint()
log = logging.getLogger("vfxtdr.status")

PAGE_FILE = Path(__file__).with_name("status_page.html")
# App Service authentication's sign-in for its Entra ID provider, back to this page afterwards (same origin).
SIGN_IN = "/.auth/login/aad?post_login_redirect_uri=/api/status"


def _hash(kind: str, page: str) -> str:
    block = re.search(rf"<{kind}>(.*?)</{kind}>", page, re.DOTALL)
    if block is None:
        raise RuntimeError(f"{PAGE_FILE.name} has no <{kind}> block")
    digest = base64.b64encode(hashlib.sha256(block.group(1).encode()).digest()).decode()
    return f"'sha256-{digest}'"


PAGE = PAGE_FILE.read_text(encoding="utf-8")
HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_hash('script', PAGE)}; "
        f"style-src {_hash('style', PAGE)}; connect-src 'self'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@bp.function_name("status_page")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    """The operators' page; a caller with no sign-in goes to sign in (302), other refusals are the read API's
    (401 for a principal that is not a usable Entra ID one, 403 where the door is closed)."""
    refusal = access.check(req.url, dict(req.headers))
    if refusal is not None and refusal.sign_in:
        return func.HttpResponse(
            f'<!doctype html><title>vFXT DR status</title><p>Sign in: <a href="{SIGN_IN}">'
            f"{html.escape(SIGN_IN)}</a></p>",
            status_code=302,
            mimetype="text/html",
            headers={**HEADERS, "Location": SIGN_IN},
        )
    if refusal is not None:
        log.warning("status page refused: %s", refusal.reason)
        text = html.escape(refusal.reason)
        return func.HttpResponse(
            f"<!doctype html><title>vFXT DR status</title><p>{text}</p>",
            status_code=refusal.status,
            mimetype="text/html",
            headers=dict(HEADERS),
        )
    return func.HttpResponse(PAGE, status_code=200, mimetype="text/html", headers=dict(HEADERS))
