"""What the drill tests share: running backups and drills through the routes, and views of production to compare."""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.catalog.store import filer_prefix
from shared.runbook.drill import scratch_prefix
from shared.runbook.drill_payloads import drill_instance_id
from tests.fixtures.durable import http_call
from tests.fixtures.workflow import AppEnv

FILES = {
    "/data/big.bin": bytes(range(256)) * 9000,
    "/data/nested/deep/file.txt": b"hello from the primary region",
    "/scratch/report.csv": b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * 3) for i in range(400)),
}


def write_files(env: AppEnv) -> None:
    for path, data in FILES.items():
        env.write(path, data)
    env.flush()


def backup_now(env: AppEnv, runner: Any) -> dict[str, Any]:
    reply = http_call("POST", f"{runner.base_url}/api/backups/primary/{env.filer_name}")
    assert reply.status == 202, reply.body
    status = runner.wait_for(reply.json()["id"], timeout=240)
    assert status["runtimeStatus"] == "Completed", json.dumps(status, indent=1)[:3000]
    assert status["output"]["status"] == "verified"
    return dict(status["output"])


def start_drill(env: AppEnv, runner: Any, query: str = "") -> str:
    reply = http_call("POST", f"{runner.base_url}/api/drills/primary/{env.filer_name}{query}")
    assert reply.status == 202, reply.body
    body = reply.json()
    assert body["id"] == f"drill~primary~{env.filer_name}" and body["statusUri"]
    return str(body["id"])


def drill_now(env: AppEnv, runner: Any, query: str = "", timeout: float = 240) -> dict[str, Any]:
    return dict(runner.wait_for(start_drill(env, runner, query), timeout=timeout))


def production(env: AppEnv) -> dict[str, Any]:
    """The primary filer and both backup containers as a drill must leave them: state, junctions, every blob's
    ETag, last-modified, size, MD5 and metadata, and the containers' own properties (lease, metadata)."""
    out: dict[str, Any] = {
        "filer_state": env.client().filer_state(env.filer_name),
        "filer": env.client().capture_core_filer(env.filer_name).to_json(),
    }
    for gen in ("a", "b"):
        container = env.backup_container(gen)
        try:
            props = container.get_container_properties()
        except ResourceNotFoundError:
            out[gen] = None
            continue
        blobs = {
            b.name: (
                b.etag,
                b.last_modified,
                b.size,
                bytes(b.content_settings.content_md5 or b""),
                dict(b.metadata or {}),
                b.lease.state,
                b.lease.status,
            )
            for b in container.list_blobs(include=["metadata"])
        }
        out[gen] = {
            "etag": props.etag,
            "metadata": dict(props.metadata or {}),
            "lease": props.lease.state,
            "blobs": blobs,
        }
    return out


def catalog_view(env: AppEnv) -> dict[str, Any]:
    """The filer's catalog: its state document's content and every other blob with its ETag, drill records and
    drill runs' plan snapshots apart (under "drills", by name)."""
    container = env.container("dr", env.context().catalog_container)
    prefix = filer_prefix("primary", env.filer_name)
    state = json.loads(container.download_blob(prefix + "state.json").readall())
    blobs = {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix)}
    drills = {
        n: e
        for n, e in blobs.items()
        if n.startswith((prefix + "drills/", prefix + f"runs/{drill_instance_id('primary', env.filer_name)}"))
    }
    others = {n: e for n, e in blobs.items() if n not in drills and n != prefix + "state.json"}
    return {"state": state, "blobs": others, "drills": drills}


def scratch_containers(env: AppEnv) -> list[str]:
    """This filer's drills' scratch containers in the backup account."""
    prefix = scratch_prefix("primary", env.filer_name)
    return sorted(c.name for c in env.service("dr").list_containers(name_starts_with=prefix))
