"""The DR plan: good plans, defaults, helpers, serialisation, loading from settings, and the validate CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from azure.functions._durable_functions import df_dumps, df_loads

from shared.plan.cli import EXAMPLE, main
from shared.plan.load import (
    Filer,
    Plan,
    PlanError,
    UnknownClusterError,
    UnknownFilerError,
    load_plan_file,
    load_plan_from_env,
    load_plan_text,
    parse_plan,
)
from shared.plan.model import INSECURE_ACK, CopySettings, GuardSettings, TlsTrust, default_containers
from tests.paths import REPO


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def local_stack_plan(port: int = 10000) -> dict[str, Any]:
    """A plan as the local stack uses it: Azurite path-style endpoints, a loopback vault, account keys."""
    base = f"http://127.0.0.1:{port}"
    return {
        "version": 1,
        "keyvault_url": "https://127.0.0.1:8443",
        "schedule": "0 0 2 * * *",
        "rpo_hours": 24,
        "storage_auth": "key",
        "clusters": [
            {
                "name": "sim",
                "management_address": "127.0.0.1:9443",
                "region": "westus2",
                "admin_password_secret": "sim-admin-password",
                "tls": {"ca_file": "/tmp/ca.pem"},
            }
        ],
        "filers": [
            {
                "cluster": "sim",
                "name": "fs1",
                "source": {
                    "account": "vfxtsource",
                    "container": "fs1",
                    "region": "westus2",
                    "blob_endpoint": f"{base}/vfxtsource",
                    "key_secret": "vfxtsource-key",
                },
                "backup": {
                    "account": "vfxtdr",
                    "blob_endpoint": f"{base}/vfxtdr",
                    "region": "eastus2",
                    "storage_key_secret": "vfxtdr-key",
                },
            }
        ],
    }


def test_example_is_valid_and_complete() -> None:
    plan = parse_plan(example())
    assert plan.version == 1
    assert [c.name for c in plan.clusters] == ["primary"]
    assert [c.name for c in plan.dr_clusters] == ["dr-east"]
    assert [f.key for f in plan.filers] == ["primary/projects", "primary/renders"]
    assert plan.warnings() == ()
    # every top-level field is shown in the example, so the example documents the whole schema
    assert set(EXAMPLE) == set(Plan.to_json(plan))


def test_defaults() -> None:
    data = local_stack_plan()
    plan = parse_plan(data)
    assert plan.short_offline_window is True
    assert plan.catalog_container == "vfxtdr-catalog"
    assert plan.copy == CopySettings(
        engine="copy",
        concurrency=64,
        page_size=5000,
        poll_interval_seconds=15,
        pending_limit_seconds=3600,
        parallel_pages=4,
        pages_per_execution=50,
    )
    assert plan.guard == GuardSettings(max_delete_fraction=0.10, min_count=100, approval_timeout_hours=24)
    assert plan.dr_clusters == ()
    filer = plan.filers[0]
    assert filer.enabled is True
    assert filer.max_offline_minutes == 30
    assert filer.failover_cluster is None
    assert filer.backup.containers == ("fs1-a", "fs1-b")
    cluster = plan.clusters[0]
    assert cluster.admin_user == "admin"
    assert cluster.rpc_path == "/cgi-bin/rpc2.py"
    assert cluster.management_url == "https://127.0.0.1:9443/cgi-bin/rpc2.py"
    assert filer.source.account_url == "http://127.0.0.1:10000/vfxtsource"


@pytest.mark.parametrize(
    ("name", "containers"),
    [
        ("fs1", ("fs1-a", "fs1-b")),
        ("Projects_2024.main", ("projects-2024-main-a", "projects-2024-main-b")),
        ("x" * 64, ("x" * 61 + "-a", "x" * 61 + "-b")),
    ],
)
def test_default_backup_containers_are_valid_container_names(name: str, containers: tuple[str, str]) -> None:
    assert default_containers(name) == containers
    data = local_stack_plan()
    data["filers"][0]["name"] = name
    assert parse_plan(data).filers[0].backup.containers == containers


def test_generations_default_to_two_and_name_their_containers_predictably() -> None:
    data = local_stack_plan()
    filer = parse_plan(data).filers[0]
    assert filer.backup.generations == 2 and filer.generation_containers() == ("fs1-a", "fs1-b")
    data["filers"][0]["backup"] |= {"containers": ["old-one", "old-two"], "generations": 5}
    filer = parse_plan(data).filers[0]
    # a and b stay the containers the plan always named (existing backups keep being read); c.. from the rule
    assert filer.generation_containers() == ("old-one", "old-two", "fs1-c", "fs1-d", "fs1-e")
    data["filers"][0]["backup"]["container_prefix"] = "keep"
    assert parse_plan(data).filers[0].generation_containers()[2:] == ("keep-c", "keep-d", "keep-e")
    data["filers"][0]["backup"]["generations"] = 26
    assert parse_plan(data).filers[0].generation_containers()[-1] == "keep-z"


def test_a_plan_without_retention_fields_writes_back_as_it_was() -> None:
    """Plans and payloads written before retention existed: the same JSON, and the same repr."""
    data = local_stack_plan()
    plan = parse_plan(data)
    backup = plan.to_json()["filers"][0]["backup"]
    assert "generations" not in backup and "container_prefix" not in backup
    assert "generations" not in repr(plan.filers[0].backup)
    data["filers"][0]["backup"] |= {"generations": 4, "container_prefix": "fs1"}
    again = parse_plan(data).to_json()["filers"][0]["backup"]
    assert (again["generations"], again["container_prefix"]) == (4, "fs1")


def test_derived_later_generation_names_that_collide_say_how_to_fix() -> None:
    data = example()
    data["filers"][0]["backup"].pop("container_prefix")
    data["filers"][1]["backup"]["containers"] = ["renders-a", "projects-d"]
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    assert err.value.problems == (
        "filers[1].backup.containers[1]: 'projects-d' in account 'averedrbackup' is already a backup generation "
        "of primary/projects",
    )
    data["filers"][1]["backup"] |= {"containers": ["renders-a", "renders-b"], "generations": 3}
    data["filers"][0]["backup"]["containers"] = ["renders-c", "projects-b"]
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    assert err.value.problems == (
        "filers[1].backup.container_prefix: 'renders-c' in account 'averedrbackup' is already a backup generation "
        "of primary/projects (generation c) (the name is derived from the filer name: set "
        "backup.container_prefix)",
    )


def test_tls_forms() -> None:
    data = example()
    fingerprint = "3f1a6c229e0b47d58a11c0fe7239bb045de698217caa1360f40eb255c9387de1"
    data["clusters"][0]["tls"] = {"fingerprint_sha256": fingerprint}
    tls = parse_plan(data).clusters[0].tls
    assert tls.fingerprint_sha256 == ":".join(fingerprint.upper()[i : i + 2] for i in range(0, 64, 2))
    assert tls.verify is True
    assert tls.client_kwargs() == {
        "ca_file": None,
        "fingerprint_sha256": tls.fingerprint_sha256,
        "insecure": False,
        "insecure_acknowledged": False,
    }
    data["clusters"][0]["tls"] = {"verify": False, "acknowledge_insecure": INSECURE_ACK}
    unverified = parse_plan(data).clusters[0].tls
    assert unverified == TlsTrust(verify=False, acknowledge_insecure=INSECURE_ACK)
    assert unverified.client_kwargs() == {
        "ca_file": None,
        "fingerprint_sha256": None,
        "insecure": True,
        "insecure_acknowledged": True,
    }
    assert TlsTrust.from_json(TlsTrust.to_json(unverified)) == unverified  # the acknowledgement round-trips
    data["clusters"][0].update(management_address="127.0.0.1:9443", tls={"verify": False})
    assert parse_plan(data).clusters[0].tls == TlsTrust(verify=False)  # loopback: no acknowledgement needed
    data["clusters"][0]["tls"] = {"ca_file": "/etc/ssl/avere-ca.pem"}
    assert parse_plan(data).clusters[0].tls == TlsTrust(ca_file="/etc/ssl/avere-ca.pem")


def test_lookups_and_enabled_filers() -> None:
    data = example()
    data["filers"][1]["enabled"] = False
    plan = parse_plan(data)
    assert plan.cluster("primary").region == "westus2"
    assert plan.cluster("dr-east").region == "eastus2"
    assert plan.dr_cluster("dr-east").name == "dr-east"
    assert plan.filer("primary", "projects").source.container == "projects"
    assert plan.filer_by_key("primary/renders").name == "renders"
    assert [f.key for f in plan.enabled_filers()] == ["primary/projects"]
    with pytest.raises(UnknownClusterError, match=r"'nope'.*known: primary, dr-east"):
        plan.cluster("nope")
    with pytest.raises(UnknownClusterError, match=r"'primary'.*dr_clusters"):
        plan.dr_cluster("primary")
    with pytest.raises(UnknownFilerError, match=r"'scratch' on cluster 'primary'.*primary/projects"):
        plan.filer("primary", "scratch")
    with pytest.raises(UnknownClusterError, match=r"no protected cluster 'dr-east'.*known: primary\)"):
        plan.filer("dr-east", "projects")
    with pytest.raises(UnknownFilerError, match="not a filer key"):
        plan.filer_by_key("projects")
    assert isinstance(UnknownFilerError("x"), LookupError)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # loose mode says it is deprecated, and works
@pytest.mark.parametrize("strict", ["0", "1"])
def test_plan_round_trips_through_the_durable_codec(strict: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_FUNCTIONS_DURABLE_STRICT_TYPING", strict)
    plan = parse_plan(example())
    assert Plan.from_json(json.loads(json.dumps(Plan.to_json(plan)))) == plan
    assert df_loads(df_dumps(plan), expected_type=Plan) == plan
    filer = plan.filers[1]
    assert df_loads(df_dumps(filer), expected_type=Filer) == filer
    assert Filer.from_json(Filer.to_json(filer)) == filer
    # parts validate on the way in too: a tampered payload is refused
    bad = Filer.to_json(filer) | {"max_offline_minutes": -1}
    with pytest.raises(PlanError, match="max_offline_minutes: must be between 1"):
        Filer.from_json(bad)


def test_load_from_env_text_and_file(tmp_path: Path) -> None:
    text = json.dumps(example())
    assert load_plan_from_env({"VFXTDR_PLAN": text}).filers[0].name == "projects"
    path = tmp_path / "plan.json"
    path.write_text(text)
    assert load_plan_from_env({"VFXTDR_PLAN_FILE": str(path)}) == load_plan_file(path)


def test_load_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="set the app setting VFXTDR_PLAN"):
        load_plan_from_env({})
    with pytest.raises(PlanError, match="set only one"):
        load_plan_from_env({"VFXTDR_PLAN": "{}", "VFXTDR_PLAN_FILE": "/x.json"})
    with pytest.raises(PlanError, match=r"missing\.json: cannot read the plan file"):
        load_plan_from_env({"VFXTDR_PLAN_FILE": str(tmp_path / "missing.json")})
    with pytest.raises(PlanError, match=r"VFXTDR_PLAN: not valid JSON: .* line 1 column 2") as err:
        load_plan_from_env({"VFXTDR_PLAN": "{'version': 1, 'hunter2-secret': 1}"})
    assert "hunter2" not in str(err.value)


def test_duplicate_json_keys_are_errors() -> None:
    text = json.dumps(example())[:-1] + ', "schedule": "0 0 3 * * *"}'
    with pytest.raises(PlanError, match="'schedule' appears twice"):
        load_plan_text(text)


def test_rpo_and_other_warnings() -> None:
    data = example()
    data["schedule"] = "0 0 2 * * mon-fri"
    data["rpo_hours"] = 24
    data["filers"][0]["failover_cluster"] = "dr-east"
    data["dr_clusters"][0]["region"] = "centralus"
    warnings = parse_plan(data).warnings()
    assert any(w.startswith("rpo_hours: the schedule leaves up to 72 h") for w in warnings)
    assert any("filers[0].failover_cluster: 'dr-east' is in centralus" for w in warnings)
    data = local_stack_plan()
    data["filers"][0]["enabled"] = False
    assert "filers: every filer is disabled, nothing will be backed up" in parse_plan(data).warnings()
    data["filers"] = []
    assert "filers: none listed, nothing will be backed up" in parse_plan(data).warnings()


def test_cli_validate_ok_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.json"
    data = example()
    data["rpo_hours"] = 12
    path.write_text(json.dumps(data))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "plan OK: 1 clusters, 2 filers"
    assert out[-1].startswith("warning: rpo_hours:")


def test_cli_validate_explains_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = example()
    del data["filers"][1]["backup"]["account"]
    data["filers"][0]["source"]["region"] = "eastus2"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "plan invalid: 3 problems"
    assert (
        "filers[1].backup.account: required  -- the field has no default and the plan cannot work without it"
    ) in lines
    assert any(
        line.startswith("filers[0].backup.region: is the source's region (eastus2)")
        and "does not survive the loss of that region" in line
        for line in lines
    )
    assert any(
        line.startswith(
            "filers[1].source.region: account 'avereprimarydata' has region westus2 here "
            "but eastus2 at filers[0].source.region"
        )
        for line in lines
    )


def test_cli_as_a_module_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    printed = subprocess.run(
        [sys.executable, "-m", "shared.plan", "example"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    good.write_text(printed)
    bad.write_text('{"version": 1}')
    ok = subprocess.run(
        [sys.executable, "-m", "shared.plan", "validate", str(good)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("plan OK: 1 clusters, 2 filers")
    failed = subprocess.run(
        [sys.executable, "-m", "shared.plan", "validate", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 2
    assert "keyvault_url: required" in failed.stdout
    piped = subprocess.run(
        [sys.executable, "-m", "shared.plan", "validate", "-"],
        cwd=REPO,
        input=printed,
        capture_output=True,
        text=True,
        check=False,
    )
    assert piped.returncode == 0
