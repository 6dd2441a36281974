"""The stack component: both simulators as processes, the demo filer, and a restart that keeps everything."""

from __future__ import annotations

import base64
from pathlib import Path

from devstack.cluster.stack import DEMO, DEMO_FILES, start_clusters
from devstack.stack.azurite import Azurite
from devstack.stack.procs import stop
from shared.avere.client import AvereClient


def _client(info: dict[str, str]) -> AvereClient:
    return AvereClient(info["url"], info["user"], info["password"], ca_file=info["ca_cert"], retries=2, backoff=0.1)


def test_start_clusters_with_demo_filer_and_restart(tmp_path: Path, azurite: Azurite) -> None:
    state = tmp_path / "stack"
    stack = {"storage": azurite.storage_json()}
    procs, result = start_clusters(state, stack, speedup=20)
    try:
        clusters = result["clusters"]
        assert set(clusters) == {"primary", "dr"}
        assert clusters["primary"]["region"] == azurite.accounts["source"].region
        assert clusters["dr"]["region"] == azurite.accounts["dr"].region
        assert clusters["primary"]["url"] != clusters["dr"]["url"]
        assert all(c["url"].endswith("/cgi-bin/rpc2.py") for c in clusters.values())
        assert Path(clusters["primary"]["ca_cert"]) == state / "tls" / "ca.pem"
        demo = result["demo_filer"]
        assert demo["bucket"] == f"{azurite.accounts['source'].name}/{DEMO}"
        with _client(clusters["primary"]) as primary:
            record = primary.capture_core_filer(DEMO)
            assert record.encrypted and record.active_key_id == demo["key_id"]
            assert {j.path for j in record.junctions} == set(demo["junctions"])
            assert len({j.vserver for j in record.junctions}) == 1 and record.export_policies
            for path, data in DEMO_FILES.items():
                assert base64.b64decode(primary.call("sim.readFile", "vserver", path)) == data
            assert primary.dirty_files(DEMO).num_files == 1  # one file still waits for writeback
        with _client(clusters["dr"]) as dr:
            assert dr.list_core_filers() == []
    finally:
        for proc in procs:
            stop(proc)

    procs, again = start_clusters(state, stack, speedup=20)
    try:
        assert again["demo_filer"] == demo
        assert again["clusters"]["primary"]["password"] == clusters["primary"]["password"]
        with _client(again["clusters"]["primary"]) as primary:
            assert primary.capture_core_filer(DEMO) == record
            assert primary.dirty_files(DEMO).num_files == 1
    finally:
        for proc in procs:
            stop(proc)
    assert not any(p.alive() for p in procs)
