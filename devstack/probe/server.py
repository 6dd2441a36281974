"""The probe stand-in's HTTPS server: the contract of docs/drills.md (key header, JSON in, per-file JSON out)."""

from __future__ import annotations

import hmac
import json
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.probe.reader import BadRequest, ClusterAccess, parse, read_sample
from devstack.stack.ports import LOOPBACK

KEY_HEADER = "X-Vfxtdr-Probe-Key"
PATH = "/read"
MAX_BODY = 1024 * 1024
SERVICE = "vfxtdr-drill-probe-standin"


class ProbeServer(ThreadingHTTPServer):
    """Threaded HTTPS (or plain HTTP without a TLS context); one key; the clusters its network reaches."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], key: str, clusters: list[ClusterAccess], tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(address, ProbeHandler)
        self.key, self.clusters, self.tls = key, list(clusters), tls
        self.requests: list[dict[str, Any]] = []  # what each accepted request asked (tests read it)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.server_address[1]}{PATH}"

    def reach(self, access: ClusterAccess) -> None:
        """Let the probe mount this cluster's vservers too."""
        self.clusters.append(access)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls is None:
            return sock, addr
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        kind = sys.exc_info()[0]
        sys.stderr.write(f"probe: connection from {client_address[0]} ended: {kind.__name__ if kind else '?'}\n")


class ProbeHandler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the delayed-ACK stall (40 ms)
    server: ProbeServer
    server_version = "devstack-drill-probe"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"probe: {self.command} {self.path.split('?')[0]} -> {args[1] if len(args) > 1 else ''}\n")

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"service": SERVICE})
            return
        self._answer(404 if self.path != PATH else 405, {"error": "POST /read"})

    def do_POST(self) -> None:
        if self.path != PATH:
            self._answer(404, {"error": "POST /read"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, {"error": f"the request exceeds {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length)
        given = self.headers.get(KEY_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self.server.key.encode()):
            self._answer(401, {"error": f"missing or wrong {KEY_HEADER}"})
            return
        try:
            drill_id, mounts, sample, limit = parse(json.loads(raw))
        except (ValueError, BadRequest) as exc:
            self._answer(400, {"error": str(exc)[:300]})
            return
        self.server.requests.append(
            {"drill_id": drill_id, "mounts": [m.__dict__ for m in mounts], "sample_size": sample}
        )
        self._answer(200, read_sample(self.server.clusters, drill_id, mounts, sample, limit))


def start_probe(
    key: str, clusters: list[ClusterAccess], tls: ssl.SSLContext | None, port: int = 0
) -> tuple[ProbeServer, threading.Thread]:
    """Serve in a thread of this process (tests): returns the server (url, reach, requests) and its thread."""
    server = ProbeServer((LOOPBACK, port), key, clusters, tls)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="drill-probe"
    )
    thread.start()
    return server, thread
