"""`python -m devstack.probe --state-dir DIR --port N`: serve the drill probe stand-in until SIGTERM.

It reads STATE/probe/config.json (owner-only: the probe's key and the clusters' admin logins), which the stack's
`probe` component writes, and serves HTTPS with a certificate of the stack's CA.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from devstack.probe.reader import ClusterAccess
from devstack.probe.server import ProbeServer
from devstack.stack.ports import LOOPBACK
from devstack.stack.tls import issue_server_cert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.probe", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="the stack's state dir")
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    config = json.loads((state_dir / "probe" / "config.json").read_text())
    clusters = [ClusterAccess(**c) for c in config["clusters"]]
    cert = issue_server_cert(state_dir / "tls", "probe")
    server = ProbeServer((LOOPBACK, args.port), config["key"], clusters, cert.server_context())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"drill probe stand-in on {server.url} (CA {cert.ca_cert})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
