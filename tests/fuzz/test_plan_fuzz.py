"""The DR plan loader under hostile input: random JSON, mutations of the example plan (`python -m shared.plan
example`), mangled JSON text and bytes. Every input either loads or raises PlanError whose every problem
names a path into the document (and a rule the CLI explains); no other exception, ever. Variants that keep
the plan valid load and round-trip; a pasted secret is never echoed.

Bounded and derandomized: the same inputs every run (until hypothesis or this file changes). Each test prints
how many inputs it ran and how long it took.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.plan.cli import EXAMPLE, RULES
from shared.plan.load import ENV_PLAN, Plan, PlanError, load_plan_file, load_plan_text, parse_plan
from shared.plan.model import BackupStorage, Cluster, CopySettings, Filer, GuardSettings, SourceStorage, TlsTrust

TOP_KEYS = tuple(EXAMPLE)


def fuzz(count: int) -> settings:
    return settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- what every outcome must be ---------------------------------------------------------------------------

_SEGMENT = re.compile(r'\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def path_root(path: str) -> str | None:
    """The document key a problem path starts at; None when the path does not parse as a path."""
    segments: list[str] = []
    pos = 0
    while pos < len(path):
        found = _SEGMENT.match(path, pos)
        if found is None or (pos == 0 and path.startswith(".")):
            return None
        name, index, quoted = found.groups()
        segments.append(name if name is not None else index if index is not None else json.loads(quoted))
        pos = found.end()
    return segments[0] if segments else None


def check_error(err: PlanError, doc: Any, source: str) -> None:
    """Every problem names a place: the source (text-level problems), `plan` (not an object) or a path whose
    first key is a plan key or a key of the document; with a message and a rule the CLI can explain."""
    assert err.details, "a PlanError with no problem"
    roots = {*TOP_KEYS, *(doc if isinstance(doc, dict) else ())}
    for problem in err.details:
        where = f"{problem!r} (all: {err.problems})"
        assert isinstance(problem.path, str) and problem.path.strip(), f"a problem without a path: {where}"
        assert isinstance(problem.message, str) and problem.message.strip(), where
        assert problem.rule in RULES, f"rule {problem.rule!r} has no explanation in shared/plan/cli.py: {where}"
        if problem.path in (source, "plan"):
            continue
        assert path_root(problem.path) in roots, f"the path names no place in the document: {where}"
    assert all(p in str(err) for p in err.problems)


def outcome(load: Callable[[], Plan], doc: Any, source: str = ENV_PLAN) -> Plan | PlanError:
    """Load; a PlanError is checked and returned, any other exception fails the test (it propagates)."""
    try:
        plan = load()
    except PlanError as err:
        check_error(err, doc, source)
        return err
    assert isinstance(plan, Plan)
    check_round_trip(plan)
    return plan


def check_round_trip(plan: Plan) -> None:
    """A plan that loaded is made of finite numbers and reads back as itself from its own JSON."""
    text = json.dumps(Plan.to_json(plan), allow_nan=False)  # ValueError on NaN/Infinity: not JSON
    assert parse_plan(json.loads(text)) == plan


# --- generated values --------------------------------------------------------------------------------------


def _keys_of(*parts: type) -> list[str]:
    return [k for part in parts for k in part._keys()]  # type: ignore[attr-defined]


PLAN_KEYS = sorted(
    {*TOP_KEYS, *_keys_of(Cluster, Filer, SourceStorage, BackupStorage, TlsTrust, CopySettings, GuardSettings)}
)
HOSTILE = [
    10**400,
    -(10**400),
    2**63,
    -1,
    0,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "\x00",
    "\n",
    "²",
    "١٢",
    "\uff48\uff54\uff54\uff50\uff53://x",
    "https://[",
    "https://[::1",
    "https://a\uff03b.blob.core.windows.net",
    "https://h:99999/x",
    "http://127.0.0.1:1/acct",
    "https://x.vault.azure.net/secrets/s?x=1",
    "0 0 2 * * *",
    "*/0 * * * * *",
    "x" * 3000,
    "\u202e\u0301",
    "\ud7ff\ue000",
    "a/b",
    "../..",
    "%00",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30), st.sampled_from(HOSTILE)
)
keys = st.one_of(st.sampled_from(PLAN_KEYS), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def dumps(doc: Any) -> str:
    return json.dumps(doc)  # NaN and Infinity as Python's json writes (and reads) them


def doc_of(text: str) -> Any:
    """The document a text holds, when it parses (to know which keys a problem path may start at)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


# --- 1. random JSON ------------------------------------------------------------------------------------------


def test_random_json_is_a_plan_error_naming_paths(report: Callable[[str, int], None]) -> None:
    ran = 0

    @fuzz(500)
    @given(st.one_of(json_values, st.dictionaries(st.sampled_from(TOP_KEYS), json_values, max_size=12)))
    @example({"": 1, "a.b[0]": 2, "x\ny": 3})  # keys that are not plain names still get a path
    @example({"rpo_hours": 10**400})
    @example({"filers": [{"backup": {"containers": [{}, "x-a"]}}]})
    def one(doc: Any) -> None:
        nonlocal ran
        ran += 1
        outcome(lambda: parse_plan(doc), doc)
        outcome(lambda: load_plan_text(dumps(doc)), doc)

    one()
    report("random JSON documents", ran)
    assert ran >= 500


# --- 2. mutations of the example plan -----------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def walk(node: Any, at: Path_ = ()) -> Iterator[Path_]:
    """Every place in the document (not the root)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*at, key)
        yield from walk(value, (*at, key))


def parent_of(doc: Any, path: Path_) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def garble(draw: st.DrawFn, value: Any) -> Any:
    if isinstance(value, str):
        pos = draw(st.integers(0, len(value)))
        char = draw(st.one_of(st.characters(codec="utf-8"), st.sampled_from(list("²١ :/?#[]@%\x00\u0301"))))
        how = draw(st.sampled_from(["insert", "replace", "delete", "upper", "repeat"]))
        return {
            "insert": value[:pos] + char + value[pos:],
            "replace": value[:pos] + char + value[pos + 1 :],
            "delete": value[:pos] + value[pos + 1 :],
            "upper": value.upper(),
            "repeat": value * 40,
        }[how]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):  # (kept under 4300 digits: json.dumps could not write more)
        return draw(
            st.sampled_from([-value, value * 10**300 if abs(value) < 10**3000 else value, value + 1, 10**4000, 0])
        )
    if isinstance(value, float):
        return draw(st.sampled_from([-value, value * 1e308, value + 0.5, 10**4000, 0.0]))
    return draw(json_values)


@st.composite
def mutated_example(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    doc = copy.deepcopy(EXAMPLE)
    done = []
    for _ in range(draw(st.integers(1, 3))):
        spots = list(walk(doc))
        if not spots:
            break
        path = draw(st.sampled_from(spots))
        parent, key = parent_of(doc, path), path[-1]
        how = draw(st.sampled_from(["drop", "retype", "hostile", "garble", "unknown-key", "duplicate", "empty"]))
        if how == "drop":
            del parent[key]
        elif how == "retype":
            parent[key] = draw(json_values.filter(lambda v, old=parent[key]: type(v) is not type(old)))
        elif how == "hostile":
            parent[key] = draw(st.sampled_from(HOSTILE))
        elif how == "garble":
            parent[key] = garble(draw, parent[key])
        elif how == "unknown-key" and isinstance(parent, dict):
            parent[draw(keys)] = draw(json_values)
        elif how == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[key] = draw(st.sampled_from([[], {}, "", None]))
        done.append(f"{how} {'.'.join(map(str, path))}")
    return doc, done


def test_mutations_of_the_example_load_or_name_their_problems(report: Callable[[str, int], None]) -> None:
    ran, loaded = 0, 0

    still_valid = copy.deepcopy(EXAMPLE) | {"short_offline_window": False}
    no_vault = {k: v for k, v in EXAMPLE.items() if k != "keyvault_url"}

    @fuzz(800)
    @given(mutated_example())
    @example((still_valid, ["garble short_offline_window"]))  # the assertion below does not depend on draws
    @example((no_vault, ["drop keyvault_url"]))
    def one(case: tuple[dict[str, Any], list[str]]) -> None:
        nonlocal ran, loaded
        doc, _ = case
        ran += 1
        result = outcome(lambda: load_plan_text(dumps(doc)), doc)
        outcome(lambda: parse_plan(doc), doc)
        loaded += isinstance(result, Plan)

    one()
    report(f"mutated example plans ({loaded} still valid)", ran)
    assert ran >= 802
    assert 0 < loaded < ran  # both kinds of outcome were exercised


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("rpo_hours",), math.nan),
        (("rpo_hours",), math.inf),
        (("rpo_hours",), 10**400),
        (("rpo_hours",), -(10**400)),
        (("guard", "max_delete_fraction"), math.nan),
        (("copy", "poll_interval_seconds"), math.nan),
        (("guard", "approval_timeout_hours"), math.inf),
        (("clusters", 0, "poll_seconds"), math.nan),
        (("copy", "pending_limit_seconds"), 10**400),
        (("clusters", 0, "management_address"), "10.0.0.5:²"),
        (("clusters", 0, "management_address"), "10.0.0.5:١٢"),
        (("keyvault_url",), "https://[oops"),
        (("filers", 0, "backup", "blob_endpoint"), "https://[::1"),
        (("filers", 0, "source", "blob_endpoint"), "https://a\uff03b.blob.core.windows.net"),
        (("filers", 0, "backup", "containers"), [{}, "projects-b"]),
        (("filers", 0, "backup", "containers"), [[], []]),
    ],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else repr(v)[:24],
)
def test_values_that_once_escaped_as_other_exceptions_are_plan_errors_at_their_path(where: Path_, value: Any) -> None:
    doc = copy.deepcopy(EXAMPLE)
    parent_of(doc, where)[where[-1]] = value
    for load in (lambda: load_plan_text(dumps(doc)), lambda: parse_plan(doc)):
        result = outcome(load, doc)
        assert isinstance(result, PlanError), f"{where} = {value!r} loaded"
        named = ".".join(str(k) for k in where[:2] if isinstance(k, str))
        assert any(p.path.replace("[0]", "").startswith(named) for p in result.details), result.problems


# --- 3. variants that stay valid -------------------------------------------------------------------------------

OPTIONAL = [
    ("short_offline_window",),
    ("catalog_container",),
    ("copy",),
    ("guard",),
    ("copy", "engine"),
    ("copy", "concurrency"),
    ("copy", "page_size"),
    ("copy", "poll_interval_seconds"),
    ("copy", "pending_limit_seconds"),
    ("copy", "parallel_pages"),
    ("copy", "pages_per_execution"),
    ("guard", "max_delete_fraction"),
    ("guard", "min_count"),
    ("guard", "approval_timeout_hours"),
    ("clusters", 0, "rpc_path"),
    ("clusters", 0, "admin_user"),
    ("filers", 0, "enabled"),
    ("filers", 0, "max_offline_minutes"),
    ("filers", 0, "failover_cluster"),
    ("filers", 1, "max_offline_minutes"),
    ("filers", 0, "backup", "containers"),
]
finite = {"allow_nan": False, "allow_infinity": False}
VALID = {
    ("rpo_hours",): st.one_of(st.integers(1, 10**6), st.floats(0.001, 1e6, **finite)),
    ("copy", "concurrency"): st.integers(1, 1000),
    ("copy", "page_size"): st.integers(1, 5000),
    ("copy", "parallel_pages"): st.integers(1, 100),
    ("copy", "pages_per_execution"): st.integers(1, 1000),
    ("copy", "engine"): st.sampled_from(["copy", "blocks"]),
    ("copy", "poll_interval_seconds"): st.floats(0.001, 600, **finite),  # always below the limit (and 3600)
    ("copy", "pending_limit_seconds"): st.floats(700, 1e7, **finite),  # always above the poll (and 15)
    ("guard", "max_delete_fraction"): st.floats(0, 1, **finite),
    ("guard", "min_count"): st.integers(0, 10**12),
    ("guard", "approval_timeout_hours"): st.floats(0.001, 1e4, **finite),
    ("clusters", 0, "poll_seconds"): st.floats(1, 600, **finite),
    ("filers", 0, "max_offline_minutes"): st.integers(1, 7 * 24 * 60),
    ("short_offline_window",): st.booleans(),
    ("filers", 1, "enabled"): st.booleans(),
    ("catalog_container",): st.from_regex(r"cat-[a-z0-9]{1,20}", fullmatch=True),
    ("schedule",): st.sampled_from(["0 0 2 * * *", "0 */5 * * * *", "0 30 1 * * 1-5", "*/10 * * * *"]),
    ("clusters", 0, "admin_user"): st.from_regex(r"[A-Za-z0-9_.@-]{1,30}", fullmatch=True),
}


@st.composite
def valid_variant(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    for where, values in VALID.items():
        if draw(st.booleans()):
            parent_of(doc, where)[where[-1]] = draw(values)
    for where in draw(st.lists(st.sampled_from(OPTIONAL), max_size=4, unique=True)):
        with contextlib.suppress(KeyError):  # its parent went already
            del parent_of(doc, where)[where[-1]]
    if draw(st.booleans()):
        doc["filers"].reverse()
    order = draw(st.permutations(list(doc)))
    return {k: doc[k] for k in order}


def test_valid_variants_load_and_keep_their_values(report: Callable[[str, int], None]) -> None:
    ran = 0

    @fuzz(300)
    @given(valid_variant())
    def one(doc: dict[str, Any]) -> None:
        nonlocal ran
        ran += 1
        plan = load_plan_text(dumps(doc))
        check_round_trip(plan)
        assert plan.rpo_hours == float(doc["rpo_hours"])
        assert plan.copy.concurrency == doc.get("copy", {}).get("concurrency", 64)
        assert plan.guard.min_count == doc.get("guard", {}).get("min_count", 100)
        assert {f.name for f in plan.filers} == {"projects", "renders"}

    one()
    report("valid variants of the example plan", ran)
    assert ran >= 300


# --- 4. mangled text and bytes -------------------------------------------------------------------------------


@st.composite
def mangled_text(draw: st.DrawFn) -> str:
    text = json.dumps(EXAMPLE, indent=draw(st.sampled_from([None, 2])))
    how = draw(st.sampled_from(["truncate", "insert", "delete", "duplicate-key", "deep", "digits"]))
    pos = draw(st.integers(0, len(text)))
    if how == "truncate":
        return text[:pos]
    if how == "insert":
        return text[:pos] + draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)) + text[pos:]
    if how == "delete":
        return text[:pos] + text[pos + draw(st.integers(1, 20)) :]
    if how == "duplicate-key":
        return text.replace('"schedule"', '"rpo_hours": 1, "schedule"', 1)
    if how == "deep":
        depth = draw(st.integers(1, 100_000))
        return '{"copy": ' + "[" * depth + "]" * draw(st.sampled_from([0, depth])) + "}"
    return text.replace('"rpo_hours": 26', '"rpo_hours": 1' + "0" * draw(st.integers(300, 6000)), 1)


def test_mangled_text_and_bytes_are_plan_errors(tmp_path: Path, report: Callable[[str, int], None]) -> None:
    ran = 0
    plan_file = tmp_path / "plan.json"

    @fuzz(300)
    @given(mangled_text(), st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf"]), st.booleans())
    @example("[" * 100_000, b"", False)
    @example('{"rpo_hours": 1' + "0" * 5000 + "}", b"", False)
    @example(json.dumps(EXAMPLE), b"\xff", True)
    def one(text: str, junk: bytes, at_start: bool) -> None:
        nonlocal ran
        ran += 1
        doc = doc_of(text)
        outcome(lambda: load_plan_text(text), doc)
        data = text.encode()
        plan_file.write_bytes(junk + data if at_start else data + junk)
        outcome(lambda: load_plan_file(plan_file), doc, str(plan_file))

    one()
    report("mangled plan texts (each also as a file with stray bytes)", ran)
    assert ran >= 300


# --- 5. a pasted secret is not echoed --------------------------------------------------------------------------

SECRET_FIELDS = [
    ("clusters", 0, "admin_password_secret"),
    ("dr_clusters", 0, "admin_password_secret"),
    ("filers", 0, "backup", "storage_key_secret"),
    ("filers", 1, "source", "key_secret"),
    ("keyvault_url",),
    ("filers", 0, "source", "blob_endpoint"),
    ("filers", 0, "backup", "blob_endpoint"),
]
SHAPES = [
    "{}",
    "https://averedrbackup.blob.core.windows.net/?sv=2024-01-01&sig={}",
    "https://user:{}@averedrbackup.blob.core.windows.net",
    "DefaultEndpointsProtocol=https;AccountKey={}",
    "https://vfxtdr-kv.vault.azure.net/#{}",
]


def test_a_pasted_secret_is_refused_without_being_echoed(report: Callable[[str, int], None]) -> None:
    ran = 0
    key_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    @fuzz(200)
    @given(
        st.sampled_from(SECRET_FIELDS),
        st.sampled_from(SHAPES),
        st.text(st.sampled_from(key_chars), min_size=20, max_size=60),
    )
    def one(where: Path_, shape: str, body: str) -> None:
        nonlocal ran
        ran += 1
        secret = f"k3y+{body}=="  # '+' and '=': never a valid secret name, as a pasted account key
        doc = copy.deepcopy(EXAMPLE)
        parent_of(doc, where)[where[-1]] = shape.format(secret)
        err = outcome(lambda: load_plan_text(dumps(doc)), doc)
        assert isinstance(err, PlanError), f"{where} = {shape.format(secret)!r} loaded"
        shown = str(err) + repr(err.details)
        assert secret not in shown and body not in shown, f"the secret is echoed: {err.problems}"

    one()
    report("plans with a pasted secret", ran)
    assert ran >= 200


# --- counts ---------------------------------------------------------------------------------------------------


@pytest.fixture
def report() -> Iterator[Callable[[str, int], None]]:
    """Prints how many inputs a test ran and how long it took (pytest -s shows it)."""
    started = time.monotonic()
    said: list[tuple[str, int]] = []
    yield lambda what, count: said.append((what, count))
    for what, count in said:
        print(f"\nplan fuzz: {count} {what} in {time.monotonic() - started:.1f} s")
