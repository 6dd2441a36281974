"""The HTTPS front of a simulated cluster: XML-RPC POSTs at /cgi-bin/rpc2.py and /python/rpc2.py."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devstack.cluster.dispatch import handle
from devstack.cluster.engine import Cluster

log = logging.getLogger("devstack.cluster")

RPC_PATHS = ("/cgi-bin/rpc2.py", "/python/rpc2.py")
COOKIE = "PHPSESSID"
MAX_BODY = 256 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AvereOS-sim/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the delayed-ACK stall
    server: ClusterHTTPServer

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._empty(405 if urlsplit(self.path).path in RPC_PATHS else 404)

    def setup(self) -> None:
        super().setup()
        self.answered_in = self.server.generation

    def send_response(self, code: int, message: str | None = None) -> None:
        # Noted before the answer goes out: once the client has it, the connection counts as idle.
        self.answered_in = self.server.generation
        super().send_response(code, message)

    def parse_request(self) -> bool:
        if self.answered_in < self.server.generation:
            # sim.refuseConnections closed the connections idle at that moment: this request is not read
            # further nor run, and the client sees the connection closed.
            self.close_connection = True
            return False
        return super().parse_request()

    def do_POST(self) -> None:
        cluster = self.server.cluster
        if urlsplit(self.path).path not in RPC_PATHS:
            self._empty(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            self._empty(413)
            return
        body = self.rfile.read(length)
        with cluster.lock:
            drop = cluster.drops > 0
            cluster.drops -= 1 if drop else 0
        if drop:  # a test asked for a network failure: hang up without answering
            self.close_connection = True
            return
        reply = handle(cluster, body, self._token())
        if reply.close_idle:
            self.server.close_idle()
        if reply.drop:  # an injected fault lost the answer (the calls ran or not, as the rule said)
            self.close_connection = True
            return
        if reply.status != 200:
            page = f"<html><body><h1>{reply.status} {_phrase(reply.status)}</h1></body></html>\n".encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.token:
            self.send_header("Set-Cookie", f"{COOKIE}={reply.token}; Path=/; Secure; HttpOnly")
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)

    def _token(self) -> str | None:
        header = self.headers.get("Cookie")
        if not header:
            return None
        try:
            jar = SimpleCookie()
            jar.load(header)
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel else None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("cluster %s: %s", self.server.cluster.name, format % args)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


class ClusterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cluster: Cluster, port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), _Handler)
        self.cluster = cluster
        # The handshake runs in the request's thread, so a stalled client never blocks accept().
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.generation = 0  # grows when idle keep-alive connections are to be closed

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.cluster.lock:
            refuse = self.cluster.refusals > 0
            self.cluster.refusals -= 1 if refuse else 0
        if refuse:  # sim.refuseConnections: reset before the TLS handshake, so no request byte is read
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()
            return
        super().process_request(request, client_address)

    def close_idle(self) -> None:
        """Keep-alive connections idle now are closed when their next request arrives, unrun."""
        with self.cluster.lock:
            self.generation += 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug(
            "cluster %s: connection from %s ended with an error", self.cluster.name, client_address, exc_info=True
        )


class ClusterService:
    """A cluster served on a port, optionally with a ticker that moves activities along on real time."""

    def __init__(self, cluster: Cluster, port: int, context: ssl.SSLContext, *, tick_every: float | None) -> None:
        self.cluster = cluster
        self.httpd = ClusterHTTPServer(cluster, port, context)
        self.port = int(self.httpd.server_address[1])
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self.httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"cluster-{cluster.name}",
                daemon=True,
            )
        ]
        if tick_every:
            self._threads.append(
                threading.Thread(
                    target=self._tick, args=(tick_every,), name=f"cluster-{cluster.name}-tick", daemon=True
                )
            )

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            with self.cluster.lock:
                try:
                    self.cluster.tick()
                except Exception:  # a failed tick must not stop the next one
                    log.exception("cluster %s: tick failed", self.cluster.name)

    def start(self) -> ClusterService:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        with self.cluster.lock:
            self.cluster.persist()
