"""The drill's probe client on loopback HTTP: a redirect is never followed with the key, and a probe that echoes
the key in its error text does not get it into the drill record."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.plan.drill import Probe
from shared.runbook.drill_probe import KEY_HEADER, _post, _scrubbed, judge

KEY = "probe-key-that-must-stay-home"


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]
    answer: tuple[int, dict[str, str], bytes]

    def log_message(self, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply()

    def do_GET(self) -> None:
        self._reply()

    def _reply(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        status, headers, body = type(self).answer
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def serve(answer: tuple[int, dict[str, str], bytes]) -> tuple[ThreadingHTTPServer, type[Recorder]]:
    handler = type("Handler", (Recorder,), {"seen": [], "answer": answer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    made: list[ThreadingHTTPServer] = []
    yield made
    for server in made:
        server.shutdown()
        server.server_close()


def test_a_redirect_is_an_answer_and_the_key_never_follows_it(servers: list[ThreadingHTTPServer]) -> None:
    elsewhere, other = serve((200, {}, json.dumps({"version": 1, "files": []}).encode()))
    servers.append(elsewhere)
    target = f"http://127.0.0.1:{elsewhere.server_address[1]}/read"
    probe_server, probe = serve((302, {"Location": target}, b""))
    servers.append(probe_server)
    status, _ = _post(
        Probe(f"http://127.0.0.1:{probe_server.server_address[1]}/read", "k", None, 10.0), {"version": 1}, KEY
    )
    assert status == 302
    assert probe.seen and probe.seen[0][KEY_HEADER.lower()] == KEY
    assert other.seen == []  # nothing, and so no key, reached where the redirect pointed
    assert judge(status, b"", ["/.drill/f/data"], 20).status == "failed"


def test_a_probe_echoing_the_key_has_it_scrubbed_from_the_result() -> None:
    echoed = judge(401, f'{{"error": "wrong key {KEY}"}}'.encode(), ["/.drill/f/data"], 20)
    assert KEY in echoed.detail  # the judge keeps the probe's words ...
    clean = _scrubbed(echoed, KEY)
    assert KEY not in clean.detail and "***" in clean.detail and clean.status == "failed"  # ... never the key
    files = json.dumps(
        {"version": 1, "files": [{"path": "/.drill/f/data/a", "status": "error", "error": f"EACCES with {KEY}"}]}
    ).encode()
    assert all(KEY not in p for p in _scrubbed(judge(200, files, ["/.drill/f/data"], 20), KEY).problems)
