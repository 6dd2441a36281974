"""`python -m shared.blobcopy`: container URLs with SAS or connection strings, JSON report, exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from devstack.stack.ports import free_port
from shared.blobcopy.cli import main
from tests.fixtures.copy import AWKWARD_NAMES, blob_view, seed_awkward
from tests.paths import REPO

REPORT_KEYS = {"listed", "copied", "skipped", "deleted", "failed", "bytes_copied", "verified", "mismatches"}


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--poll-interval", "0.01"], out, err)
    return code, out.getvalue(), err.getvalue()


def _conn(copy_stack, role, container, **extra):
    text = copy_stack.azurite.connection_string(role) + f"Container={container}"
    return text + "".join(f";{k}={v}" for k, v in extra.items())


def _sas_url(copy_stack, role, container, permission, prefix=""):
    acct = copy_stack.azurite.accounts[role]
    sas = generate_container_sas(
        acct.name,
        container,
        account_key=acct.key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    path = f"{container}/{prefix}" if prefix else container
    return f"{copy_stack.azurite.blob_endpoint}/{acct.name}/{path}?{sas}", sas


def test_cli_copies_a_container_and_a_second_run_copies_nothing(copy_stack, monkeypatch):
    src = copy_stack.new_container("source", "cli")
    seed_awkward(src)
    dest = copy_stack.container_name("bak")
    monkeypatch.setenv("CLI_TEST_SOURCE", _conn(copy_stack, "source", src.container_name))
    code, out, err = _cli("--source", "env:CLI_TEST_SOURCE", "--dest", _conn(copy_stack, "dr", dest), "--json")
    report = json.loads(out)
    assert code == 0 and set(report) >= REPORT_KEYS and report["verified"] is True
    assert (report["listed"], report["copied"]) == (len(AWKWARD_NAMES),) * 2
    assert "pages 1/1 verified" in err
    assert blob_view(copy_stack.client("dr").get_container_client(dest)) == blob_view(src)
    code, out, _ = _cli("--source", "env:CLI_TEST_SOURCE", "--dest", _conn(copy_stack, "dr", dest), "--json")
    assert code == 0 and (json.loads(out)["copied"], json.loads(out)["skipped"]) == (0, len(AWKWARD_NAMES))


def test_cli_with_sas_urls_and_a_catalog(copy_stack):
    src = copy_stack.new_container("source", "sas")
    seed_awkward(src)
    dest = copy_stack.container_name("bak")
    source_url, source_sig = _sas_url(copy_stack, "source", src.container_name, "rl")
    dest_url, dest_sig = _sas_url(copy_stack, "dr", dest, "racwdl")
    catalog_url, catalog_sig = _sas_url(copy_stack, "dr", "catalog", "racwdl", prefix="cli/sas-test")
    args = ("--source", source_url, "--dest", dest_url, "--catalog", catalog_url, "--json")
    code, _, err = _cli(*args)
    assert code == 2 and "does not exist" in err  # a container SAS cannot create its container
    copy_stack.client("dr").get_container_client(dest).create_container()
    catalog = copy_stack.client("dr").get_container_client("catalog")
    if not catalog.exists():
        catalog.create_container()
    code, out, err = _cli(*args)
    assert code == 0, err
    assert json.loads(out)["copied"] == len(AWKWARD_NAMES)
    code, out, err = _cli(*args, "--page-size", "3")
    report = json.loads(out)
    assert code == 0 and (report["copied"], report["skipped"]) == (0, len(AWKWARD_NAMES))
    assert report["manifest_state"] == "complete"
    for sas in (source_sig, dest_sig, catalog_sig):
        signature = sas.split("sig=")[1].split("&")[0]
        assert signature not in out + err


def test_cli_mirror_guard_exit_codes(copy_stack):
    src = copy_stack.new_container("source", "mir")
    for i in range(4):
        src.upload_blob(f"keep{i}", b"k")
    dst = copy_stack.new_container("dr", "mir")
    for i in range(5):
        dst.upload_blob(f"extra{i}", b"e")
    args = (
        "--source",
        _conn(copy_stack, "source", src.container_name),
        "--dest",
        _conn(copy_stack, "dr", dst.container_name),
        "--mode",
        "mirror",
        "--json",
        "--guard-min",
        "2",
        "--guard-fraction",
        "0.1",
    )
    code, out, _ = _cli(*args)
    assert code == 3 and json.loads(out)["needs_approval"] is True
    assert len(list(dst.list_blobs())) == 9
    code, out, _ = _cli(*args, "--approve-deletes")
    assert code == 0 and json.loads(out)["deleted"] == 5
    assert sorted(b.name for b in dst.list_blobs()) == [f"keep{i}" for i in range(4)]


@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "sync"],
        ["--dest"],
        ["--source", "AccountName=x;AccountKey=eA=="],
        ["--source", "env:CLI_TEST_NOT_SET"],
        ["--concurrency", "0"],
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(copy_stack, argv):
    src = copy_stack.new_container("source", "bad")
    dest = copy_stack.container_name("bak")
    base = {"--source": _conn(copy_stack, "source", src.container_name), "--dest": _conn(copy_stack, "dr", dest)}
    if argv[0] in base and len(argv) == 2:
        base[argv[0]] = argv[1]
        argv = []
    elif argv == ["--dest"]:
        base.pop("--dest")
        argv = []
    flat = [x for pair in base.items() for x in pair] + argv
    code, out, err = _cli(*flat)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("blobcopy: error:")
    assert not copy_stack.client("dr").get_container_client(dest).exists()


def test_cli_unreachable_accounts_exit_2_and_write_nothing(copy_stack):
    src = copy_stack.new_container("source", "unr")
    src.upload_blob("x", b"1")
    dest = copy_stack.container_name("bak")
    key = copy_stack.azurite.accounts["dr"].key
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName=vfxtdr;AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{free_port()}/vfxtdr;Container={dest}"
    )
    code, _, err = _cli("--source", _conn(copy_stack, "source", src.container_name), "--dest", dead)
    assert code == 2 and "not reachable" in err  # (a hang would hit the test timeout, not a wall-clock bound)
    assert key not in err
    code, _, err = _cli(
        "--source", _conn(copy_stack, "source", "no-such-source"), "--dest", _conn(copy_stack, "dr", dest)
    )
    assert code == 2 and "does not exist" in err
    code, _, err = _cli(
        "--source",
        _conn(copy_stack, "source", src.container_name),
        "--dest",
        _conn(copy_stack, "dr", dest),
        "--catalog",
        dead.replace(dest, "catalog"),
    )
    assert code == 2
    assert not copy_stack.client("dr").get_container_client(dest).exists()
    write_only, _ = _sas_url(copy_stack, "source", src.container_name, "w")
    code, _, err = _cli("--source", write_only, "--dest", _conn(copy_stack, "dr", dest))
    assert code == 2 and "read (r) and list (l)" in err


def test_cli_exit_1_when_the_copy_does_not_verify(copy_stack, faults):
    src = copy_stack.new_container("source", "nv")
    src.upload_blob("x", b"1")
    dest = copy_stack.container_name("bak")
    faults.add_rule("pending", polls=0, outcome="failed")
    proxied = copy_stack.azurite.connection_string("dr").replace(copy_stack.azurite.blob_endpoint, copy_stack.proxy.url)
    source = copy_stack.azurite.connection_string("source").replace(
        copy_stack.azurite.blob_endpoint, copy_stack.proxy.url
    )
    code, out, _ = _cli(
        "--source", source + f"Container={src.container_name}", "--dest", proxied + f"Container={dest}", "--json"
    )
    assert code == 1 and json.loads(out)["failed"] == 1 and json.loads(out)["verified"] is False


def test_module_entry_point_prints_one_json_line(copy_stack):
    src = copy_stack.new_container("source", "mod")
    src.upload_blob("a", b"1")
    dest = copy_stack.container_name("bak")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.blobcopy",
            "--source",
            _conn(copy_stack, "source", src.container_name),
            "--dest",
            _conn(copy_stack, "dr", dest),
            "--json",
            "--poll-interval",
            "0.01",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["copied"] == 1
