"""Passwords, passphrases, recovery files and storage keys never reach logs, errors or reprs."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from devstack.clock import VirtualClock
from devstack.cluster import ClusterHandle
from devstack.stack.azurite import Azurite
from shared.avere import errors as E
from shared.avere.client import AvereClient
from shared.avere.records import FilerRecord, Recovery
from tests.fixtures.cluster import add_junction, client_for, create_filer, write


def _needles(*values: str) -> list[str]:
    out: list[str] = []
    for value in values:
        out += [value, base64.b64encode(value.encode()).decode()]
        out += [line for line in value.splitlines() if len(line) >= 16]
    return out


def test_secrets_never_leak(
    primary_cluster: ClusterHandle,
    dr_cluster: ClusterHandle,
    azurite: Azurite,
    cluster_clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []  # every text a user or a log could show
    client = client_for(primary_cluster, cluster_clock)
    filer = create_filer(client, azurite, passphrase="first-secret-phrase")
    add_junction(client, "vserver", "/projects", "projects")
    write(client, "/projects/a.txt", b"data")
    key = client.generate_master_key("projects", "second-secret-phrase")
    client.activate_master_key("projects", key.key_id, key.recovery_file)
    recovery = Recovery("second-secret-phrase", key.recovery_file)
    record = client.capture_core_filer("projects")
    seen += [
        repr(client),
        repr(key),
        repr(recovery),
        json.dumps(FilerRecord.to_json(record)),
        repr(record),
        json.dumps(client.call("sim.callLog")),
        json.dumps(client.call("corefiler.listCredentials")),
        json.dumps(client.call("corefiler.get", "projects")),
    ]

    dr = client_for(dr_cluster, cluster_clock, retries=1)
    account = azurite.accounts["source"]
    dr.ensure_credential(filer.credential, account.name, account.key)
    failures = [
        lambda: dr.upload_recovery_file("nosuch", recovery),
        lambda: dr.call(
            "corefiler.createCredential",
            "bad",
            "azure-storage",
            {"storageKey": f"BASE64:{account.key}!!"},
            secrets=[account.key],
        ),
        lambda: client.call("corefiler.activateMasterKey", "projects", "0000", key.recovery_file),
        lambda: AvereClient(
            primary_cluster.url, "admin", "Wr0ng-Passw0rd!", ca_file=str(primary_cluster.ca_cert), retries=0
        ).list_core_filers(),
        lambda: AvereClient(
            primary_cluster.url, "admin", primary_cluster.password, fingerprint_sha256="00" * 32
        ).list_core_filers(),
    ]
    # A server that echoes secrets back: the client scrubs what it knows.
    client.call(
        "sim.injectFault",
        "corefiler.uploadKeyRecoveryFile",
        103,
        f"bad file {key.recovery_file} for {recovery.passphrase} / {primary_cluster.password}",
        1,
    )
    failures.append(
        lambda: client.call(
            "corefiler.uploadKeyRecoveryFile",
            "projects",
            recovery.passphrase,
            key.recovery_file,
            secrets=[recovery.passphrase, key.recovery_file],
        )
    )
    for failure in failures:
        with pytest.raises(E.AvereError) as err:
            failure()
        seen += [str(err.value), repr(err.value), getattr(err.value, "text", "")]
    assert "***" in seen[-1]

    secrets = _needles(
        primary_cluster.password,
        dr_cluster.password,
        "first-secret-phrase",
        "second-secret-phrase",
        key.recovery_file,
        account.key,
        f"BASE64:{account.key}",
        "Wr0ng-Passw0rd!",
    )
    if filer.key is not None:
        secrets += _needles(filer.key.recovery_file)
    text = caplog.text + "\n".join(seen)
    assert caplog.records, "logging was captured"
    leaked = [s[:12] + "..." for s in secrets if s in text]
    assert leaked == []
