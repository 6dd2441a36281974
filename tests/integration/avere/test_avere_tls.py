"""TLS trust (CA, pinned fingerprint, refusal), plain-http rules, stock XML-RPC clients on the simulator."""

from __future__ import annotations

import base64
import ssl
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from devstack.cluster import ClusterHandle
from devstack.stack.tls import ensure_ca
from shared.avere import errors as E
from shared.avere.client import AvereClient


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_ca_file_is_trusted(primary_cluster: ClusterHandle) -> None:
    client = AvereClient(primary_cluster.url, "admin", primary_cluster.password, ca_file=str(primary_cluster.ca_cert))
    assert client.list_core_filers() == []


@pytest.mark.parametrize("style", ["colons", "plain-lower"])
def test_pinned_fingerprint_is_trusted(primary_cluster: ClusterHandle, style: str) -> None:
    pin = primary_cluster.fingerprint
    if style == "plain-lower":
        pin = pin.replace(":", "").lower()
    client = AvereClient(primary_cluster.url, "admin", primary_cluster.password, fingerprint_sha256=pin)
    assert client.call("cluster.get")["name"] == "primary"


def test_wrong_fingerprint_is_refused_naming_both(primary_cluster: ClusterHandle) -> None:
    wrong = ":".join(["AB"] * 32)
    sleeps: list[float] = []
    client = AvereClient(
        primary_cluster.url, "admin", primary_cluster.password, fingerprint_sha256=wrong, sleep=sleeps.append
    )
    with pytest.raises(E.AvereTLSError) as err:
        client.list_core_filers()
    assert wrong in str(err.value) and primary_cluster.fingerprint in str(err.value)
    assert sleeps == []  # a trust failure is final, never retried
    assert not any(e["method"] == "system.login" for e in primary_cluster.cluster.call_log)


def test_untrusted_certificate_is_refused(primary_cluster: ClusterHandle, tmp_path: Path) -> None:
    other_ca, _ = ensure_ca(tmp_path / "other-ca")
    client = AvereClient(primary_cluster.url, "admin", primary_cluster.password, ca_file=str(other_ca))
    with pytest.raises(E.AvereTLSError, match="not trusted"):
        client.list_core_filers()


def test_no_trust_configured_is_refused_before_connecting(primary_cluster: ClusterHandle) -> None:
    with pytest.raises(E.AvereConfigError, match="no TLS trust"):
        AvereClient(primary_cluster.url, "admin", primary_cluster.password)
    with pytest.raises(E.AvereConfigError, match="64 hex"):
        AvereClient(primary_cluster.url, "admin", primary_cluster.password, fingerprint_sha256="abc")
    insecure = AvereClient(primary_cluster.url, "admin", primary_cluster.password, insecure=True)
    assert insecure.list_core_filers() == []  # only when explicitly asked


@pytest.mark.parametrize(
    ("url", "insecure", "problem"),
    [
        ("http://127.0.0.1:1/cgi-bin/rpc2.py", False, "plain http"),
        ("http://cluster.example.com/cgi-bin/rpc2.py", True, "plain http"),
        ("ftp://127.0.0.1/x", True, "https://"),
        ("https://admin:pw@10.0.0.1/cgi-bin/rpc2.py", True, "credentials"),
    ],
)
def test_bad_urls_are_refused(url: str, insecure: bool, problem: str) -> None:
    with pytest.raises(E.AvereConfigError, match=problem):
        AvereClient(url, "admin", "pw", insecure=insecure)


def test_no_verification_for_a_remote_host_only_when_acknowledged() -> None:
    """The admin password would go to whoever answers: the client refuses unless a person said yes."""
    for host in ("10.0.0.5", "avere.contoso.com", "[fd00::5]:8443"):
        with pytest.raises(E.AvereConfigError, match="not a loopback host: refused unless acknowledged"):
            AvereClient(f"https://{host}/cgi-bin/rpc2.py", "admin", "pw", insecure=True)
        client = AvereClient(
            f"https://{host}/cgi-bin/rpc2.py", "admin", "pw", insecure=True, insecure_acknowledged=True
        )  # nothing is sent until a call
        assert client.session.endpoint.insecure
    pinned = AvereClient("https://10.0.0.5/cgi-bin/rpc2.py", "admin", "pw", fingerprint_sha256="AB" * 32)
    assert not pinned.session.endpoint.insecure


def test_loopback_http_allowed_only_with_insecure() -> None:
    client = AvereClient("http://127.0.0.1:1/cgi-bin/rpc2.py", "admin", "pw", insecure=True, retries=0)
    with pytest.raises(E.AvereConnectionError):
        client.list_core_filers()


class _CookieTransport(xmlrpc.client.SafeTransport):
    """What averecmd and the API guide's sample do: keep Set-Cookie, send it back."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self.cookies: list[str] = []

    def send_headers(self, connection: Any, headers: Any) -> None:
        for cookie in self.cookies:
            connection.putheader("Cookie", cookie)
        super().send_headers(connection, headers)

    def parse_response(self, response: Any) -> Any:
        for header in response.msg.get_all("Set-Cookie") or []:
            self.cookies.append(header.split(";", 1)[0])
        return super().parse_response(response)


@pytest.mark.parametrize("path", ["/cgi-bin/rpc2.py", "/python/rpc2.py"])
def test_stock_serverproxy_with_cookie_transport(primary_cluster: ClusterHandle, path: str) -> None:
    url = primary_cluster.url.replace("/cgi-bin/rpc2.py", path)
    context = ssl.create_default_context(cafile=str(primary_cluster.ca_cert))
    proxy = xmlrpc.client.ServerProxy(url, transport=_CookieTransport(context))
    assert proxy.system.login(_b64("admin"), _b64(primary_cluster.password)) == "success"
    assert proxy.corefiler.list() == []
    assert proxy.mass.list() == []  # the deprecated module name
    multi = xmlrpc.client.MultiCall(proxy)
    multi.system.enableAPI("maintenance")
    multi.corefiler.remove("nosuch")
    results = multi()
    assert results[0] == "success"
    with pytest.raises(xmlrpc.client.Fault) as fault:
        results[1]
    assert fault.value.faultCode == 102 and "Cannot find MASS" in fault.value.faultString
    assert "corefiler.remove" in proxy.system.listMethods()  # enabled for this session
    assert "NOT part of the Avere API" in proxy.system.methodHelp("sim.writeFile")
    assert proxy.system.enabledAPIs() == ["maintenance"]
    assert proxy.system.login(_b64("admin"), _b64("wrong")) == "login for user admin failed"


def test_serverproxy_without_cookies_is_not_logged_in(primary_cluster: ClusterHandle) -> None:
    context = ssl.create_default_context(cafile=str(primary_cluster.ca_cert))
    proxy = xmlrpc.client.ServerProxy(primary_cluster.url, context=context)
    assert proxy.system.login(_b64("admin"), _b64(primary_cluster.password)) == "success"
    with pytest.raises(xmlrpc.client.Fault) as fault:
        proxy.corefiler.list()
    assert fault.value.faultCode == 101
