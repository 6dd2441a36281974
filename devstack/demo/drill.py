"""The demo's rehearsal before the outage: drill the backup on the DR cluster through the app, then check that
production is exactly as it was and nothing of the drill is left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.storage.blob import ContainerClient

from devstack.demo.app import DemoApp
from devstack.demo.checks import DemoFailed, account_client, describe_junctions, junctions, policies
from shared.avere.client import AvereClient
from shared.avere.records import FilerRecord


def etags(container: ContainerClient) -> dict[str, tuple[str, tuple[tuple[str, str], ...]]]:
    """Every blob's ETag and metadata: any write, lease-taking copy or metadata change shows."""
    return {
        b.name: (str(b.etag), tuple(sorted((b.metadata or {}).items())))
        for b in container.list_blobs(include=["metadata"])
    }


def rehearse(
    app: DemoApp,
    stack: dict,
    backup: dict,
    before: FilerRecord,
    *,
    cluster: str,
    filer: str,
    client: Callable[[str], AvereClient],
    say: Callable[[str], None],
    timeout: float,
    links: dict[str, dict],
    figures: dict[str, Any],
) -> str:
    """POST /api/drills/{cluster}/{filer}, follow it, and check: passed (files read back by the probe), the
    backup container byte-identical (ETags, metadata), the primary filer untouched, no drill filer or scratch."""
    dr = account_client(stack, "dr")
    backup_container = dr.get_container_client(str(backup.get("container")))
    untouched = etags(backup_container)
    found = links["drill"] = app.start_route(f"drills/{cluster}/{filer}")
    say(f"POST /api/drills/{cluster}/{filer} -> 202, instance {found['id']}")
    final = app.follow(found, say, timeout)
    out = final.get("output") if isinstance(final.get("output"), dict) else {}
    if final.get("runtimeStatus") != "Completed" or out.get("status") != "passed":
        raise DemoFailed(
            f"the drill ended {final.get('runtimeStatus')}, status {out.get('status')}: "
            f"{str(out.get('error') or out.get('readback') or final.get('output'))[:600]}"
        )
    if etags(backup_container) != untouched:
        raise DemoFailed(f"the drill changed the backup container {backup_container.container_name}")
    with client(cluster) as primary:
        state, now = primary.filer_state(filer), primary.capture_core_filer(filer)
    if state != "online" or junctions(now) != junctions(before) or policies(now) != policies(before):
        raise DemoFailed(f"the primary filer changed during the drill: {state}, {describe_junctions(now)}")
    target = str(out.get("target_cluster"))
    with client(target) as dr_cluster:
        left = [f for f in dr_cluster.list_core_filers() if f.startswith("drill-")]
    scratch = [c.name for c in dr.list_containers(name_starts_with="drill-")]
    if left or scratch:
        raise DemoFailed(f"the drill left {left + scratch}")
    phases = out.get("phases") or {}
    readback = out.get("readback") or {}
    figures.update(
        drill_rto_s=out.get("rto_s"),
        drill_files_checked=out.get("files_checked"),
        drill_copy_s=phases.get("copy_s"),
        drill_rpo_s=out.get("rpo_s"),
    )
    say(
        f"RTO {out.get('rto_s')}s from the request to serving: scratch copy {phases.get('copy_s')}s (it grows "
        f"with the container), check {phases.get('verify_s')}s, attach {phases.get('attach_s')}s -> "
        f"{out.get('rto_without_copy_s')}s without the copy, as a failover would take"
    )
    say(
        f"the backup was {out.get('rpo_s')}s old (RPO at drill time); the probe read {readback.get('files_ok')}/"
        f"{readback.get('files_checked')} files whole ({readback.get('bytes_read')} bytes) through {target}"
    )
    say(
        f"backup container {backup_container.container_name}: {len(untouched)} blobs, ETags and metadata unchanged; "
        f"{filer} online on {cluster} with its junctions; no drill filer or scratch container left "
        f"(clean-up {phases.get('cleanup_s')}s)"
    )
    return (
        f"backup {out.get('backup_id')} served as {out.get('drill_filer')} on {target} in {out.get('rto_s')}s "
        f"and read back ({out.get('files_checked')} files); production untouched; cleaned up"
    )
