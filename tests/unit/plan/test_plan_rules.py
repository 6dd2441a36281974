"""Bad DR plans of every kind: each rule reports `path: problem`, all problems at once, never a secret."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.plan.cli import EXAMPLE, RULES
from shared.plan.load import PlanError, parse_plan
from shared.plan.model import INSECURE_ACK


class _Deleted:
    """The key is left out of the plan (a stable repr: test ids must match across xdist workers)."""

    def __repr__(self) -> str:
        return "<deleted>"


_DELETE = _Deleted()


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def mutate(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or delete) a value at a dotted path such as 'filers.0.source.account'."""
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is _DELETE:
        del node[key]
    else:
        node[key] = value
    return data


def problems_of(data: Any) -> tuple[str, ...]:
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    return err.value.problems


FINGERPRINT = "3f1a6c229e0b47d58a11c0fe7239bb045de698217caa1360f40eb255c9387de1"

# (dotted path to change, new value, the one problem expected)
CASES: list[tuple[str, Any, str]] = [
    # top level
    ("keyvault_url", _DELETE, "keyvault_url: required"),
    ("scheduel", "0 0 2 * * *", "scheduel: unknown key (did you mean 'schedule'?)"),
    ("version", 2, "version: must be 1, the only plan version this app reads"),
    ("version", "1", "version: must be an integer, got a string"),
    ("keyvault_url", "http://vfxtdr-kv.vault.azure.net", "keyvault_url: must be an https URL"),
    ("keyvault_url", "https://vfxtdr-kv.vault.azure.net/secrets", "keyvault_url: must be the vault's root URL"),
    ("keyvault_url", "https://vault.example.com", "keyvault_url: must be a Key Vault URL"),
    ("keyvault_url", "https://1kv.vault.azure.net", "keyvault_url: vault name must be 3-24"),
    ("schedule", "0 0 25 * * *", "schedule: not a valid NCRONTAB expression: hour field '25'"),
    ("schedule", "0 0 2 * *  * *", "schedule: not a valid NCRONTAB expression: schedule"),
    ("schedule", 5, "schedule: must be a string, got a number"),
    ("rpo_hours", 0, "rpo_hours: must be greater than 0, got 0"),
    ("rpo_hours", "24", "rpo_hours: must be a number, got a string"),
    ("storage_auth", "sas", 'storage_auth: must be "identity" or "key"'),
    ("storage_auth", _DELETE, "storage_auth: required"),
    ("short_offline_window", "yes", "short_offline_window: must be true or false, got a string"),
    ("catalog_container", "Catalog", "catalog_container: must be a container name"),
    ("copy", [], "copy: must be a JSON object, got an array"),
    ("copy.engine", "fast", "copy.engine: must be one of copy, blocks"),
    ("copy.concurrency", 0, "copy.concurrency: must be between 1 and 1000, got 0"),
    ("copy.concurrency", 1001, "copy.concurrency: must be between 1 and 1000, got 1001"),
    ("copy.concurrency", 64.0, "copy.concurrency: must be an integer, got a number"),
    ("copy.concurrency", True, "copy.concurrency: must be an integer, got a boolean"),
    ("copy.page_size", 5001, "copy.page_size: must be between 1 and 5000"),
    ("copy.poll_interval_seconds", 0, "copy.poll_interval_seconds: must be greater than 0"),
    ("copy.pending_limit_seconds", 10, "copy.pending_limit_seconds: must be longer than poll_interval_seconds"),
    ("copy.parallel_pages", 0, "copy.parallel_pages: must be between 1 and 100"),
    ("copy.pages_per_execution", 0, "copy.pages_per_execution: must be between 1 and 1000"),
    ("copy.chunk_size", 4, "copy.chunk_size: unknown key"),
    ("guard.max_delete_fraction", 1.5, "guard.max_delete_fraction: must be at least 0 and at most 1, got 1.5"),
    ("guard.max_delete_fraction", -0.1, "guard.max_delete_fraction: must be at least 0"),
    ("guard.max_change_fraction", 1.5, "guard.max_change_fraction: must be at least 0 and at most 1, got 1.5"),
    ("guard.max_change_fraction", "half", "guard.max_change_fraction: must be a number, got a string"),
    ("guard.min_count", -1, "guard.min_count: must be at least 0, got -1"),
    ("guard.approval_timeout_hours", 0, "guard.approval_timeout_hours: must be greater than 0"),
    # clusters
    ("clusters", {}, "clusters: must be a JSON array, got an object"),
    ("clusters", _DELETE, "clusters: required"),
    ("clusters.0", "primary", "clusters[0]: must be a JSON object, got a string"),
    ("clusters.0.name", "pri/mary", "clusters[0].name: must be 1-64 letters"),
    ("dr_clusters.0.name", "primary", "dr_clusters[0].name: cluster name 'primary' is already used by clusters[0]"),
    ("clusters.0.management_address", "10.0.0.5:0", "clusters[0].management_address: port must be"),
    ("clusters.0.management_address", "bad host", "clusters[0].management_address: must be an IP address"),
    ("clusters.0.management_address", "[::1", "clusters[0].management_address: must be host, host:port"),
    ("clusters.0.rpc_path", "cgi-bin/rpc2.py", "clusters[0].rpc_path: must be an absolute URL path"),
    ("clusters.0.region", "West US 2", "clusters[0].region: must be an Azure region name"),
    ("clusters.0.admin_password_secret", "admin_password", "clusters[0].admin_password_secret: must be a Key Vault"),
    ("clusters.0.admin_password_secret", "a" * 128, "clusters[0].admin_password_secret: must be a Key Vault"),
    ("clusters.0.admin_user", "", "clusters[0].admin_user: must be non-empty"),
    ("clusters.0.tls", _DELETE, "clusters[0].tls: required"),
    (
        "clusters.0.tls",
        {},
        "clusters[0].tls: give exactly one of ca_file, fingerprint_sha256, or verify: false (got none)",
    ),
    ("clusters.0.tls", {"verify": False, "ca_file": "/ca.pem"}, "clusters[0].tls: give exactly one"),
    ("clusters.0.tls", {"verify": True}, "clusters[0].tls.verify: may only be false"),
    (
        "clusters.0.tls",
        {"fingerprint_sha256": FINGERPRINT[:-1]},
        "clusters[0].tls.fingerprint_sha256: must be a SHA-256 certificate fingerprint",
    ),
    ("clusters.0.tls", {"fingerprint_sha256": "zz" + FINGERPRINT[2:]}, "clusters[0].tls.fingerprint_sha256: must"),
    ("clusters.0.tls", {"insecure": True}, "clusters[0].tls.insecure: unknown key"),
    (
        "clusters.0.tls",
        {"verify": False},
        "clusters[0].tls.acknowledge_insecure: required with verify: false, because 10.0.0.5 is not a loopback",
    ),
    (
        "clusters.0.tls",
        {"verify": False, "acknowledge_insecure": "yes"},
        "clusters[0].tls.acknowledge_insecure: must be exactly 'I accept that the admin password is sent to a "
        "server whose identity is not checked'",
    ),
    (
        "clusters.0.tls",
        {"fingerprint_sha256": FINGERPRINT, "acknowledge_insecure": INSECURE_ACK},
        "clusters[0].tls.acknowledge_insecure: only goes with verify: false",
    ),
    (
        "clusters.0.tls",
        {"verify": False, "acknowledge_insecure": True},
        "clusters[0].tls.acknowledge_insecure: must be a string, got a boolean",
    ),
    # filers: references and names
    ("filers", _DELETE, "filers: required"),
    ("filers.0.cluster", "secondary", "filers[0].cluster: 'secondary' is not one of clusters (primary)"),
    ("filers.0.cluster", "dr-east", "filers[0].cluster: 'dr-east' is not one of clusters (primary)"),
    (
        "filers.0.failover_cluster",
        "primary",
        "filers[0].failover_cluster: 'primary' is not one of dr_clusters (dr-east)",
    ),
    ("filers.1.name", "projects", "filers[1]: filer primary/projects is already listed at filers[0]"),
    ("filers.0.name", "my filer", "filers[0].name: must be 1-64 letters"),
    ("filers.0.enabled", "true", "filers[0].enabled: must be true or false, got a string"),
    ("filers.0.max_offline_minutes", 0, "filers[0].max_offline_minutes: must be between 1 and 10080, got 0"),
    ("filers.0.source", _DELETE, "filers[0].source: required"),
    ("filers.0.source.acount", "x", "filers[0].source.acount: unknown key (did you mean 'account'?)"),
    # storage names and endpoints
    ("filers.0.source.account", "AverePrimary", "filers[0].source.account: must be a storage account name"),
    ("filers.0.backup.account", "ab", "filers[0].backup.account: must be a storage account name"),
    ("filers.0.source.container", "ab", "filers[0].source.container: must be a container name"),
    ("filers.0.source.container", "pro--jects", "filers[0].source.container: must be a container name"),
    ("filers.0.source.container", "-projects", "filers[0].source.container: must be a container name"),
    ("filers.0.source.container", "projects-", "filers[0].source.container: must be a container name"),
    ("filers.0.source.container", "x" * 64, "filers[0].source.container: must be a container name"),
    (
        "filers.0.source.blob_endpoint",
        "http://avereprimarydata.blob.core.windows.net",
        "filers[0].source.blob_endpoint: must use https",
    ),
    (
        "filers.0.source.blob_endpoint",
        "ftp://avereprimarydata.blob.core.windows.net",
        "filers[0].source.blob_endpoint: must be an http(s) URL",
    ),
    (
        "filers.0.backup.blob_endpoint",
        "https://otheraccount.blob.core.windows.net",
        "filers[0].backup.blob_endpoint: names account 'otheraccount' but account is 'averedrbackup'",
    ),
    (
        "filers.0.backup.blob_endpoint",
        "https://averedrbackup.blob.core.windows.net/projects-a",
        "filers[0].backup.blob_endpoint: must be the account's endpoint with no path",
    ),
    (
        "filers.0.backup.blob_endpoint",
        "http://127.0.0.1:10000",
        "filers[0].backup.blob_endpoint: must be path style on an emulator: http://127.0.0.1:10000/averedrbackup",
    ),
    ("filers.0.backup.storage_key_secret", _DELETE, "filers[0].backup.storage_key_secret: required"),
    # regions, accounts, containers
    (
        "filers.0.backup.region",
        "westus2",
        "filers[0].backup.region: is the source's region (westus2): a backup must be in another region",
    ),
    (
        "filers.1.backup.region",
        "centralus",
        "filers[1].backup.region: account 'averedrbackup' has region centralus here but eastus2 at "
        "filers[0].backup.region",
    ),
    (
        "filers.1.backup.blob_endpoint",
        "https://averedrbackup.blob.core.windows.net:8443",
        "filers[1].backup.blob_endpoint: account 'averedrbackup' has blob_endpoint another value here "
        "than at filers[0].backup.blob_endpoint",
    ),
    (
        "filers.1.backup.containers",
        ["projects-b", "renders-b"],
        "filers[1].backup.containers[0]: 'projects-b' in account 'averedrbackup' is already a backup "
        "generation of primary/projects",
    ),
    (
        "filers.0.backup.containers",
        ["projects-a", "projects-a"],
        "filers[0].backup.containers: must name exactly two distinct containers",
    ),
    ("filers.0.backup.containers", ["projects-a"], "filers[0].backup.containers: must name exactly two"),
    ("filers.0.backup.containers", ["a", "b", "c"], "filers[0].backup.containers[0]: must be a container name"),
    ("filers.0.backup.containers", ["projects-a", 7], "filers[0].backup.containers[1]: must be a string"),
    ("filers.0.backup.containers", "projects-a", "filers[0].backup.containers: must be a JSON array"),
    ("filers.0.backup.generations", 1, "filers[0].backup.generations: must be between 2 and 26, got 1"),
    ("filers.0.backup.generations", 27, "filers[0].backup.generations: must be between 2 and 26, got 27"),
    ("filers.0.backup.generations", "7", "filers[0].backup.generations: must be an integer, got a string"),
    (
        "filers.0.backup.container_prefix",
        "Projects",
        "filers[0].backup.container_prefix: must make valid container names as <prefix>-<letter>",
    ),
    (
        "filers.0.backup.container_prefix",
        "p" * 62,
        "filers[0].backup.container_prefix: must make valid container names as <prefix>-<letter>",
    ),
    (
        "filers.1.backup.containers",
        ["projects-c", "renders-b"],
        "filers[1].backup.containers[0]: 'projects-c' in account 'averedrbackup' is already a backup generation "
        "of primary/projects",
    ),
    (
        "filers.0.backup.containers",
        ["projects-c", "projects-b"],
        "filers[0].backup.container_prefix: 'projects-c' in account 'averedrbackup' is already a backup "
        "generation of primary/projects (generation c)",
    ),
    (
        "catalog_container",
        "projects-a",
        "catalog_container: 'projects-a' in account 'averedrbackup' is a backup generation of "
        "primary/projects; the catalog needs its own container",
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CASES])
def test_each_rule(path: str, value: Any, expected: str) -> None:
    problems = problems_of(mutate(example(), path, value))
    assert any(p.startswith(expected) for p in problems), problems


# Defects whose further complaints are true consequences the operator needs to see.
CASCADES = {
    "clusters.0.name='pri/mary'": "the filers still name the old cluster",
    "dr_clusters.0.name='primary'": "filers[0].failover_cluster no longer names a DR cluster",
    "clusters.0.tls={'insecure': True}": "an unknown key leaves no trust form",
    "filers.1.name='projects'": "the renamed filer's derived container names collide too",
    "filers.0.backup.region='westus2'": "the same account is now declared in two regions",
    "filers.0.backup.containers=['a', 'b', 'c']": "three names are also not exactly two",
}


def test_each_case_yields_only_its_own_problem() -> None:
    """A single defect must not cascade into unrelated complaints (the operator reads every line)."""
    noisy, cascaded = {}, set()
    for path, value, _ in CASES:
        problems = problems_of(mutate(example(), path, value))
        case = f"{path}={value!r}"
        if len(problems) > 1:
            cascaded.add(case)
            if case not in CASCADES:
                noisy[case] = problems
    assert not noisy, noisy
    assert cascaded == set(CASCADES)


def test_backup_into_a_source_container() -> None:
    data = example()
    data["filers"][1]["backup"] |= {
        "account": "avereprimarydata",
        "region": "westus2",
        "blob_endpoint": "https://avereprimarydata.blob.core.windows.net",
        "containers": ["projects", "renders-b"],
    }
    data["filers"][1]["source"] |= {
        "account": "averesecond",
        "region": "centralus",
        "blob_endpoint": "https://averesecond.blob.core.windows.net",
    }
    assert problems_of(data) == (
        "filers[1].backup.containers[0]: 'projects' in account 'avereprimarydata' is already the source of "
        "primary/projects; a backup never writes into a source container",
    )


def test_derived_backup_names_that_collide_say_how_to_fix() -> None:
    data = example()
    data["clusters"].append(copy.deepcopy(data["clusters"][0]) | {"name": "secondary"})
    data["filers"][1] |= {"cluster": "secondary", "name": "projects"}
    data["filers"][1]["source"]["container"] = "projects2"
    for filer in data["filers"]:
        filer["backup"].pop("containers", None)
    problems = problems_of(data)
    assert len(problems) == 2
    assert problems[0].startswith(
        "filers[1].backup.containers[0]: 'projects-a' in account 'averedrbackup' "
        "is already a backup generation of primary/projects"
    )
    assert problems[0].endswith("(the name is derived from the filer name: set backup.containers)")


def test_key_auth_needs_every_source_key() -> None:
    data = example()
    data["storage_auth"] = "key"
    data["filers"][0]["source"]["key_secret"] = "avereprimarydata-key"
    assert problems_of(data) == ('filers[1].source.key_secret: required when storage_auth is "key"',)


def test_loopback_endpoints_may_be_http_but_keyvault_stays_https() -> None:
    data = example()
    for i, filer in enumerate(data["filers"]):
        filer["source"]["blob_endpoint"] = "http://127.0.0.1:10000/avereprimarydata"
        filer["backup"]["blob_endpoint"] = "http://localhost:10000/averedrbackup"
        assert i < 2
    data["keyvault_url"] = "https://127.0.0.1:8443"
    data["clusters"][0]["management_address"] = "[::1]:8443"
    assert parse_plan(data).keyvault_url == "https://127.0.0.1:8443"
    data["keyvault_url"] = "http://127.0.0.1:8443"
    assert problems_of(data) == ("keyvault_url: must be an https URL such as https://<vault-name>.vault.azure.net",)


def test_not_an_object() -> None:
    assert problems_of([]) == ("plan: must be a JSON object, got an array",)


def test_every_problem_is_reported_at_once() -> None:
    data = example()
    mutate(data, "schedule", "bad")
    mutate(data, "copy.concurrency", 0)
    mutate(data, "clusters.0.region", "West")
    mutate(data, "filers.0.backup.region", "westus2")
    mutate(data, "filers.1.cluster", "nope")
    mutate(data, "filers.1.backup.account", "X")
    problems = problems_of(data)
    assert [p.split(":")[0] for p in problems] == [
        "schedule",
        "copy.concurrency",
        "clusters[0].region",
        "filers[1].backup.account",
        "filers[1].cluster",
        "filers[0].backup.region",
    ]
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    assert str(err.value).startswith("invalid DR plan (6 problems):\n  schedule: ")
    assert all(d.rule in RULES for d in err.value.details)


def test_secret_values_are_never_echoed() -> None:
    account_key = "q3Zx9v+/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefGHIJKLMNOPqrstuvwx=="
    sas = "sv=2026-06-06&sig=Zm9vYmFyYmF6cXV4c2VjcmV0c2ln%3D"
    data = example()
    data["storage_auth"] = "key"
    data["filers"][0]["source"]["key_secret"] = account_key  # pasted the key instead of its secret's name
    data["filers"][1]["source"]["key_secret"] = "renders-key"
    data["filers"][0]["backup"]["blob_endpoint"] = f"https://averedrbackup.blob.core.windows.net/?{sas}"
    data["clusters"][0]["admin_password_secret"] = "P@ssw0rd!correct horse"
    with pytest.raises(PlanError) as err:
        parse_plan(data)
    text = str(err.value) + repr(err.value.details)
    assert "filers[0].source.key_secret: must be a Key Vault secret *name*" in text
    assert "filers[0].backup.blob_endpoint: must not carry a query" in text
    for secret in (account_key, "Zm9vYmFy", "P@ssw0rd", "correct horse"):
        assert secret not in text


def test_every_rule_has_an_explanation() -> None:
    rules_seen = set()
    for path, value, _ in CASES:
        with pytest.raises(PlanError) as err:
            parse_plan(mutate(example(), path, value))
        rules_seen |= {d.rule for d in err.value.details}
    assert rules_seen <= set(RULES)
    assert len(rules_seen) >= 20


@pytest.mark.parametrize(
    ("address", "tls", "problem"),
    [
        ("10.0.0.5", {"verify": False}, "acknowledge_insecure: required with verify: false"),
        ("avere.contoso.com:8443", {"verify": False}, "acknowledge_insecure: required with verify: false"),
        ("[fd00::5]", {"verify": False}, "acknowledge_insecure: required with verify: false"),
        ("localhost.contoso.com", {"verify": False}, "acknowledge_insecure: required with verify: false"),
        ("10.0.0.5", {"verify": False, "acknowledge_insecure": INSECURE_ACK.lower()}, "must be exactly"),
        ("10.0.0.5", {"verify": False, "acknowledge_insecure": INSECURE_ACK}, None),
        ("127.0.0.1:9443", {"verify": False}, None),  # the local stack: the peer is this machine
        ("localhost", {"verify": False}, None),
        ("[::1]:9443", {"verify": False}, None),
        ("10.0.0.5", {"ca_file": "/etc/ssl/avere-ca.pem"}, None),
    ],
)
def test_unverified_tls_needs_loopback_or_an_acknowledgement(
    address: str, tls: dict[str, Any], problem: str | None
) -> None:
    data = example()
    data["clusters"][0].update(management_address=address, tls=tls)
    if problem is None:
        trust = parse_plan(data).clusters[0].tls
        assert trust.insecure_acknowledged == (tls.get("acknowledge_insecure") == INSECURE_ACK)
        return
    found = problems_of(data)
    assert len(found) == 1 and found[0].startswith("clusters[0].tls.") and problem in found[0], found
