"""Hostile requests against the app's routes, generated from docs/openapi.yaml and sent over real HTTP to the
local runner's host (aiohttp on loopback in front of the real function_app, the real Durable client, Azurite
and the Key Vault stand-in).

Why no generated request can start a run (the test then checks that none did):
1. Names. Path parameters are mostly random strings: any unicode but '/' and '%', names shaped like plan
   names, near misses of plan names (case, a trailing space or NUL, a combining accent). None is in the plan:
   every route answers 404 before it reads the catalog or calls the Durable client.
2. Catalog. The generator also draws the plan's real names (`fz-primary`/`fz-projects`, `fz-renders`, and
   the DR cluster `fz-dr` as a target), so that the routes get past the 404 into their refusal paths. The
   catalog marks both filers failed over, which refuses each start: a backup is 409 (failed over), a re-add
   409 (nothing removed), a failover 409 (no verified backup), 404 (backupId not held) or 400/404 (no or an
   unknown target). A dry run (`dryRun=true`) answers 200 with its preflight findings and starts nothing;
   the recovery points answer 200 (none) and only read.
3. Clusters. Both clusters' management addresses are loopback ports held bound but never listening, so a
   connection is refused at once: a dry run's preflight reports that as a finding, and a run that started
   by mistake could reach no cluster. The runner schedules no timer, and its virtual clock (also the one the
   cluster client "sleeps" on between retries) moves only when asked.
Checked after the run: no instance exists, no container, blob or Key Vault secret version changed.

The host is the runner's own (devstack/durable/http_host.py, what `devstack serve` runs), started in this
process rather than as a `serve` subprocess: on its virtual clock, a dry run's cluster client backs off
between its retries against the refused port without waiting (under `serve`'s real clock that is 1+2+4+8+16 s
of real time per dry run), and the test can read the runner's instances directly.

Path parameters never contain '/' or '%': the host routes on the decoded path, so an encoded slash would not
reach a function (the host answers its own bodiless 404), and the local host decodes the path twice (aiohttp,
then its router), which would turn '%2F' into '/' as well.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from azure.storage.blob import BlobServiceClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devstack.clock import VirtualClock
from devstack.durable import Runner
from devstack.stack.azurite import Azurite
from devstack.stack.ports import LOOPBACK
from shared.azure.keyvault import KeyVault
from shared.catalog.store import Catalog, FilerState
from shared.plan.load import parse_plan
from shared.runbook import services
from tests.fixtures.durable import VIRTUAL_EPOCH, HttpReply, http_call
from tests.fixtures.keyvault import IdentityEndpoint, KeyVaultEndpoint, use_local_identity
from tests.fixtures.workflow import run_services_on
from tests.fuzz.spec import Operation, load_spec, operations, schema_problems

# Bounded and derandomized: the same requests every run (until hypothesis or this file changes).
MAX_REQUESTS = 400
BODY_LIMIT = 64 * 1024  # docs/openapi.yaml: TooLarge
FUZZ = settings(
    max_examples=MAX_REQUESTS,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)

CLUSTER, DR_CLUSTER = "fz-primary", "fz-dr"
FILERS = ("fz-projects", "fz-renders")  # fz-renders names no failover_cluster
SECRET_NAMES = {
    "primary": "fz-primary-admin",
    "dr": "fz-dr-admin",
    "source": "fz-source-key",
    "backup": "fz-backup-key",
}
# Values the generator also draws for these parameters, to get past "unknown name" into the refusal paths.
KNOWN = {
    "cluster": [CLUSTER, CLUSTER, DR_CLUSTER],
    "filer": list(FILERS),
    "target": [DR_CLUSTER, CLUSTER],
    "backupId": ["20300101T000000Z-0001"],
}
# The answers each route must have given at least once: its refusal paths were reached, not only "unknown".
# (202 would mean a run started; 413 and 500 have their own test below.)
# The read routes and the page answer a direct loopback request (the runner is not App Service); a request
# through a proxy (X-Forwarded-For) is refused 403 - a JSON message, and on the page an HTML one.
REACHED = {
    "start_backup": {200, 400, 404, 409},
    "readd_filer": {404, 409},
    "start_failover": {400, 404, 409},
    "start_failback": {404, 409},
    "list_recovery_points": {200, 404},
    "health": {200},
    "list_filers": {200, 403},
    "get_filer": {200, 400, 403, 404},
    "status_page": {200, 403},
    "run_status": {404},
    "cancel_run": {404},
    "approve_deletes": {404},
    "approve_changes": {404},
}


# --- the environment --------------------------------------------------------------------------------------


@dataclass
class FuzzApp:
    runner: Runner
    azurite: Azurite
    vault: KeyVault
    plan_json: dict[str, Any]
    secrets: dict[str, str]  # what no answer may contain, by what it is
    ports: list[socket.socket] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        assert self.runner.base_url is not None
        return self.runner.base_url

    def world(self) -> tuple[dict[tuple[str, str], Any], dict[str, list[str]]]:
        """Every container (etag) and blob (etag) of both accounts, and every version of the plan's secrets."""
        containers: dict[tuple[str, str], Any] = {}
        for role in ("source", "dr"):
            with BlobServiceClient.from_connection_string(self.azurite.connection_string(role)) as service:
                for item in service.list_containers():
                    blobs = service.get_container_client(item.name).list_blobs()
                    containers[(role, item.name)] = (item.etag, sorted((b.name, b.etag) for b in blobs))
        versions = {name: sorted(v.ref.version for v in self.vault.versions(name)) for name in SECRET_NAMES.values()}
        return containers, versions


def refused_port() -> socket.socket:
    """A loopback port held bound but not listening: connecting to it is refused, and nobody else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    return sock


def fuzz_plan(azurite: Azurite, keyvault_url: str, primary_port: int, dr_port: int) -> dict[str, Any]:
    src, dr = azurite.accounts["source"], azurite.accounts["dr"]
    pin = {"fingerprint_sha256": ":".join(["00"] * 32)}  # nothing listens; if it did, TLS would fail closed

    def filer(name: str, failover: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cluster": CLUSTER,
            "name": name,
            "source": {
                "account": src.name,
                "container": f"{name}-src",
                "blob_endpoint": azurite.account_url("source"),
                "region": src.region,
                "key_secret": SECRET_NAMES["source"],
            },
            "backup": {
                "account": dr.name,
                "blob_endpoint": azurite.account_url("dr"),
                "region": dr.region,
                "storage_key_secret": SECRET_NAMES["backup"],
            },
        }
        return out | ({"failover_cluster": failover} if failover else {})

    return {
        "version": 1,
        "keyvault_url": keyvault_url,
        "schedule": "0 0 2 * * *",
        "rpo_hours": 24,
        "storage_auth": "key",
        "catalog_container": "fz-catalog",
        "clusters": [
            {
                "name": CLUSTER,
                "management_address": f"{LOOPBACK}:{primary_port}",
                "region": src.region,
                "admin_password_secret": SECRET_NAMES["primary"],
                "tls": pin,
            }
        ],
        "dr_clusters": [
            {
                "name": DR_CLUSTER,
                "management_address": f"{LOOPBACK}:{dr_port}",
                "region": dr.region,
                "admin_password_secret": SECRET_NAMES["dr"],
                "tls": pin,
            }
        ],
        "filers": [filer(FILERS[0], DR_CLUSTER), filer(FILERS[1], None)],
    }


@pytest.fixture
def fuzz_app(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    identity: IdentityEndpoint,
    keyvault: KeyVaultEndpoint,
    durable_runner: Any,
) -> Iterator[FuzzApp]:
    use_local_identity(monkeypatch, identity, keyvault)
    monkeypatch.delenv("VFXTDR_PLAN_FILE", raising=False)
    services.forget_vaults()
    clock = VirtualClock(VIRTUAL_EPOCH)
    run_services_on(monkeypatch, clock)
    ports = [refused_port(), refused_port()]
    vault = KeyVault(keyvault.url)
    values = {
        "primary admin password": secrets.token_urlsafe(24),
        "dr admin password": secrets.token_urlsafe(24),
        "source account key": azurite.accounts["source"].key,
        "dr account key": azurite.accounts["dr"].key,
    }
    for name, value in zip(SECRET_NAMES.values(), values.values(), strict=True):
        vault.store(name, value, content_type="text/plain")
    plan_json = fuzz_plan(azurite, keyvault.url, ports[0].getsockname()[1], ports[1].getsockname()[1])
    plan = parse_plan(plan_json)
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(plan_json))

    def failed_over(state: FilerState) -> None:
        state.failed_over = {"target_cluster": DR_CLUSTER, "generation": "a"}

    for filer in plan.filers:
        with Catalog(
            services.backup_account(filer, plan.storage_auth, plan.keyvault_url), plan.catalog_container
        ) as catalog:
            catalog.update(filer, failed_over)
    import function_app

    app = FuzzApp(durable_runner(function_app.app, clock=clock), azurite, vault, plan_json, values, ports)
    try:
        yield app
    finally:
        services.forget_vaults()
        vault.close()
        for sock in ports:
            sock.close()


# --- requests generated from docs/openapi.yaml ---------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    op: Operation
    path_params: dict[str, str]
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes | None

    def url(self, base: str) -> str:
        path = self.op.path
        for name, value in self.path_params.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        query = urlencode(self.query, quote_via=quote, safe="")
        return f"{base}/api{path}" + (f"?{query}" if query else "")

    def values(self) -> list[str]:
        """Every value the request carries (a refusal names one of them)."""
        return [*self.path_params.values(), *(v for _, v in self.query)]

    def __str__(self) -> str:
        body = "" if self.body is None else f" body[{len(self.body)}]={self.body[:40]!r}"
        return f"{self.op.method} {self.url('')} headers={self.headers}{body}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints a falsifying example
        printer.text(str(self))


def routable(segment: str) -> bool:
    return segment not in (".", "..")


def path_segment(known: list[str]) -> st.SearchStrategy[str]:
    near = st.sampled_from(known).flatmap(
        lambda k: st.sampled_from(
            [k.upper(), k + " ", " " + k, k + "\x00", k + "-", k[:-1], k + "\u0301", k + "\n", "." + k]
        )
    )
    hostile = st.text(st.characters(codec="utf-8", exclude_characters="/%"), min_size=1, max_size=40)
    shaped = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
    plan_name = st.sampled_from(known)
    return st.one_of(plan_name, plan_name, near, hostile, shaped).filter(routable)


def query_value(spec: dict[str, Any], param: dict[str, Any]) -> st.SearchStrategy[str]:
    schema = spec["components"]["schemas"]["Flag"] if param["schema"].get("$ref") else param["schema"]
    free = st.text(st.characters(codec="utf-8"), max_size=40)
    if "enum" in schema:
        words = [str(e) for e in schema["enum"]]
        odd = ["", "maybe", "tru", "2", "-1", "null", "true,false", " true", "TRUE", "No"]
        return st.one_of(st.sampled_from(words), st.sampled_from(odd), free)
    return st.one_of(st.sampled_from(KNOWN.get(param["name"], [""])), st.just(""), free)


@st.composite
def requests_for(draw: st.DrawFn, spec: dict[str, Any], op: Operation) -> Request:
    path_params = {p["name"]: draw(path_segment(KNOWN.get(p["name"], ["x"]))) for p in op.params("path")}
    query: list[tuple[str, str]] = []
    for param in op.params("query"):
        for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):  # absent, once, or twice
            query.append((param["name"], draw(query_value(spec, param))))
    ascii_text = st.text(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_="), max_size=60
    )
    query += draw(
        st.lists(
            st.tuples(st.one_of(st.just("code"), st.text(min_size=1, max_size=10)), st.text(max_size=20)), max_size=2
        )
    )
    headers = {}
    if draw(st.booleans()):
        headers["x-functions-key"] = draw(ascii_text)
    if op.anonymous and draw(st.integers(0, 4)) == 0:  # as through a proxy: the operator views refuse it
        headers["X-Forwarded-For"] = "203.0.113.9"
    content_type = draw(
        st.sampled_from(
            [
                None,
                "application/json",
                "text/plain",
                "application/octet-stream",
                "multipart/form-data; boundary=x",
                "application/json; charset=bogus",
            ]
        )
    )
    body = draw(
        st.one_of(
            st.none(),
            st.binary(max_size=512),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                max_leaves=8,
            ).map(lambda v: json.dumps(v).encode()),
        )
    )
    if content_type is not None:
        headers["Content-Type"] = content_type
    elif body is not None:
        headers["Content-Type"] = "application/octet-stream"
    return Request(op, path_params, tuple(query), headers, body)


def explicit_requests() -> list[Request]:
    """One request per answer REACHED names, run before the generated ones: the coverage asserted below does
    not depend on what hypothesis draws (its draws also use constants of the modules loaded at the time, so
    they differ between running this file alone and the whole suite; the counts do not)."""
    ops = {op.operation_id: op for op in operations()}

    def req(
        op: str,
        filer: str = FILERS[0],
        *query: tuple[str, str],
        cluster: str = CLUSTER,
        headers: dict[str, str] | None = None,
    ) -> Request:
        params = {"cluster": cluster, "filer": filer} if ops[op].params("path") else {}
        return Request(ops[op], params, tuple(query), headers or {}, None)

    proxied = {"X-Forwarded-For": "203.0.113.9"}

    def run(op: str, run_id: str) -> Request:  # no run exists: every run route answers 404 naming the id
        return Request(ops[op], {"id": run_id}, (), {}, b'{"approval_ref": "x"}')

    return [
        req("start_backup", FILERS[0], ("dryRun", "true")),  # 200: the preflight's findings
        req("start_backup", FILERS[0], ("dryRun", "maybe")),  # 400
        req("start_backup", "no-such-filer"),  # 404
        req("start_backup"),  # 409: failed over
        req("readd_filer", cluster=DR_CLUSTER),  # 404: not a protected cluster
        req("readd_filer", FILERS[1]),  # 409: nothing to re-add
        req("start_failover", FILERS[1]),  # 400: no failover_cluster, no target
        req("start_failover", FILERS[0], ("verify", "perhaps")),  # 400
        req("start_failover", FILERS[0], ("target", CLUSTER)),  # 404: not a DR cluster
        req("start_failover", FILERS[0], ("backupId", KNOWN["backupId"][0])),  # 404: no such backup
        req("start_failover"),  # 409: no verified backup
        req("start_failback", "no-such-filer"),  # 404
        req("start_failback", FILERS[1]),  # 409: it has not failed over
        req("list_recovery_points"),  # 200: none (the catalog holds no verified backup)
        req("list_recovery_points", "no-such-filer"),  # 404
        req("health"),
        req("list_filers"),
        req("list_filers", headers=proxied),  # 200, 403
        req("get_filer"),
        req("get_filer", FILERS[0], ("pageSize", "101")),  # 200, 400
        req("get_filer", "no-such-filer"),
        req("get_filer", headers=proxied),  # 404, 403
        req("status_page"),
        req("status_page", headers=proxied),  # 200, 403 (HTML)
        run("run_status", f"backup~{CLUSTER}~{FILERS[0]}"),
        run("cancel_run", f"backup-{CLUSTER}-{FILERS[0]}"),
        run("approve_deletes", f"backup~{CLUSTER}~{FILERS[0]}"),
        run("approve_changes", f"backup~{CLUSTER}~{FILERS[0]}"),
    ]


def send(app: FuzzApp, req: Request) -> HttpReply:
    return http_call(req.op.method, req.url(app.base_url), raw=req.body, headers=req.headers)


# --- what every answer must be -------------------------------------------------------------------------------


def header(reply: HttpReply, name: str) -> str:
    return next((v for k, v in reply.headers.items() if k.lower() == name.lower()), "")


def check_answer(app: FuzzApp, spec: dict[str, Any], req: Request, reply: HttpReply) -> None:
    where = f"{req}\n  -> {reply.status} {reply.body[:400]!r}"
    assert reply.status < 500, f"a server error: {where}"  # the 503 of an unreadable catalog: its own test
    assert reply.status != 202, f"a generated request started a run: {where}"
    assert str(reply.status) in req.op.responses, f"an undocumented status: {where}"
    schema = req.op.response_schema(reply.status)
    body: Any = None
    if schema is not None:
        assert header(reply, "Content-Type").startswith("application/json"), where
        body = json.loads(reply.body)
        assert schema_problems(spec, schema, body) == [], where
    elif set(req.op.responses[str(reply.status)].get("content") or {}) == {"text/html"}:
        assert header(reply, "Content-Type").startswith("text/html"), where
        text = reply.body.decode()
        if 400 <= reply.status < 500:  # a page for a person: the reason as escaped text
            assert re.search(r"<p>[^<]*\w[^<]*</p>", text), f"the refusal page says nothing: {where}"
            assert "<script" not in text, where
        check_no_leak(app, req, reply, where)
        return
    if 400 <= reply.status < 500:
        message = body["error"]
        assert message.strip(), where
        if reply.status == 400:  # names the parameter it refuses
            named = {name for name, _ in req.query} | {"failover_cluster"}
            assert any(name in message for name in named), f"the refusal names no parameter: {where}"
        if reply.status == 404:  # names the value it did not find
            assert any(repr(v) in message or (v and v in message) for v in req.values()), (
                f"the refusal names no value of the request: {where}"
            )
    check_no_leak(app, req, reply, where)


def check_no_leak(app: FuzzApp, req: Request, reply: HttpReply, where: str) -> None:
    seen = reply.body.decode("utf-8", "replace") + json.dumps(reply.headers)
    leaked = [what for what, value in app.secrets.items() if value in seen]
    assert not leaked, f"the answer holds the {leaked}: {where}"


def test_generated_requests_get_documented_answers_and_change_nothing(fuzz_app: FuzzApp) -> None:
    app, spec = fuzz_app, load_spec()
    ops = operations(spec)
    before = app.world()
    statuses: Counter[tuple[str, int]] = Counter()
    started = time.monotonic()

    @FUZZ
    @given(st.sampled_from(ops).flatmap(lambda op: requests_for(spec, op)))
    def one(req: Request) -> None:
        reply = send(app, req)
        statuses[(req.op.operation_id, reply.status)] += 1
        check_answer(app, spec, req, reply)

    for req in explicit_requests():
        one = example(req)(one)
    one()
    elapsed = time.monotonic() - started
    app.runner.run_until_idle(timeout=30)
    assert app.runner.statuses() == [], "a generated request started an orchestration"
    assert app.world() == before, "a generated request changed a container, a blob or a secret"
    total = sum(statuses.values())
    by_status = Counter(status for _, status in statuses.elements())
    print(
        f"\nhttp fuzz: {total} requests in {elapsed:.1f} s; by status {dict(sorted(by_status.items()))}; "
        f"by route and status {dict(sorted(statuses.items()))}"
    )
    assert total >= MAX_REQUESTS + len(explicit_requests())
    # The run reached every route and each kind of answer, not only "unknown filer".
    assert {op for op, _ in statuses} == {op.operation_id for op in ops}
    for op, expected in REACHED.items():
        assert expected <= {status for name, status in statuses if name == op}, (op, statuses)


def test_oversized_bodies_are_refused_first(fuzz_app: FuzzApp) -> None:
    """Every keyed route answers 413 (JSON, naming the limit) to a body over 64 KiB, before it reads the plan
    or the catalog; up to the limit the body is ignored as before."""
    app, spec = fuzz_app, load_spec()
    keyed = [op for op in operations(spec) if not op.anonymous]
    before = app.world()
    known = {"cluster": CLUSTER, "filer": FILERS[0], "id": f"backup~{CLUSTER}~{FILERS[0]}"}
    checked = 0
    for op in keyed:
        query = (("dryRun", "true"),) if op.operation_id == "start_backup" else ()  # else a preflight runs
        req = Request(op, {p["name"]: known[p["name"]] for p in op.params("path")}, query, {}, None)
        for size in (BODY_LIMIT, BODY_LIMIT + 1, 8 * BODY_LIMIT):
            sized = Request(op, req.path_params, query, {"Content-Type": "application/json"}, b" " * size)
            reply = send(app, sized)
            if size <= BODY_LIMIT:
                check_answer(app, spec, sized, reply)
                assert reply.status != 413, f"{sized}: {reply.status} {reply.body[:200]!r}"
                continue
            assert reply.status == 413, f"{sized}: {reply.status} {reply.body[:200]!r}"
            check_answer(app, spec, sized, reply)
            message = reply.json()["error"]
            assert str(BODY_LIMIT) in message and str(size) in message, message
            checked += 1
    assert checked == 2 * len(keyed) and len(keyed) >= 3
    app.runner.run_until_idle(timeout=30)
    assert app.runner.statuses() == []
    assert app.world() == before


@pytest.mark.parametrize("broken", ["VFXTDR_PLAN", "VFXTDR_PLAN_FILE"])
def test_a_broken_plan_is_a_json_500_the_probe_locates_and_the_body_limit_still_comes_first(
    fuzz_app: FuzzApp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, broken: str
) -> None:
    """The plan as JSON text that does not parse, or as a file that is not UTF-8 (health once failed with a
    bare 500 on it): keyed routes answer a JSON 500 naming the setting, an oversized body still a 413, and the
    anonymous probe answers 200 with where the problem is, the read API a JSON 500 as the keyed routes."""
    app, spec = fuzz_app, load_spec()
    before = app.world()
    if broken == "VFXTDR_PLAN":
        monkeypatch.setenv("VFXTDR_PLAN", "{broken")
        where = "VFXTDR_PLAN"
    else:
        where = str(tmp_path / "plan.json")
        (tmp_path / "plan.json").write_bytes(b"\xff" + json.dumps(app.plan_json).encode())
        monkeypatch.delenv("VFXTDR_PLAN")
        monkeypatch.setenv("VFXTDR_PLAN_FILE", where)
    health = http_call("GET", f"{app.base_url}/api/health")
    assert health.status == 200, health
    assert health.json() == {
        "status": "ok",
        "plan": f"invalid: 1 problem(s) at {where}; run `python -m shared.plan validate`",
    }
    for op in operations(spec):
        url = Request(op, {"cluster": CLUSTER, "filer": FILERS[0]}, (), {}, None).url(app.base_url)
        if op.operation_id in ("list_filers", "get_filer"):  # the read API reads the plan too
            reply = http_call(op.method, url)
            assert reply.status == 500 and broken in reply.json()["error"], (op, reply)
            assert schema_problems(spec, op.response_schema(500), reply.json()) == []
        if op.anonymous or "500" not in op.responses:
            continue  # the run routes read no plan: they answer as before
        reply = http_call(op.method, url)
        assert reply.status == 500 and broken in reply.json()["error"], (op, reply)
        assert schema_problems(spec, op.response_schema(500), reply.json()) == []
        reply = http_call(op.method, url, raw=b"{" * (BODY_LIMIT + 1))
        assert reply.status == 413 and str(BODY_LIMIT) in reply.json()["error"], (op, reply)
    app.runner.run_until_idle(timeout=30)
    assert app.runner.statuses() == []
    assert app.world() == before


def test_an_unreadable_catalog_is_the_documented_503_on_the_detail_and_unknown_in_the_list(
    fuzz_app: FuzzApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backup account's key in Key Vault is wrong (Azurite refuses it at once): the detail route answers
    the documented JSON 503 naming the filer, never a good state; the list shows that filer unknown, and red;
    the backup, readd, failover and drill doors (the cluster's drill too) answer the documented 503, and start
    nothing."""
    app, spec = fuzz_app, load_spec()
    app.vault.store("fz-wrong-key", "d3Jvbmcta2V5LW5vdC10aGUtYWNjb3VudHM=", content_type="text/plain")
    plan = json.loads(json.dumps(app.plan_json))
    plan["filers"][0]["backup"]["storage_key_secret"] = "fz-wrong-key"
    monkeypatch.setenv("VFXTDR_PLAN", json.dumps(plan))
    services.forget_vaults()
    ops = {op.operation_id: op for op in operations(spec)}
    detail = Request(ops["get_filer"], {"cluster": CLUSTER, "filer": FILERS[0]}, (), {}, None)
    reply = send(app, detail)
    assert reply.status == 503, reply
    assert schema_problems(spec, detail.op.response_schema(503), reply.json()) == []
    check_no_leak(app, detail, reply, str(reply))
    assert f"{CLUSTER}/{FILERS[0]}" in reply.json()["error"] or FILERS[0] in reply.json()["error"], reply.json()
    listing = Request(ops["list_filers"], {}, (), {}, None)
    reply = send(app, listing)
    check_answer(app, spec, listing, reply)
    states = {f["filer"]: (f["state"], f["rpo"]["badge"]) for f in reply.json()["filers"]}
    assert states[FILERS[0]] == ("unknown", "red") and states[FILERS[1]][0] == "failed_over", states
    # The doors that start a run of the filer answer the same documented 503 before starting anything.
    before = app.world()
    for name in ("start_backup", "readd_filer", "start_failover", "start_drill", "start_cluster_drill"):
        params = {"cluster": CLUSTER} if name == "start_cluster_drill" else {"cluster": CLUSTER, "filer": FILERS[0]}
        door = Request(ops[name], params, (), {}, None)
        reply = send(app, door)
        assert reply.status == 503, (name, reply)
        assert schema_problems(spec, door.op.response_schema(503), reply.json()) == []
        assert "fz-wrong-key" not in str(reply) and "backup account" in reply.json()["error"], reply.json()
        check_no_leak(app, door, reply, str(reply))
    app.runner.run_until_idle(timeout=30)
    assert app.runner.statuses() == []
    assert app.world() == before
