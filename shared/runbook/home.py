"""Where a filer lives (its home: the cluster serving it, the container behind it) and which way a backup copies."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.catalog.store import ATTACHED, FilerState
from shared.core.codec import JsonRecord
from shared.core.errors import DrError
from shared.plan.load import BackupStorage, Filer, Plan, SourceStorage
from shared.plan.model import GENERATION_IDS
from shared.runbook.payloads import RunContext

PRIMARY, DR = "primary", "dr"
REPROTECT = "reprotect"  # the catalog side of the generations a re-protect backup writes
# The re-protect generations: containers of the source (primary region's) account, `<source container>-rp-<letter>`
# (the source container cut to leave room). Never the source container itself: the app never writes that one.
_RP = "-rp"


@dataclass(frozen=True)
class Home(JsonRecord):
    """side: primary (the plan's cluster) or dr (a DR cluster after a failover); cluster: the one serving it;
    container: its bucket's container (in the source account on the primary side, the backup account at DR);
    generation: the generation that container is (None: the plan's source container)."""

    side: str
    cluster: str
    container: str
    generation: str | None = None
    since: str | None = None
    retired: tuple[str, ...] = ()  # containers the filer once lived on and the app never writes again
    by: str | None = None  # the run that made it the home


def home_of(state: FilerState, filer: Filer) -> Home:
    """The filer's home as the catalog records it. No home on record: the failover mark's (catalogs written
    before homes were recorded), else the plan's source container on the filer's own cluster."""
    if state.home:
        return Home.from_json(state.home)
    done = state.failed_over or {}
    g = done.get("generation")
    if done.get("target_cluster") and g in state.generations and state.generations[g].status == ATTACHED:
        return Home(DR, str(done["target_cluster"]), state.generations[g].container, generation=g)
    return Home(PRIMARY, filer.cluster, filer.source.container)


def reprotect_containers(filer: Filer) -> tuple[str, ...]:
    """The containers of the re-protect generations (a, b, ...: as many as the plan keeps backups)."""
    base = filer.source.container[: 63 - len(_RP) - 2]
    return tuple(f"{base}{_RP}-{g}" for g in GENERATION_IDS[: filer.backup.generations])


def reprotect_filer(filer: Filer, home: Home) -> Filer:
    """The filer as a re-protect run sees it: its source is the home container in the backup account, its
    backup generations are the re-protect containers of the source account."""
    src, bak = filer.source, filer.backup
    names = reprotect_containers(filer)
    return replace(
        filer,
        source=SourceStorage(
            account=bak.account,
            container=home.container,
            blob_endpoint=bak.blob_endpoint,
            region=bak.region,
            key_secret=bak.storage_key_secret,
        ),
        backup=BackupStorage(
            account=src.account,
            blob_endpoint=src.blob_endpoint,
            region=src.region,
            containers=(names[0], names[1]),
            storage_key_secret=src.key_secret or "",
            generations=bak.generations,
            container_prefix=names[0][: -len("-a")],
        ),
        failover_cluster=filer.cluster,
    )


def directed(ctx: RunContext, plan: Plan, home: Home | None) -> RunContext:
    """The run's context for the filer's home: unchanged on the plan's source; on another primary container
    (after a failback) that container is the source; at DR the run copies from the DR cluster's container into
    the re-protect generations, its catalog where the plan puts it."""
    if home is None or (home.side == PRIMARY and home.container == ctx.filer.source.container):
        return ctx
    if home.side == PRIMARY:
        return replace(ctx, filer=replace(ctx.filer, source=replace(ctx.filer.source, container=home.container)))
    if home.side != DR:
        raise DrError(
            f"the catalog records a home on side {home.side!r}, which this version does not know",
            filer=ctx.filer.key,
            state="nothing changed",
            action="upgrade the app, or correct the catalog's home",
        )
    return replace(
        ctx,
        filer=reprotect_filer(ctx.filer, home),
        cluster=plan.dr_cluster(home.cluster),
        failover_cluster=plan.cluster(ctx.filer.cluster),
        catalog_storage=ctx.filer.backup,
        side=REPROTECT,
    )


def is_reprotect(ctx: RunContext) -> bool:
    return ctx.side == REPROTECT
