"""`devstack up/down/status` with every component, on one stack for the whole module (tests run in order)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from devstack.cli import main as cli
from devstack.clock import VirtualClock
from devstack.cluster import keys as sim_keys
from devstack.cluster.stack import DEMO_FILES, SPEEDUP_ENV
from devstack.cluster.waits import wait_activity
from devstack.stack import lifecycle as stack_mod
from devstack.stack.appconfig import PLAN_FILE, SETTINGS_FILE
from devstack.stack.lifecycle import running_stack, start_stack, stop_component, stop_stack
from devstack.stack.procs import pid_alive
from devstack.stack.region import block_account, blocked_accounts, unblock_account
from shared.avere.client import AvereClient
from shared.avere.errors import AvereConnectionError
from shared.azure.keyvault import KeyVault
from shared.plan.load import load_plan_file
from shared.runbook.key_secret import CONTENT_TYPE, KeySecret
from tests.paths import REPO

PROCESSES = {"azurite", "faultproxy", "identity", "keyvault", "cluster-primary", "cluster-dr", "probe"}
_CREDENTIAL_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
)


def pids_mentioning(path: Path) -> list[int]:
    """Live processes whose command line or environment names path: what a stack under path left running."""
    found = []
    needle = str(path).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in seen and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module's one full stack (clusters 20x faster than real time); stopped at the end in any case."""
    state = tmp_path_factory.mktemp("fullstack")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SPEEDUP_ENV, "20")
        start_stack(state)
        try:
            yield state
        finally:
            stop_stack(state)


def _stack(state: Path) -> dict:
    return json.loads((state / "stack.json").read_text())


def _settings(state: Path) -> dict[str, str]:
    return json.loads((state / SETTINGS_FILE).read_text())["Values"]


def _use_settings(monkeypatch: pytest.MonkeyPatch, state: Path) -> dict[str, str]:
    """Only the generated settings decide which credential DefaultAzureCredential picks and what it trusts."""
    for name in _CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    values = _settings(state)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _client(info: dict) -> AvereClient:
    return AvereClient(info["url"], info["user"], info["password"], ca_file=info["ca_cert"], retries=1, backoff=0.05)


def _demo_key(state: Path, monkeypatch: pytest.MonkeyPatch) -> KeySecret:
    _use_settings(monkeypatch, state)
    with KeyVault(_stack(state)["keyvault"]["url"]) as vault:
        return KeySecret.loads(vault.read(_stack(state)["demo_filer"]["key_secret"]).value)


def test_up_brings_up_every_component_and_the_demo_filer(stack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = stack_dir / "stack.json"
    assert path.stat().st_mode & 0o777 == 0o600
    stack = _stack(stack_dir)
    assert {p["name"] for p in stack["processes"]} == PROCESSES
    assert all(stack_mod.is_ours(p) for p in stack["processes"])
    assert set(stack["clusters"]) == {"primary", "dr"}
    for name, role in (("primary", "source"), ("dr", "dr")):
        cluster = stack["clusters"][name]
        assert set(cluster) == {"url", "user", "password", "ca_cert", "region", "speedup"}
        assert cluster["speedup"] == 20.0
        assert cluster["url"].startswith("https://127.0.0.1:") and cluster["url"].endswith("/cgi-bin/rpc2.py")
        assert cluster["region"] == stack["storage"]["accounts"][role]["region"]
    demo = stack["demo_filer"]
    assert demo["bucket"] == f"{stack['storage']['accounts']['source']['name']}/demo-filer"
    with _client(stack["clusters"]["primary"]) as primary:
        record = primary.capture_core_filer(demo["name"])
        assert record.encrypted and record.active_key_id == demo["key_id"]
        assert {j.path for j in record.junctions} == set(demo["junctions"])
        for file, data in DEMO_FILES.items():
            assert base64.b64decode(primary.call("sim.readFile", demo["vserver"], file)) == data
    with _client(stack["clusters"]["dr"]) as dr:
        assert dr.list_core_filers() == []

    # The demo key's passphrase and recovery file live in the vault only.
    key = _demo_key(stack_dir, monkeypatch)
    for name in (path, stack_dir / PLAN_FILE, stack_dir / SETTINGS_FILE):
        text = name.read_text()
        assert key.passphrase not in text and "".join(key.recovery_file.split())[:60] not in text
        assert "passphrase" not in text and "recovery_file" not in text

    before = path.read_bytes()
    again = _run("up", "--state-dir", str(stack_dir))
    assert again.returncode == 0, again.stderr
    assert "already runs; nothing changed" in again.stdout
    assert path.read_bytes() == before


def test_secrets_are_readable_with_default_credential_from_the_generated_settings(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _stack(stack_dir)
    values = _use_settings(monkeypatch, stack_dir)
    assert values["IDENTITY_ENDPOINT"] == stack["identity"]["endpoint"]
    assert values["REQUESTS_CA_BUNDLE"] == values["SSL_CERT_FILE"] == str(stack_dir / "tls" / "ca.pem")
    assert (stack_dir / SETTINGS_FILE).stat().st_mode & 0o777 == 0o600
    plan = load_plan_file(stack_dir / PLAN_FILE)
    filer = plan.filers[0]
    with KeyVault(plan.keyvault_url) as vault:  # DefaultAzureCredential -> the stack's identity endpoint
        for cluster in (*plan.clusters, *plan.dr_clusters):
            password = stack["clusters"][cluster.name]["password"]
            assert vault.read(cluster.admin_password_secret).value == password
        accounts = {a["name"]: a["key"] for a in stack["storage"]["accounts"].values()}
        assert vault.read(filer.source.key_secret).value == accounts[filer.source.account]
        assert vault.read(filer.backup.storage_key_secret).value == accounts[filer.backup.account]
        stored = vault.read(stack["demo_filer"]["key_secret"])
    key = KeySecret.loads(stored.value)
    assert stored.content_type == CONTENT_TYPE and stored.tags == key.tags()
    assert (key.cluster, key.filer) == (filer.cluster, filer.name)
    assert (key.key_id, key.signature) == (stack["demo_filer"]["key_id"], stack["demo_filer"]["signature"])
    opened = sim_keys.unseal(key.passphrase, key.recovery_file)  # the passphrase really opens the file
    assert opened.latest == key.key_id
    with _client(stack["clusters"]["primary"]) as primary:
        state = primary.master_key_status(filer.name)
    assert (state.active_key_id, state.recovery_file_signature) == (key.key_id, key.signature)


def test_the_generated_plan_validates_and_the_app_reaches_the_stack_with_it(stack_dir: Path) -> None:
    stack = _stack(stack_dir)
    plan = load_plan_file(stack_dir / PLAN_FILE)
    assert list(plan.warnings()) == []
    assert plan.storage_auth == "key" and plan.keyvault_url == stack["keyvault"]["url"]
    primary, dr = plan.cluster("primary"), plan.dr_cluster("dr")
    assert primary.management_url == stack["clusters"]["primary"]["url"]
    assert dr.management_url == stack["clusters"]["dr"]["url"]
    filer = plan.filer("primary", "demo-filer")
    assert filer.failover_cluster == "dr" and filer.source.container == "demo-filer"
    proxy = stack["faultproxy"]["url"]
    assert filer.source.blob_endpoint == f"{proxy}/{filer.source.account}"
    assert filer.backup.blob_endpoint == f"{proxy}/{filer.backup.account}"
    assert plan.copy.page_size < 100

    # The plan's own trust settings reach the cluster (what the activities will do).
    with AvereClient(
        primary.management_url,
        primary.admin_user,
        stack["clusters"]["primary"]["password"],
        **primary.tls.client_kwargs(),
    ) as client:
        assert "demo-filer" in client.list_core_filers()

    # The app, loaded the way the local runner loads it, finds its plan through the generated settings.
    from devstack.durable import Runner
    from tests.fixtures.durable import http_call

    with mock.patch.dict(os.environ):
        for name in [n for n in os.environ if n.startswith(("VFXTDR_", "IDENTITY_"))]:
            del os.environ[name]
        runner = Runner("function_app", stack_dir, VirtualClock()).start()
        try:
            assert os.environ["VFXTDR_PLAN_FILE"] == str(stack_dir / PLAN_FILE)
            reply = http_call("GET", f"{runner.base_url}/api/health")
        finally:
            runner.stop()
    assert reply.status == 200 and reply.json() == {"status": "ok", "plan": "valid"}


def test_the_probe_stand_in_answers_with_its_key_which_only_the_vault_and_its_own_config_hold(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl
    import urllib.error
    import urllib.request

    stack = _stack(stack_dir)
    plan = load_plan_file(stack_dir / PLAN_FILE)
    probe, sample = plan.drill_probe(plan.filers[0])
    assert probe is not None and sample > 0
    assert (probe.url, probe.key_secret, probe.ca_file) == (
        stack["probe"]["url"],
        stack["probe"]["key_secret"],
        stack["tls"]["ca_cert"],
    )
    _use_settings(monkeypatch, stack_dir)
    with KeyVault(plan.keyvault_url) as vault:
        key = vault.read(probe.key_secret).value
    config = stack_dir / "probe" / "config.json"
    assert json.loads(config.read_text())["key"] == key and config.stat().st_mode & 0o777 == 0o600
    for name in (stack_dir / "stack.json", stack_dir / PLAN_FILE, stack_dir / SETTINGS_FILE):
        assert key not in name.read_text()
    request = urllib.request.Request(
        probe.url, data=b"{}", method="POST", headers={"Content-Type": "application/json", "X-Vfxtdr-Probe-Key": key}
    )
    context = ssl.create_default_context(cafile=probe.ca_file)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10, context=context)
    assert refused.value.code == 400  # the key was accepted; the empty request is not a version 1 request
    request.remove_header("X-vfxtdr-probe-key")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10, context=context)
    assert refused.value.code == 401


def test_blocking_the_source_account_cuts_the_app_off_it_but_not_from_dr(stack_dir: Path) -> None:
    stack = _stack(stack_dir)
    plan = load_plan_file(stack_dir / PLAN_FILE)
    filer = plan.filers[0]
    keys = {a["name"]: a["key"] for a in stack["storage"]["accounts"].values()}

    def service(endpoint: str, account: str) -> BlobServiceClient:
        return BlobServiceClient(
            endpoint, credential={"account_name": account, "account_key": keys[account]}, retry_total=0
        )

    source = service(filer.source.blob_endpoint, filer.source.account).get_container_client("demo-filer")
    backup = service(filer.backup.blob_endpoint, filer.backup.account).get_container_client(
        f"blocktest-{uuid.uuid4().hex[:8]}"
    )
    backup.create_container()
    first = next(iter(source.list_blobs())).name
    sas = generate_blob_sas(
        filer.source.account,
        "demo-filer",
        first,
        account_key=keys[filer.source.account],
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    source_url = f"{source.get_blob_client(first).url}?{sas}"
    # Both accounts through the proxy: Azurite accepts the copy's source URL (same host as the request).
    assert backup.get_blob_client("before").start_copy_from_url(source_url)["copy_status"] == "success"

    with pytest.raises(ValueError, match=r"unknown storage account 'nosuch'.*source=vfxtsource"):
        block_account(stack_dir, "nosuch")
    assert blocked_accounts(stack_dir) == []
    assert block_account(stack_dir, "source") == filer.source.account
    try:
        assert blocked_accounts(stack_dir) == [filer.source.account]
        with pytest.raises(AzureError):
            next(iter(source.list_blobs()))
        with pytest.raises(AzureError):  # a server-side copy cannot read the lost region either
            backup.get_blob_client("during").start_copy_from_url(source_url)
        assert [b.name for b in backup.list_blobs()] == ["before"]  # the DR account still answers
        with _client(stack["clusters"]["primary"]) as primary:  # clusters reach storage directly
            readme = "/demo/projects/README.txt"
            assert base64.b64decode(primary.call("sim.readFile", "vserver", readme)) == DEMO_FILES[readme]
        shown = _run("status", "--state-dir", str(stack_dir)).stdout
        assert shown.count(f"blocked: {filer.source.account}") == 1
    finally:
        assert unblock_account(stack_dir, filer.source.account) is True
    assert blocked_accounts(stack_dir) == []
    assert next(iter(source.list_blobs())).name == first
    assert unblock_account(stack_dir, "source") is False


def test_region_lose_and_restore_by_hand(stack_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """`region lose REGION`: the region's account is unreachable through the app's endpoint and its cluster is
    down, the other region answers; `region restore REGION`: both are back where they were."""
    stack = _stack(stack_dir)
    filer = load_plan_file(stack_dir / PLAN_FILE).filers[0]  # its endpoints are the app's (through the proxy)
    keys = {a["name"]: a["key"] for a in stack["storage"]["accounts"].values()}

    def container(account: str, endpoint: str, name: str) -> Any:
        shared_key = {"account_name": account, "account_key": keys[account]}
        return BlobServiceClient(endpoint, credential=shared_key, retry_total=0).get_container_client(name)

    source = container(filer.source.account, filer.source.blob_endpoint, filer.source.container)
    catalog = container(filer.backup.account, filer.backup.blob_endpoint, "vfxtdr-catalog")
    region, other = filer.source.region, filer.backup.region
    arg = ("--state-dir", str(stack_dir))
    capsys.readouterr()

    assert cli(["region", "lose", "atlantis", *arg]) == 2
    assert f"unknown region 'atlantis': the stack has {', '.join(sorted({region, other}))}" in capsys.readouterr().err
    assert blocked_accounts(stack_dir) == [] and running_stack(stack_dir) is not None  # nothing changed

    assert cli(["region", "lose", region, *arg]) == 0
    out = capsys.readouterr().out
    assert f"account {filer.source.account} blocked" in out and "cluster-primary stopped" in out
    with pytest.raises(AzureError):
        source.get_container_properties()
    catalog.exists()  # the DR region answers (whether or not the catalog was made yet)
    with pytest.raises(AvereConnectionError), _client(stack["clusters"]["primary"]) as gone:
        gone.list_core_filers()
    with _client(stack["clusters"]["dr"]) as dr:
        dr.list_core_filers()
    assert cli(["region", "lose", region, *arg]) == 0
    assert "nothing to change: it already was lost" in capsys.readouterr().out

    assert cli(["region", "restore", region, *arg]) == 0
    out = capsys.readouterr().out
    assert f"account {filer.source.account} unblocked" in out and "cluster-primary started" in out
    assert source.get_container_properties().name == filer.source.container
    with _client(stack["clusters"]["primary"]) as primary:  # at the plan's address, knowing what it knew
        assert "demo-filer" in primary.list_core_filers()
    assert running_stack(stack_dir) is not None and blocked_accounts(stack_dir) == []
    assert cli(["region", "restore", region, *arg]) == 0
    assert "nothing to change: it already was restored" in capsys.readouterr().out


def _durable_probe(stack_dir: Path, tmp_path: Path, prefix: str) -> str:
    """A Durable instance (Completed) in the stack's state dir, made by a runner on that dir; its id."""
    from devstack.durable import Runner

    with mock.patch.dict(os.environ):
        runner = Runner(
            "tests.devstack.durable_apps.basics",
            stack_dir,
            VirtualClock(),
            http=False,
            settings=tmp_path / "no-settings.json",
        ).start()
        try:
            iid = runner.start_new("sequence", f"{prefix}-{uuid.uuid4().hex[:6]}", "Ada")
            assert runner.wait_for(iid, timeout=60)["runtimeStatus"] == "Completed"
        finally:
            runner.stop()
    return iid


def test_status_lists_processes_clusters_and_durable_instances_without_secrets(
    stack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    iid = _durable_probe(stack_dir, tmp_path, "status-probe")
    stack = _stack(stack_dir)
    capsys.readouterr()
    assert cli(["status", "--state-dir", str(stack_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{iid}" in out and "Completed" in out and "sequence" in out
    assert stack["clusters"]["primary"]["url"] in out and stack["clusters"]["dr"]["url"] in out
    assert "demo-filer" in out and str(stack_dir / PLAN_FILE) in out
    for name in PROCESSES:
        assert f"{name} " in out
    for secret in (
        *[c["password"] for c in stack["clusters"].values()],
        stack["identity"]["header"],
        *[a["key"] for a in stack["storage"]["accounts"].values()],
    ):
        assert secret not in out


def test_a_stopped_cluster_then_up_restarts_the_stack_and_changes_no_state(
    stack_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    stack = _stack(stack_dir)
    _use_settings(monkeypatch, stack_dir)
    names = [
        *stack["secrets"]["admin"].values(),
        *stack["secrets"]["storage_keys"].values(),
        stack["secrets"]["demo_key"],
    ]
    with KeyVault(stack["keyvault"]["url"]) as vault:
        versions = {name: [v.ref for v in vault.versions(name)] for name in names}
    assert all(len(v) == 1 for v in versions.values())

    # A workflow removed the demo filer (say, its re-add failed): `up` must leave that for the workflow.
    with _client(stack["clusters"]["primary"]) as primary:
        for activity in primary.remove_junctions("demo-filer"):
            wait_activity(primary, activity, timeout=60, poll=0.05)
        wait_activity(primary, primary.remove_core_filer("demo-filer"), timeout=60, poll=0.05)
        assert "demo-filer" not in primary.list_core_filers()

    with pytest.raises(ValueError, match=r"no process 'cluster-nowhere'.*cluster-primary"):
        stop_component(stack_dir, "cluster-nowhere")
    assert stop_component(stack_dir, "cluster-primary") is True
    assert stop_component(stack_dir, "cluster-primary") is False
    with pytest.raises(AvereConnectionError), _client(stack["clusters"]["primary"]) as gone:
        gone.list_core_filers()
    with _client(stack["clusters"]["dr"]) as dr:
        assert dr.list_core_filers() == []
    capsys.readouterr()
    assert cli(["status", "--state-dir", str(stack_dir)]) == 1
    assert [
        line.split()[3] for line in capsys.readouterr().out.splitlines() if line.startswith("cluster-primary ")
    ] == ["stopped"]

    restarted = start_stack(stack_dir)
    old_pids = {p["pid"] for p in stack["processes"]}
    assert not any(pid_alive(pid) for pid in old_pids)  # the survivors were stopped first
    assert {p["name"] for p in restarted["processes"]} == PROCESSES
    assert all(pid_alive(p["pid"]) and p["pid"] not in old_pids for p in restarted["processes"])
    assert restarted["secrets"]["new_versions_at_start"] == 0
    assert restarted["demo_filer"] == stack["demo_filer"]
    _use_settings(monkeypatch, stack_dir)  # the new identity endpoint and header
    with KeyVault(restarted["keyvault"]["url"]) as vault:
        assert {name: [v.ref for v in vault.versions(name)] for name in names} == versions
    plan = load_plan_file(stack_dir / PLAN_FILE)
    assert plan.cluster("primary").management_url == restarted["clusters"]["primary"]["url"]
    with _client(restarted["clusters"]["primary"]) as primary:
        assert "demo-filer" not in primary.list_core_filers()  # not made again over its own container


def test_down_leaves_no_process_behind(stack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Self-contained (it makes its own Durable instance), and last: it stops the module's stack."""
    iid = _durable_probe(stack_dir, tmp_path, "down-probe")
    stack = _stack(stack_dir)
    assert pids_mentioning(stack_dir)  # the probe sees a running stack (so an empty answer below means it)
    assert cli(["down", "--state-dir", str(stack_dir)]) == 0
    assert not any(pid_alive(p["pid"]) for p in stack["processes"])
    assert pids_mentioning(stack_dir) == []
    assert not (stack_dir / "stack.json").exists()
    capsys.readouterr()
    assert cli(["status", "--state-dir", str(stack_dir)]) == 3
    assert iid in capsys.readouterr().out  # the Durable instances outlive the stack
    with pytest.raises(ValueError, match="no stack in"):
        block_account(stack_dir, "source")
    assert cli(["down", "--state-dir", str(stack_dir)]) == 0  # nothing to stop is not an error
