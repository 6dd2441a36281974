"""`python -m devstack.keyvault --state-dir DIR --port N [--purge-protection]`: serve the Key Vault stand-in."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from devstack.keyvault.server import VaultServer
from devstack.keyvault.store import SecretStore
from devstack.stack.identity import tenant_id
from devstack.stack.ports import LOOPBACK
from devstack.stack.tls import issue_server_cert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.keyvault", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True, help="the stack's state dir")
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument(
        "--purge-protection",
        action="store_true",
        help="refuse purges of deleted secrets, as a vault with purge protection does",
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    # A fresh leaf certificate each start, signed by the stack's one CA (STATE/tls/ca.pem).
    cert = issue_server_cert(state_dir / "tls", "keyvault")
    store = SecretStore(state_dir / "keyvault", clock=time.time, purge_protection=args.purge_protection)
    server = VaultServer((LOOPBACK, args.port), store, tenant_id(state_dir), cert.server_context())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"keyvault stand-in on https://{LOOPBACK}:{args.port} (CA {cert.ca_cert})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
