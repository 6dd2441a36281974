"""TLS verification off is never silent: the preflight reports it as a finding and every cluster client made
without it logs VFXTDR_TLS_UNVERIFIED; a remote host needs the plan's acknowledgement."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shared.plan.load import parse_plan
from shared.plan.model import INSECURE_ACK
from shared.runbook import services
from shared.runbook.payloads import BackupRequest
from shared.runbook.preflight import run_preflight
from tests.fixtures.workflow import AppEnv, Host, start_run

EVENT = "VFXTDR_TLS_UNVERIFIED"


def _unverified(plan: dict[str, Any]) -> None:
    plan["clusters"][0]["tls"] = {"verify": False}  # the simulator listens on 127.0.0.1: loopback


def _findings(result: Any) -> dict[str, Any]:
    return {f.check: f for f in result.findings}


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "vfxtdr.tls" and r.getMessage().startswith(EVENT)]


def test_verification_off_on_loopback_is_reported_and_logged_every_time(
    make_app_env, caplog: pytest.LogCaptureFixture
) -> None:
    env: AppEnv = make_app_env(edit_plan=_unverified)
    host = Host()
    with caplog.at_level(logging.WARNING, logger="vfxtdr.tls"):
        run = start_run(env, host, "backup", "t1")
        result = host("preflight", run)
        assert result.ok, [f for f in result.findings if not f.ok]
        tls = _findings(result)["tls"]
        assert tls.ok and f"{EVENT}: cluster primary at {env.plan.clusters[0].management_address}" in tls.detail
        assert "verification is OFF (loopback host)" in tls.detail
        assert "cluster dr at" in tls.detail and "CA file" in tls.detail  # the failover cluster is verified
        in_preflight = len(_lines(caplog))
        host("begin_backup", run)
        host("capture_filer", run)
    assert in_preflight >= 1 and len(_lines(caplog)) > in_preflight  # every client made says it again
    line = _lines(caplog)[0]
    assert line.levelno == logging.WARNING and "cluster=primary" in line.getMessage()
    assert "address=127.0.0.1:" in line.getMessage() and "loopback host" in line.getMessage()
    assert env.primary.password not in caplog.text


def test_verified_clusters_log_nothing_and_say_how_they_are_trusted(
    app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="vfxtdr.tls"):
        host = Host()
        result = host("preflight", start_run(app_env, host, "backup", "t1"))
    tls = _findings(result)["tls"]
    assert tls.ok and EVENT not in tls.detail and tls.detail.count("certificate checked against CA file") == 2
    assert not _lines(caplog)


def test_an_acknowledged_remote_host_runs_and_is_reported(app_env: AppEnv, caplog: pytest.LogCaptureFixture) -> None:
    """A remote cluster without verification, acknowledged in the plan: the preflight says so. (No network:
    its admin password secret does not exist, so nothing is sent to 10.0.0.5.)"""
    data = json.loads(json.dumps(app_env.plan_json))
    data["clusters"][0].update(
        management_address="10.0.0.5",
        admin_password_secret="no-such-secret",
        tls={"verify": False, "acknowledge_insecure": INSECURE_ACK},
    )
    with caplog.at_level(logging.WARNING, logger="vfxtdr.tls"):
        result = run_preflight(BackupRequest(cluster="primary", filer=app_env.filer_name), parse_plan(data))
    found = _findings(result)
    assert not result.ok and not found["keyvault"].ok  # the secret is missing; the TLS check still ran
    assert (
        found["tls"].ok
        and "cluster primary at 10.0.0.5: TLS verification is OFF (acknowledged in the plan)" in found["tls"].detail
    )
    assert any("address=10.0.0.5" in r.getMessage() for r in _lines(caplog))


def test_the_client_factory_refuses_an_unacknowledged_remote_host_even_past_the_plan(app_env: AppEnv) -> None:
    """Defence in depth: a Cluster that skipped plan validation still cannot make an unverified client."""
    from dataclasses import replace

    from shared.avere.errors import AvereConfigError

    cluster = app_env.plan.clusters[0]
    remote = replace(cluster, management_address="10.0.0.5", tls=replace(cluster.tls, ca_file=None, verify=False))
    with pytest.raises(AvereConfigError, match="refused unless acknowledged"):
        services.avere_client(remote, app_env.plan.keyvault_url)
