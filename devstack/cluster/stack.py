"""Stack component: both simulated clusters as processes, and an encrypted demo core filer on the primary."""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from devstack.cluster.keys import signature as recovery_signature
from devstack.cluster.model import write_private_json
from devstack.cluster.runner import USER, admin_password, cluster_dir
from devstack.cluster.waits import wait_activity
from devstack.paths import REPO_ROOT
from devstack.stack.ports import LOOPBACK, free_port, wait_for_port
from devstack.stack.procs import Proc, spawn, spawn_listening, stop
from devstack.stack.tls import ensure_ca
from shared.avere.client import AvereClient

ROLES = (("primary", "source"), ("dr", "dr"))  # cluster name -> storage account role (its region)
DEMO = "demo-filer"
DEMO_VSERVER = "vserver"
DEMO_POLICY = "demo_clients"
DEMO_JUNCTIONS = (("/demo/projects", "projects", ""), ("/demo/scratch", "scratch", DEMO_POLICY))
DEMO_FILES = {
    "/demo/projects/README.txt": b"vFXT DR demo: files written through the primary cluster.\n",
    "/demo/projects/results/run-001.csv": b"step,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(500)),
    "/demo/projects/model.bin": bytes(range(256)) * 6000,  # 1.5 MB: several objects in the container
    "/demo/scratch/notes.md": b"# scratch\nDirty until the next flush.\n",
}
START_TIMEOUT = 30.0
# How much faster than real time the clusters' activities run: tests set it; the demo keeps real time.
SPEEDUP_ENV = "DEVSTACK_CLUSTER_SPEEDUP"
SECRET_FIELDS = ("passphrase", "recovery_file")  # what "demo_filer" holds that must not reach stack.json


def default_speedup() -> float:
    """DEVSTACK_CLUSTER_SPEEDUP (a number > 0), else 1.0 (real time)."""
    raw = os.environ.get(SPEEDUP_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{SPEEDUP_ENV} must be a number > 0, got {raw[:20]!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{SPEEDUP_ENV} must be a number > 0, got {raw[:20]!r}")
    return value


def _argv(state_dir: Path, name: str, region: str, blob_endpoint: str, *, speedup: float, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "devstack.cluster",
        "--state-dir",
        str(state_dir),
        "--name",
        name,
        "--region",
        region,
        "--blob-endpoint",
        blob_endpoint,
        "--port",
        str(port),
        "--speedup",
        str(speedup),
    ]


def _spawn_cluster(state_dir: Path, name: str, region: str, blob_endpoint: str, speedup: float) -> tuple[Proc, str]:
    port = free_port()
    proc = spawn(
        f"cluster-{name}",
        _argv(state_dir, name, region, blob_endpoint, speedup=speedup, port=port),
        state_dir / "logs",
        cwd=str(REPO_ROOT),
    )
    try:
        wait_for_port(port, START_TIMEOUT)
    except TimeoutError:
        stop(proc)
        raise RuntimeError(f"cluster {name} did not start; see {proc.log}") from None
    if not proc.alive():
        raise RuntimeError(f"cluster {name} exited at start; see {proc.log}")
    return proc, f"https://{LOOPBACK}:{port}/cgi-bin/rpc2.py"


def start_clusters(state_dir: Path, stack: dict, *, speedup: float | None = None) -> tuple[list[Proc], dict]:
    """Start the primary and DR simulators, make sure the demo filer exists on the primary.

    Returns the processes and {"clusters": {...}, "demo_filer": {...}}. "demo_filer" holds the demo key's
    key_id, signature, passphrase and recovery file: the caller stores the key in Key Vault and keeps
    SECRET_FIELDS out of stack.json. speedup defaults to default_speedup().
    """
    speedup = default_speedup() if speedup is None else speedup
    state_dir = Path(state_dir).resolve()
    storage = stack["storage"]
    ca_cert, _ = ensure_ca(state_dir / "tls")  # before the processes start, so they never race for it
    procs: list[Proc] = []
    clusters: dict[str, dict[str, str]] = {}
    try:
        for name, role in ROLES:
            region = storage["accounts"][role]["region"]
            password = admin_password(cluster_dir(state_dir, name))
            proc, url = _spawn_cluster(state_dir, name, region, storage["blob_endpoint"], speedup)
            procs.append(proc)
            clusters[name] = {
                "url": url,
                "user": USER,
                "password": password,
                "ca_cert": str(ca_cert),
                "region": region,
                "speedup": speedup,
            }
        demo = ensure_demo_filer(state_dir, clusters["primary"], storage)
    except BaseException:
        for proc in reversed(procs):
            stop(proc)
        raise
    return procs, {"clusters": clusters, "demo_filer": demo}


def restart_cluster(state_dir: Path, stack: dict, name: str) -> Proc:
    """Start a stopped cluster simulator again on its own port, with its own state and speed (a region
    restored): the plan's management address still holds, and the cluster knows all it knew. StartError when
    another process took the port meanwhile."""
    info = stack["clusters"][name]
    port = urlsplit(info["url"]).port
    if port is None:
        raise ValueError(f"cluster {name}: no port in {info['url']}")
    speedup = float(info.get("speedup", default_speedup()))
    state_dir = Path(state_dir)
    proc, _ = spawn_listening(
        f"cluster-{name}",
        lambda p: _argv(state_dir, name, info["region"], stack["storage"]["blob_endpoint"], speedup=speedup, port=p),
        state_dir / "logs",
        cwd=str(REPO_ROOT),
        timeout=START_TIMEOUT,
        port=port,
    )
    return proc


def _client(info: dict[str, str]) -> AvereClient:
    return AvereClient(info["url"], info["user"], info["password"], ca_file=info["ca_cert"], retries=3, backoff=0.2)


def _wait(client: AvereClient, activities: list[str]) -> None:
    for activity in activities:
        wait_activity(client, activity, timeout=120, poll=0.1)


def ensure_demo_filer(state_dir: Path, primary: dict[str, str], storage: dict[str, Any]) -> dict[str, Any]:
    """The demo filer: encrypted, in the source account's container 'demo-filer', two junctions, files."""
    secrets_file = cluster_dir(state_dir, "primary") / "demo_filer.json"
    account = storage["accounts"]["source"]
    bucket = f"{account['name']}/{DEMO}"
    credential = f"azure-storage-{account['name']}"
    info = {
        "cluster": "primary",
        "name": DEMO,
        "bucket": bucket,
        "account_role": "source",
        "credential": credential,
        "vserver": DEMO_VSERVER,
        "junctions": [j[0] for j in DEMO_JUNCTIONS],
    }
    if secrets_file.exists():
        saved = json.loads(secrets_file.read_text())
        if not saved.pop("complete", True):
            raise RuntimeError(
                f"the demo filer's setup was interrupted ({secrets_file}); "
                f"remove the state dir {state_dir} to start afresh"
            )
        # Made before: the workflow may have removed it since (a backup's offline window, a failed re-add,
        # a failover), which is the workflow's to repair, so it is never made again.
        if not saved.get("signature"):  # saved before signatures were kept: derive it as generate did
            saved["signature"] = recovery_signature(saved["recovery_file"])
        return {**info, **saved}
    with _client(primary) as client:
        if DEMO in client.list_core_filers():
            raise RuntimeError(
                f"the demo filer exists but its key file {secrets_file} is gone; "
                f"remove the state dir {state_dir} to start afresh"
            )
        shared_key = {"account_name": account["name"], "account_key": account["key"]}
        service = BlobServiceClient(f"{storage['blob_endpoint']}/{account['name']}", credential=shared_key)
        try:
            service.create_container(DEMO)
        except ResourceExistsError:
            if any(True for _ in service.get_container_client(DEMO).list_blobs()):
                raise RuntimeError(
                    f"container {bucket} holds data the primary cluster no longer knows; "
                    f"remove the state dir {state_dir} to start afresh"
                ) from None
        client.ensure_credential(credential, account["name"], account["key"])
        created = client.call(
            "corefiler.createCloudFiler",
            DEMO,
            {
                "cloudType": "azure",
                "bucket": bucket,
                "serverName": f"{account['name']}.blob.core.windows.net",
                "cloudCredential": credential,
                "cryptoMode": "CBC-AES-256-HMAC-SHA-512",
                "compressMode": "LZ4",
                "sslVerifyMode": "DISABLED",
                "https": "yes",
                "port": "443",
                "cachePolicyName": "Full Caching",
                "bucketContents": "empty",
            },
        )
        _wait(client, [created])
        passphrase = secrets.token_urlsafe(24)
        key = client.generate_master_key(DEMO, passphrase)
        saved = {
            "key_id": key.key_id,
            "signature": key.signature,
            "passphrase": passphrase,
            "recovery_file": key.recovery_file,
        }
        write_private_json(secrets_file, {**saved, "complete": False})  # before activation, as the runbook demands
        client.activate_master_key(DEMO, key.key_id, key.recovery_file)
        if DEMO_POLICY not in client.call("nfs.listPolicies", DEMO_VSERVER):
            client.call("nfs.addPolicy", DEMO_VSERVER, DEMO_POLICY)
            client.call(
                "nfs.addRule",
                DEMO_VSERVER,
                DEMO_POLICY,
                "network",
                "10.0.0.0/8",
                "rw",
                "root_squash",
                "-2",
                False,
                "",
                {"authSys": True, "authKrb": False},
            )
        junctions = []
        for path, subdir, policy in DEMO_JUNCTIONS:
            advanced = {
                "subdir": subdir,
                "createSubdirs": "yes",
                "inheritPolicy": "no" if policy else "yes",
                "permissions": "modebits",
            }
            if policy:
                advanced["policy"] = policy
            junctions.append(client.call("vserver.addJunction", DEMO_VSERVER, path, DEMO, "/", advanced))
        _wait(client, junctions)
        for path, data in DEMO_FILES.items():
            client.call("sim.writeFile", DEMO_VSERVER, path, base64.b64encode(data).decode())
        # Most files reach the container now; one more stays dirty, as on a cluster in use.
        _wait(client, [client.flush_core_filer(DEMO)])
        client.call(
            "sim.writeFile",
            DEMO_VSERVER,
            "/demo/scratch/in-progress.log",
            base64.b64encode(f"written at {time.time():.0f}\n".encode()).decode(),
        )
    write_private_json(secrets_file, saved)  # complete: a later `up` returns it as it is
    return {**info, **saved}
