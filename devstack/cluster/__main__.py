"""`python -m devstack.cluster`: serve one simulated cluster on real (adjustable) time until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from devstack.cluster.engine import Timing
from devstack.cluster.runner import start_cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.cluster", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="the stack's state dir (STATE)")
    parser.add_argument("--name", required=True, help="cluster name; state under STATE/clusters/<name>")
    parser.add_argument("--region", required=True)
    parser.add_argument("--blob-endpoint", required=True, help="Azurite's blob endpoint")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--speedup", type=float, default=1.0, help="run activities this many times faster")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    handle = start_cluster(
        args.state_dir,
        args.name,
        args.region,
        args.blob_endpoint,
        port=args.port,
        timing=Timing().scaled(args.speedup),
        tick_every=0.5,
    )
    log = logging.getLogger("devstack.cluster")
    log.info("cluster %s (%s) serves %s", args.name, args.region, handle.url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
