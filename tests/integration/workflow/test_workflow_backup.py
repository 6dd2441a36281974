"""The backup workflow end to end through the local Durable runner, the HTTP route and the local stack."""

from __future__ import annotations

import json

from azure.storage.blob import ContainerClient

from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv


def blobs(container: ContainerClient) -> dict[str, tuple]:
    """Everything a byte-for-byte copy must keep, by blob name."""
    out = {}
    for b in container.list_blobs(include=["metadata"]):
        s = b.content_settings
        out[b.name] = (
            b.size,
            bytes(s.content_md5 or b""),
            s.content_type,
            s.content_encoding,
            s.content_language,
            s.content_disposition,
            s.cache_control,
            dict(b.metadata or {}),
        )
    return out


def test_full_backup_then_filer_back_and_backup_exact(app_env: AppEnv, durable_runner) -> None:
    import function_app

    env = app_env
    env.write("/data/big.bin", bytes(range(256)) * 9000)
    env.write("/data/nested/deep/file.txt", b"hello")
    env.flush()
    env.write("/scratch/dirty.log", b"written just before the backup")  # dirty at start
    before = env.client().capture_core_filer(env.filer_name)
    runner = durable_runner(function_app.app, clock=env.clock)
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    instance = reply.json()["id"]
    status = runner.wait_for(instance, timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    out = status["output"]
    assert out["status"] == "verified"
    after = env.client().capture_core_filer(env.filer_name)
    assert after.junctions == before.junctions
    assert env.client().filer_state(env.filer_name) == "online"
    assert env.read("/scratch/dirty.log") == b"written just before the backup"
    gen = out["generation"]
    assert blobs(env.backup_container(gen)) == blobs(env.source_container())
