"""Stack component `probe`: the drill probe stand-in as a process on an HTTPS port, its key in the vault.

The key is made once per state dir (STATE/probe/config.json, owner-only, beside the DR cluster's login the probe
uses for its "mounts") and stored in Key Vault as `drill-probe-key`, the secret the generated plan names.
stack.json gets the URL, the secret's name and the CA, never the key.
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import urllib.request
from pathlib import Path

from devstack.cluster.model import write_private_json
from devstack.paths import REPO_ROOT
from devstack.probe.server import PATH, SERVICE
from devstack.stack.appconfig import PLAIN, ensure_secret, stack_identity
from devstack.stack.lifecycle import START_TIMEOUT, ComponentError
from devstack.stack.ports import LOOPBACK
from devstack.stack.procs import Proc, StartError, spawn_listening

KEY_SECRET = "drill-probe-key"  # noqa: S105 - the name of a Key Vault secret, not a secret
PROBE_CLUSTERS = ("dr",)  # the probe runs beside the DR cluster: the only one it can mount


def _config(state_dir: Path, stack: dict) -> dict:
    """STATE/probe/config.json: the key (kept across starts) and the clusters' logins (current ones)."""
    path = state_dir / "probe" / "config.json"
    try:
        key = str(json.loads(path.read_text())["key"])
    except (OSError, ValueError, KeyError):
        key = secrets.token_urlsafe(32)
    clusters = [
        {
            "name": name,
            "url": info["url"],
            "user": info.get("user", "admin"),
            "password": info["password"],
            "ca_cert": info["ca_cert"],
        }
        for name, info in stack["clusters"].items()
        if name in PROBE_CLUSTERS
    ]
    config = {"key": key, "clusters": clusters}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    write_private_json(path, config)
    return config


def answers(url: str, ca_cert: str) -> bool:
    """True when the probe stand-in answers its health check at url's origin over the stack's CA."""
    context = ssl.create_default_context(cafile=ca_cert)
    try:
        with urllib.request.urlopen(url.replace(PATH, "/health"), timeout=2, context=context) as reply:  # noqa: S310
            return json.loads(reply.read()).get("service") == SERVICE
    except (OSError, ValueError):
        return False


def start_probe_component(state_dir: Path, stack: dict) -> tuple[list[Proc], dict]:
    from azure.identity import ManagedIdentityCredential

    from shared.azure.keyvault import KeyVault

    config = _config(state_dir, stack)
    ca = str(stack["tls"]["ca_cert"])
    with (
        stack_identity(stack),
        ManagedIdentityCredential() as credential,
        KeyVault(stack["keyvault"]["url"], credential, ca_bundle=ca) as vault,
    ):
        ensure_secret(vault, KEY_SECRET, config["key"], content_type=PLAIN, tags={"use": "drill probe"})

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "devstack.probe", "--state-dir", str(state_dir), "--port", str(port)]

    def url(port: int) -> str:
        return f"https://{LOOPBACK}:{port}{PATH}"

    try:
        proc, port = spawn_listening(
            "probe",
            argv,
            state_dir / "logs",
            ready=lambda p: answers(url(p), ca),
            cwd=str(REPO_ROOT),
            timeout=START_TIMEOUT,
        )
    except StartError as err:
        raise ComponentError("probe", err.problem, err.log) from None
    return [proc], {"probe": {"url": url(port), "key_secret": KEY_SECRET, "ca_cert": ca}}
