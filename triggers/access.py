"""Who may read the operator views (the status page and the read API it uses): a person App Service
authentication signed in with Entra ID, or — only where the app does not run on App Service — a direct request
on loopback. Everything else is refused. The routes are anonymous at the function level because a browser
holds no function key and the page must never embed one (docs/operations.md, "Who can read it")."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.core.netutil import is_loopback_host

PRINCIPAL = "x-ms-client-principal"  # Base64 JSON of the signed-in caller's claims, set only by the platform
PRINCIPAL_ID = "x-ms-client-principal-id"
PRINCIPAL_IDP = "x-ms-client-principal-idp"
ENTRA = "aad"  # auth_typ / IDP of App Service authentication's Microsoft Entra provider
AUTH_ENABLED = "WEBSITE_AUTH_ENABLED"  # set to True by App Service when its authentication is on
# Set by the App Service platform (one or more on every Functions plan) and not by Core Tools or the local runner:
# any of them means "in Azure". (Not CONTAINER_NAME: Linux consumption sets it, but so do ordinary containers.)
# Should none be set in Azure, the loopback rule still refuses: requests there arrive for the app's host name.
PLATFORM = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_OWNER_NAME", "WEBSITE_SKU")
# A proxy or tunnel in front of a loopback listener adds one of these: the caller is then not on this machine.
FORWARDING = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-original-url",
    "x-real-ip",
    "x-client-ip",
    "x-arr-log-id",
    "x-original-host",
)


@dataclass(frozen=True)
class Denied:
    """A refused request: 401 when signing in is what is missing, 403 when this door is closed here.
    `sign_in`: App Service authentication is on and the request carries no principal at all, so sending a
    browser to its sign-in page can admit it (a malformed or foreign principal cannot be fixed that way)."""

    status: int
    reason: str
    sign_in: bool = False


def on_platform(environ: Mapping[str, str]) -> list[str]:
    """The App Service settings present (empty off the platform)."""
    return [name for name in PLATFORM if environ.get(name, "").strip()]


def _principal_problem(headers: Mapping[str, str]) -> str | None:
    """What is wrong with the platform's sign-in headers, None when they name an Entra ID principal."""
    raw = headers.get(PRINCIPAL, "").strip()
    if not raw:
        return "no signed-in principal: sign in through the app's App Service authentication (Entra ID)"
    try:
        claims = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        return f"the {PRINCIPAL} header is not Base64 JSON"
    if not isinstance(claims, dict) or not isinstance(claims.get("claims"), list):
        return f"the {PRINCIPAL} header holds no claims"
    if claims.get("auth_typ") != ENTRA or headers.get(PRINCIPAL_IDP, ENTRA).strip().lower() != ENTRA:
        return "the principal was not signed in with Microsoft Entra ID"
    if not headers.get(PRINCIPAL_ID, "").strip():
        return f"the {PRINCIPAL_ID} header is missing"
    return None


def check(url: str, headers: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Denied | None:
    """None when the request may read the operator views; else why not. Header names in any case."""
    env = os.environ if environ is None else environ
    lower = {k.lower(): v for k, v in headers.items()}
    platform = on_platform(env)
    if platform:
        # Only with App Service authentication on does the platform strip these headers from what a caller
        # sends and set them itself; without it a caller could write them.
        if env.get(AUTH_ENABLED, "").strip().lower() != "true":
            return Denied(
                403,
                f"the app runs on App Service ({platform[0]} is set) without App Service "
                f"authentication ({AUTH_ENABLED} is not true): the operator views are served "
                "only behind its Entra ID sign-in",
            )
        problem = _principal_problem(lower)
        if problem is None:
            return None
        return Denied(401, problem, sign_in=not any(lower.get(h, "").strip() for h in (PRINCIPAL, PRINCIPAL_ID)))
    host = urlsplit(url).hostname
    if not is_loopback_host(host):
        return Denied(
            403,
            f"without App Service sign-in the operator views are served on loopback only, not to "
            f"host {str(host)[:100]!r}",
        )
    forwarded = [h for h in FORWARDING if h in lower]
    if forwarded:
        return Denied(
            403,
            f"the request came through a proxy ({', '.join(forwarded)}): without App Service "
            "sign-in only direct requests on loopback are served",
        )
    return None
