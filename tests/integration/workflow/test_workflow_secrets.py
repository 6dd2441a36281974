"""No secret leaves Key Vault: after a backup (with a key rotation and a failed Copy Blob on the way) and a failover,
none of the environment's secret values and no SAS signature appear in any instance's status, input, output,
custom status or history, in the runner's SQLite files, in the logs, or in the catalog."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from devstack.faultproxy.proxy import FaultProxy
from tests.fixtures.durable import http_call
from tests.fixtures.secrets import assert_no_leak
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


def test_no_secret_in_history_status_logs_or_catalog(
    make_app_env, faults: FaultProxy, durable_runner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
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

    ids = {s["instanceId"] for s in runner.statuses()}
    copies = {i for i in ids if i.startswith(backup["instanceId"] + "~")}
    assert len(copies) >= 2, ids  # the pre-copy and the final pass
    assert failover["instanceId"] in ids
    # The SAS signatures the run actually minted (the proxy saw them as copy sources), raw and URL-encoded:
    # searching for the text "sig=" instead would match a base64 Content-MD5 ending in "sig==" (a flaky test).
    minted = faults.source_signatures()
    assert minted, "the scan would prove nothing: no copy source with a SAS went through the proxy"
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    texts = assert_no_leak(env, runner, logs=logs, state_dir=state_dir, signatures=minted)

    secrets = env.secret_values()
    rotated = backup["output"]["key_secret_version"]
    assert rotated and f"passphrase {rotated}" in secrets  # the run's own new key is among the values
    assert sum(what.startswith("passphrase ") for what in secrets) == 2  # the first key and the rotated one
    # The scan reads what it should: the rotated key's version (a secret *name* part) is in the history.
    assert rotated in texts[f"status of {backup['instanceId']}"]
    assert rotated in texts[f"app route of {backup['instanceId']}"]  # what operators read was scanned too
    state = f"catalog filers/primary/{env.filer_name}/state.json"  # the catalog scan reads the filer's records
    assert rotated in texts[state] or backup["output"]["backup_id"] in texts[state]
    # Each pass's last execution: still planning (copy_plan_page), or copying the pages it planned.
    assert all(any(step in texts[f"status of {i}"] for step in ("copy_plan_page", "copy_start_page")) for i in copies)
    final_copy = runner.status(next(i for i in copies if i.endswith("-final")))["input"]
    carried = json.loads(final_copy) if isinstance(final_copy, str) else final_copy  # inputs go as plain JSON
    # A pass continues as new carrying its listing cursor while it plans, the pages left to copy after.
    assert carried["executions"] >= 2 and (carried["cursor"] or carried.get("work")), (
        "the copy pass never continued as new"
    )
