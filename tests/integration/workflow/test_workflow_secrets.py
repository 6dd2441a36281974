"""No secret leaves Key Vault: after a backup (with a key rotation and a failed Copy Blob on the way) and a failover,
none of the environment's secret values and no SAS signature appear in any instance's status, input, output,
custom status or history, in the runner's SQLite files, in the logs, or in the catalog."""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from devstack.faultproxy.proxy import FaultProxy
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv


def via_proxy(proxy: FaultProxy) -> Any:
    """Plan edit: the app reaches both accounts through the fault proxy (so a copy can be made to fail); tiny
    copy pages, one per execution, so continue_as_new carries cursors and totals between executions."""
    def edit(plan: dict[str, Any]) -> None:
        for side in ("source", "backup"):
            account = plan["filers"][0][side]["account"]
            plan["filers"][0][side]["blob_endpoint"] = proxy.account_url(account)
        plan["copy"].update(page_size=2, parallel_pages=1, pages_per_execution=1)
    return edit


def run(runner: Any, route: str) -> dict:
    reply = http_call("POST", f"{runner.base_url}/api/{route}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=120)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    return status


def sqlite_texts(state_dir: Path) -> dict[str, str]:
    """Every row of every table (as the store holds it), and the raw database and WAL bytes, freed pages too."""
    out: dict[str, str] = {}
    db = sqlite3.connect(state_dir / "durable.sqlite3")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # table names from sqlite_master
            out[f"sqlite table {table}"] = "\n".join(repr(r) for r in rows)
    finally:
        db.close()
    for path in state_dir.glob("durable.sqlite3*"):
        out[f"file {path.name}"] = path.read_bytes().decode("latin-1")
    return out


def catalog_texts(env: AppEnv) -> dict[str, str]:
    container = env.container("dr", env.context().catalog_container)
    out = {}
    for blob in container.list_blobs():
        data = container.download_blob(blob.name).readall()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        out[f"catalog {blob.name}"] = data.decode("utf-8", "replace")
    return out


def test_no_secret_in_history_status_logs_or_catalog(
        make_app_env, faults: FaultProxy, durable_runner, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    import function_app

    caplog.set_level(logging.DEBUG)
    env: AppEnv = make_app_env(edit_plan=via_proxy(faults))
    env.write("/data/big.bin", bytes(range(256)) * 5000)
    env.write("/data/small.txt", b"small")
    env.flush()
    env.write("/scratch/dirty.txt", b"dirty at the start")
    # One Copy Blob shows pending, then fails: the engine's failure and retry paths run and report.
    failing = faults.add_rule("pending", operation="CopyBlob", polls=1, outcome="failed", times=1)
    state_dir = tmp_path / "durable"
    runner = durable_runner(function_app.app, clock=env.clock, state_dir=state_dir)

    backup = run(runner, f"backups/primary/{env.filer_name}")
    assert backup["output"]["status"] == "verified"
    assert failing.fired == 1
    failover = run(runner, f"failovers/primary/{env.filer_name}")
    assert env.read("/data/small.txt", cluster="dr") == b"small"

    statuses = runner.statuses()
    ids = {s["instanceId"] for s in statuses}
    copies = {i for i in ids if i.startswith(backup["instanceId"] + "-")}
    assert len(copies) >= 2, ids  # the pre-copy and the final pass
    assert failover["instanceId"] in ids
    texts: dict[str, str] = {}
    for instance_id in sorted(ids):
        status = runner.status(instance_id, show_history=True, show_history_output=True, show_input=True)
        texts[f"status of {instance_id}"] = json.dumps(status)
        texts[f"custom status of {instance_id}"] = json.dumps(status["customStatus"])
    texts.update(sqlite_texts(state_dir))
    texts["captured logs"] = caplog.text
    texts["log messages"] = "\n".join(r.getMessage() for r in caplog.records)
    texts.update(catalog_texts(env))

    secrets = env.secret_values()
    rotated = backup["output"]["key_secret_version"]
    assert rotated and f"passphrase {rotated}" in secrets  # the run's own new key is among the values
    assert sum(what.startswith("passphrase ") for what in secrets) == 2  # the first key and the rotated one
    # The scan reads what it should: the rotated key's version (a secret *name* part) is in the history.
    assert rotated in texts[f"status of {backup['instanceId']}"]
    assert all("copy_plan_page" in texts[f"status of {i}"] for i in copies)
    final_copy = runner.status(next(i for i in copies if i.endswith("-final")))["input"]
    carried = json.loads(final_copy) if isinstance(final_copy, str) else final_copy  # inputs go as plain JSON
    assert carried["executions"] >= 2 and carried["cursor"], "the copy pass never continued as new"

    # The SAS signatures the run actually minted (the proxy saw them as copy sources), raw and URL-encoded:
    # searching for the text "sig=" instead would match a base64 Content-MD5 ending in "sig==" (a flaky test).
    minted = faults.source_signatures()
    assert minted, "the scan would prove nothing: no copy source with a SAS went through the proxy"
    for signature in minted:
        secrets[f"SAS signature {signature[:4]}..."] = signature
        secrets[f"URL-encoded SAS signature {signature[:4]}..."] = quote(signature, safe="")
    leaks = [f"{what} in {where}" for where, text in texts.items() for what, value in secrets.items()
             if value in text]
    assert not leaks, leaks
