"""The generated plan and settings from any stack description, and idempotent secret storage on the stand-in."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from devstack.stack import appconfig
from devstack.stack.appconfig import (
    build_plan,
    ensure_key_secret,
    ensure_secret,
    secret_fields_in,
    stack_identity,
    write_app_config,
)
from shared.azure.keyvault import KeyVault
from shared.plan.load import PlanError, load_plan_file, parse_plan
from shared.runbook.key_secret import CONTENT_TYPE, KeySecret, key_secret_name

PROXY = "http://127.0.0.1:47000"


def fake_stack(tmp_path: Path, **extra: dict) -> dict:
    """A stack.json as `up` writes it (no processes needed: the config is a pure function of it)."""
    ca = tmp_path / "tls" / "ca.pem"
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_text("not really a certificate\n")
    cluster = {"user": "admin", "password": "pw-never-in-the-plan", "ca_cert": str(ca)}
    stack = {
        "state_dir": str(tmp_path),
        "tls": {"ca_cert": str(ca)},
        "storage": {
            "blob_endpoint": "http://127.0.0.1:41000",
            "accounts": {
                "source": {"name": "vfxtsource", "key": "c291cmNla2V5", "region": "westus2"},
                "dr": {"name": "vfxtdr", "key": "ZHJrZXk=", "region": "eastus2"},
            },
        },
        "faultproxy": {"url": PROXY},
        "identity": {"endpoint": "http://127.0.0.1:42000/msi/token", "header": "hdr-secret", "tenant_id": "t"},
        "keyvault": {"url": "https://127.0.0.1:43000", "ca_cert": str(ca), "tenant_id": "t"},
        "clusters": {
            "primary": {**cluster, "url": "https://127.0.0.1:44000/cgi-bin/rpc2.py", "region": "westus2"},
            "dr": {**cluster, "url": "https://127.0.0.1:45000/cgi-bin/rpc2.py", "region": "eastus2"},
        },
        "demo_filer": {"cluster": "primary", "name": "demo-filer", "bucket": "vfxtsource/demo-filer"},
    }
    stack.update(extra)
    return stack


def test_the_plan_for_a_stack_validates_without_warnings(tmp_path: Path) -> None:
    plan = parse_plan(build_plan(fake_stack(tmp_path)))
    assert list(plan.warnings()) == []
    assert plan.storage_auth == "key" and plan.keyvault_url == "https://127.0.0.1:43000"
    primary = plan.cluster("primary")
    assert primary.management_address == "127.0.0.1:44000" and primary.rpc_path == "/cgi-bin/rpc2.py"
    assert primary.tls.ca_file == str(tmp_path / "tls" / "ca.pem")
    assert primary.admin_password_secret == "avere-primary-admin"
    assert plan.dr_cluster("dr").management_address == "127.0.0.1:45000"
    filer = plan.filer("primary", "demo-filer")
    assert filer.source.blob_endpoint == f"{PROXY}/vfxtsource" and filer.source.container == "demo-filer"
    assert filer.source.key_secret == "storage-vfxtsource-key"
    assert filer.backup.blob_endpoint == f"{PROXY}/vfxtdr" and filer.backup.region == "eastus2"
    assert filer.backup.containers == ("demo-filer-a", "demo-filer-b")
    assert filer.backup.storage_key_secret == "storage-vfxtdr-key"
    assert filer.failover_cluster == "dr" and filer.max_offline_minutes <= 15
    assert plan.copy.page_size == 50


def test_the_local_plan_polls_every_second(tmp_path: Path) -> None:
    # The simulated clusters and Azurite finish in seconds: the demo's waits follow them, not a 10 s cadence.
    plan = parse_plan(build_plan(fake_stack(tmp_path)))
    assert [c.poll_seconds for c in (*plan.clusters, *plan.dr_clusters)] == [1.0, 1.0]
    assert plan.copy.poll_interval_seconds == 1
    assert plan.copy.pending_limit_seconds >= 60  # still long enough that a slow copy is not called failed


def test_without_a_fault_proxy_the_app_talks_to_azurite(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path)
    del stack["faultproxy"]
    plan = parse_plan(build_plan(stack))
    assert plan.filers[0].source.blob_endpoint == "http://127.0.0.1:41000/vfxtsource"
    assert plan.filers[0].backup.blob_endpoint == "http://127.0.0.1:41000/vfxtdr"


def test_source_endpoint_moves_the_apps_view_of_storage(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path)
    plan_path, _ = write_app_config(tmp_path, stack, source_endpoint="http://127.0.0.1:48000/")
    filer = load_plan_file(plan_path).filers[0]
    assert filer.source.blob_endpoint == "http://127.0.0.1:48000/vfxtsource"
    # Azurite serves Copy Blob only from a source on the request's own host: the backup follows the source.
    assert filer.backup.blob_endpoint == "http://127.0.0.1:48000/vfxtdr"
    both = parse_plan(
        build_plan(stack, source_endpoint="http://127.0.0.1:48000", backup_endpoint="http://127.0.0.1:49000")
    )
    assert both.filers[0].backup.blob_endpoint == "http://127.0.0.1:49000/vfxtdr"


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:48000/vfxtsource", "ftp://127.0.0.1:1", "http://127.0.0.1:48000?sig=abc", "127.0.0.1:48000"],
)
def test_a_bad_source_endpoint_is_refused_and_nothing_is_written(tmp_path: Path, endpoint: str) -> None:
    with pytest.raises(ValueError, match="source_endpoint must be a blob service root"):
        write_app_config(tmp_path / "state", fake_stack(tmp_path), source_endpoint=endpoint)
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("path", "named"),
    [
        (("keyvault",), "keyvault.url"),
        (("identity",), "identity.endpoint"),
        (("clusters", "dr"), "clusters.dr"),
        (("storage", "accounts", "source"), "storage.accounts.source"),
    ],
)
def test_an_incomplete_stack_is_refused_naming_what_is_missing(
    tmp_path: Path, path: tuple[str, ...], named: str
) -> None:
    stack = fake_stack(tmp_path)
    node = stack
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    with pytest.raises(ValueError, match=f"the stack description has no {named}"):
        write_app_config(tmp_path / "state", stack)
    assert not (tmp_path / "state").exists()


def test_a_plan_that_would_not_validate_is_never_written(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path)
    stack["storage"]["accounts"]["dr"]["region"] = "westus2"  # backup in the source's region
    with pytest.raises(PlanError, match="region"):
        write_app_config(tmp_path / "state", stack)
    assert not (tmp_path / "state" / appconfig.PLAN_FILE).exists()


def test_settings_in_the_functions_format_owner_only(tmp_path: Path) -> None:
    stack = fake_stack(tmp_path)
    plan_path, settings_path = write_app_config(tmp_path / "state", stack)
    assert plan_path == (tmp_path / "state" / "plan.json").resolve()
    assert settings_path.stat().st_mode & 0o777 == 0o600
    settings = json.loads(settings_path.read_text())
    assert settings["IsEncrypted"] is False
    values = settings["Values"]
    ca = str(tmp_path / "tls" / "ca.pem")
    assert values == {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=vfxtdr;AccountKey=ZHJrZXk=;"
        "BlobEndpoint=http://127.0.0.1:41000/vfxtdr;",
        "VFXTDR_TASK_HUB": appconfig.TASK_HUB,
        "VFXTDR_PLAN_FILE": str(plan_path),
        "IDENTITY_ENDPOINT": "http://127.0.0.1:42000/msi/token",
        "IDENTITY_HEADER": "hdr-secret",
        "REQUESTS_CA_BUNDLE": ca,
        "SSL_CERT_FILE": ca,
    }
    plan_text = plan_path.read_text()
    for secret in ("pw-never-in-the-plan", "hdr-secret", "c291cmNla2V5", "ZHJrZXk="):
        assert secret not in plan_text


def test_secret_fields_are_found_wherever_they_hide() -> None:
    assert secret_fields_in({"a": [{"b": {"passphrase": "x"}}], "recovery_file": "y", "key_id": "z"}) == [
        "a[0].b.passphrase",
        "recovery_file",
    ]
    assert secret_fields_in({"demo_filer": {"key_id": "k", "signature": "s"}}) == []


def test_stack_identity_sets_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://elsewhere/token")
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", "abc")
    with stack_identity(fake_stack(tmp_path)):
        assert os.environ["IDENTITY_ENDPOINT"] == "http://127.0.0.1:42000/msi/token"
        assert os.environ["IDENTITY_HEADER"] == "hdr-secret"
        assert "IDENTITY_SERVER_THUMBPRINT" not in os.environ
    assert os.environ["IDENTITY_ENDPOINT"] == "http://elsewhere/token"
    assert "IDENTITY_HEADER" not in os.environ and os.environ["IDENTITY_SERVER_THUMBPRINT"] == "abc"


# -- idempotent storage, against the Key Vault stand-in through the real SDK ---------------------------------


def test_ensure_secret_stores_only_a_changed_value(keyvault_env: object) -> None:
    name = f"idem-{uuid.uuid4().hex[:8]}"
    with KeyVault(keyvault_env.url) as vault:  # type: ignore[attr-defined]
        assert ensure_secret(vault, name, "v1", content_type="text/plain", tags={"cluster": "c"}) is True
        assert ensure_secret(vault, name, "v1", content_type="text/plain", tags={"cluster": "c"}) is False
        assert len(vault.versions(name)) == 1
        assert ensure_secret(vault, name, "v2", content_type="text/plain", tags={"cluster": "c"}) is True
        assert ensure_secret(vault, name, "v2", content_type="text/plain", tags={"cluster": "d"}) is True
        assert len(vault.versions(name)) == 3 and vault.read(name).value == "v2"


def test_the_initial_key_is_never_stored_over_a_newer_rotation(keyvault_env: object) -> None:
    filer = f"f-{uuid.uuid4().hex[:8]}"

    def key(key_id: str) -> KeySecret:
        return KeySecret(
            passphrase=f"pass-{key_id}",
            recovery_file=f"U2FsdGVkX1{key_id}",
            key_id=key_id,
            signature=f"sig-{key_id}",
            cluster="primary",
            filer=filer,
        )

    with KeyVault(keyvault_env.url) as vault:  # type: ignore[attr-defined]
        assert ensure_key_secret(vault, key("k1")) is True
        vault.store(
            key_secret_name("primary", filer), key("k2").dumps(), content_type=CONTENT_TYPE, tags=key("k2").tags()
        )  # what a backup's rotation does
        assert ensure_key_secret(vault, key("k1")) is False  # a second `up` keeps the newer key newest
        latest = vault.read(key_secret_name("primary", filer))
        assert KeySecret.loads(latest.value).key_id == "k2"
        assert latest.content_type == CONTENT_TYPE and latest.tags == key("k2").tags()
        assert len(vault.versions(key_secret_name("primary", filer))) == 2
