"""The DR plan's cross-field rules, run on the raw JSON so they report even where a part has other errors."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.plan.model import GENERATION_IDS, MAX_GENERATIONS, MIN_GENERATIONS, container_base, default_containers
from shared.plan.validate import Problems, blob_endpoint, endpoint_account


@dataclass(frozen=True)
class StoreView:
    """What the rules need of a source or backup; None where the plan does not say (or says wrongly)."""

    account: str | None
    region: str | None
    url: str | None
    containers: tuple[str, ...]


@dataclass(frozen=True)
class FilerView:
    path: str
    cluster: str | None
    name: str | None
    failover: str | None
    has_key_secret: bool
    source: StoreView
    backup: StoreView
    derived_containers: bool  # backup.containers not given: named after the filer
    derived_prefix: bool = False  # generations c onwards are named after the filer (no container_prefix)
    first_later: int = 2  # backup.containers[first_later:] are generations c onwards

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.name}"


def _text(data: Any, *keys: str) -> str | None:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, str) else None


def _store(data: Any, containers: tuple[str, ...]) -> StoreView:
    url, account = _text(data, "blob_endpoint"), _text(data, "account")
    # A bad URL (perhaps carrying a SAS) is reported by its own check and is never compared or echoed.
    good = url is not None and blob_endpoint(url) is None and not (account and endpoint_account(url, account))
    return StoreView(
        account=account,
        region=_text(data, "region"),
        url=url.rstrip("/") if good and url else None,
        containers=containers,
    )


def filer_views(items: Iterable[tuple[str, Any]]) -> list[FilerView]:
    out = []
    for path, raw in items:
        name = _text(raw, "name")
        source = raw.get("source") if isinstance(raw, dict) else None
        backup = raw.get("backup") if isinstance(raw, dict) else None
        listed = backup.get("containers") if isinstance(backup, dict) else None
        if isinstance(listed, list):
            gens = tuple(dict.fromkeys(c for c in listed if isinstance(c, str)))
        else:
            gens = default_containers(name) if name and listed is None else ()
        first_later = len(gens)
        gens = (*gens, *_later_generations(backup, name))
        src_container = _text(source, "container")
        out.append(
            FilerView(
                path=path,
                cluster=_text(raw, "cluster"),
                name=name,
                failover=_text(raw, "failover_cluster"),
                has_key_secret=isinstance(source, dict) and "key_secret" in source,
                source=_store(source, (src_container,) if src_container else ()),
                backup=_store(backup, gens),
                derived_containers=listed is None,
                first_later=first_later,
                derived_prefix=not (isinstance(backup, dict) and isinstance(backup.get("container_prefix"), str)),
            )
        )
    return out


def _later_generations(backup: Any, name: str | None) -> tuple[str, ...]:
    """The containers of generations c onwards, when the count and the prefix (or the filer name) say."""
    count = backup.get("generations", MIN_GENERATIONS) if isinstance(backup, dict) else MIN_GENERATIONS
    prefix = backup.get("container_prefix") if isinstance(backup, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or not MIN_GENERATIONS <= count <= MAX_GENERATIONS:
        return ()  # reported by the part's own check
    if prefix is None and name:
        prefix = container_base(name)
    if not isinstance(prefix, str) or not prefix:
        return ()
    return tuple(f"{prefix}-{g}" for g in GENERATION_IDS[2:count])


def cluster_names(items: Iterable[tuple[str, Any]] | None) -> list[tuple[str, str]] | None:
    """(path, name) of each listed cluster; None when the list is too broken to say which names exist."""
    if items is None:
        return None
    out = [(path, _text(raw, "name")) for path, raw in items]
    if any(name is None for _, name in out):
        return None
    return [(path, name) for path, name in out if name]


def check_references(
    problems: Problems,
    clusters: list[tuple[str, str]] | None,
    dr_clusters: list[tuple[str, str]] | None,
    filers: list[FilerView],
    storage_auth: str | None,
) -> None:
    """Unique names; filers name declared clusters; key-mode plans name every source key.

    A cluster list that is itself broken (reported already) is not used to judge the filers' references.
    """
    seen: dict[str, str] = {}
    for path, name in (*(clusters or ()), *(dr_clusters or ())):
        if name in seen:
            problems.add(f"{path}.name", f"cluster name {name!r} is already used by {seen[name]}", "unique")
        seen.setdefault(name, path)
    protected = {name for _, name in clusters} if clusters is not None else None
    usable = {name for _, name in dr_clusters} if dr_clusters is not None else None
    filer_seen: dict[str, str] = {}
    for f in filers:
        if f.cluster and f.name:
            if f.key in filer_seen:
                problems.add(f.path, f"filer {f.key} is already listed at {filer_seen[f.key]}", "unique")
            filer_seen.setdefault(f.key, f.path)
        if f.cluster and protected is not None and f.cluster not in protected:
            problems.add(
                f"{f.path}.cluster",
                f"{f.cluster!r} is not one of clusters ({', '.join(sorted(protected)) or 'none declared'})",
                "reference",
            )
        if f.failover and usable is not None and f.failover not in usable:
            problems.add(
                f"{f.path}.failover_cluster",
                f"{f.failover!r} is not one of dr_clusters ({', '.join(sorted(usable)) or 'none declared'})",
                "reference",
            )
        if storage_auth == "key" and not f.has_key_secret:
            problems.add(f"{f.path}.source.key_secret", 'required when storage_auth is "key"', "required")


def check_storage(problems: Problems, filers: list[FilerView], catalog: str | None) -> None:
    """Backups in another region; accounts consistent; backup and catalog containers never shared."""
    for f in filers:
        if f.source.region and f.source.region == f.backup.region:
            problems.add(
                f"{f.path}.backup.region",
                f"is the source's region ({f.source.region}): a backup must be in another region",
                "regions-differ",
            )
    _check_accounts(problems, filers)
    used = _check_containers(problems, filers)
    _check_drill_prefix(problems, used, catalog)
    if catalog:
        for f in filers:
            owner = used.get((f.backup.account or "", catalog))
            if owner:
                problems.add(
                    "catalog_container",
                    f"{catalog!r} in account {f.backup.account!r} is {owner}; the catalog needs its own container",
                    "catalog-container",
                )
                break


# A drill copies a backup into a scratch container of the backup account named with this prefix, and deletes it
# when the drill ends: no container the plan names in a backup account may look like one.
DRILL_PREFIX = "drill-"


def _check_drill_prefix(problems: Problems, used: dict[tuple[str, str], str], catalog: str | None) -> None:
    backup_accounts = {account for (account, _), use in used.items() if use.startswith("a backup generation")}
    named = sorted(
        (account, container, use)
        for (account, container), use in used.items()
        if account in backup_accounts and container.startswith(DRILL_PREFIX)
    )
    for account, container, use in named:
        problems.add(
            "filers",
            f"{container!r} in account {account!r} ({use}) starts with {DRILL_PREFIX!r}, "
            "the prefix reserved for drills' scratch copies",
            "drill-prefix",
        )
    if catalog and catalog.startswith(DRILL_PREFIX):
        problems.add(
            "catalog_container",
            f"starts with {DRILL_PREFIX!r}, the prefix reserved for drills' scratch copies",
            "drill-prefix",
        )


def _check_accounts(problems: Problems, filers: list[FilerView]) -> None:
    """One account lives in one region behind one endpoint, wherever the plan mentions it."""
    seen: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (account, attribute) -> value -> path
    for f in filers:
        for where, store in ((f"{f.path}.source", f.source), (f"{f.path}.backup", f.backup)):
            if store.account and store.region:
                seen[(store.account, "region")].setdefault(store.region, f"{where}.region")
            if store.account and store.url:
                seen[(store.account, "blob_endpoint")].setdefault(store.url, f"{where}.blob_endpoint")
    for (account, attribute), values in seen.items():
        (first_value, first_path), *others = values.items()
        for value, where in others:
            said = f"{value} here but {first_value}" if attribute == "region" else "another value here than"
            problems.add(where, f"account {account!r} has {attribute} {said} at {first_path}", "account-region")


def _check_containers(problems: Problems, filers: list[FilerView]) -> dict[tuple[str, str], str]:
    """Backup containers are nobody's source and belong to one filer; returns (account, container) -> use."""
    used: dict[tuple[str, str], str] = {}
    for f in filers:
        for container in f.source.containers:
            if f.source.account:
                used.setdefault((f.source.account, container), f"the source of {f.key}")
    for f in filers:
        if not f.backup.account:
            continue
        for g, container in enumerate(f.backup.containers):
            owner = used.get((f.backup.account, container))
            if owner is None:
                used[(f.backup.account, container)] = f"a backup generation of {f.key}"
                continue
            why = "; a backup never writes into a source container" if owner.startswith("the source") else ""
            if g < f.first_later:
                where = f"{f.path}.backup.containers[{g}]"
                if f.derived_containers:
                    why += " (the name is derived from the filer name: set backup.containers)"
            else:  # generation c onwards: <prefix>-<letter>
                where = f"{f.path}.backup.container_prefix"
                why = f" (generation {GENERATION_IDS[2 + g - f.first_later]}){why}"
                if f.derived_prefix:
                    why += " (the name is derived from the filer name: set backup.container_prefix)"
            problems.add(
                where, f"{container!r} in account {f.backup.account!r} is already {owner}{why}", "backup-container"
            )
    return used
