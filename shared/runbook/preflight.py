"""The checks at the start of a backup run (and all a dry run does): every check runs, each says why.

Besides the plan and the catalog's marks, the preflight proves each credential the run will use by using it
(shared/runbook/preflight_probes.py): Key Vault read and write, a login to the filer's cluster and to its
failover cluster, the source listed and read through the copy's own SAS, the backup account written. Any
failed check stops the run before anything is suspended: a missing role must not be found with the filer
removed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError

from shared.avere.client import AvereClient
from shared.avere.errors import AvereError
from shared.azure.keyvault import KeyVaultError
from shared.azure.storage import StorageConfigError
from shared.blobcopy.errors import describe_http_error, redact
from shared.catalog.fence import active_fence, describe
from shared.catalog.store import Catalog, FilerState
from shared.plan.load import Cluster, Filer, Plan, UnknownClusterError, UnknownFilerError
from shared.plan.model import unverified_tls_problem
from shared.runbook import preflight_probes, services
from shared.runbook.payloads import BackupRequest, Finding, Preflight, RunContext
from shared.runbook.refs import BACKUP_KINDS, RunRef
from shared.runbook.runs import load_run

log = logging.getLogger("vfxtdr.preflight")

CHECKS = (
    "plan",
    "keyvault",
    "keyvault_write",
    "cluster",
    "failover_cluster",
    "filer",
    "source_account",
    "backup_account",
    "backup_write",
    "containers",
    "attention",
    "failed_over",
    "tls",
)
# Clusters other than the filer's own are only probed for buckets: one quick try, no long backoff.
_PROBE_RETRIES = 1
UNREADABLE = "<unreadable>"


@dataclass
class _Run:
    plan: Plan
    request: BackupRequest
    filer: Filer | None = None
    cluster: Cluster | None = None
    password_ok: bool = False
    clients: dict[str, AvereClient] = field(default_factory=dict)  # logged in, by cluster name
    encrypted: bool = False
    state: FilerState | None = None
    findings: list[Finding] = field(default_factory=list)
    # A run's context, directed by the filer's home (shared/runbook/home.py): a re-protect run checks the DR
    # cluster as the filer's, the primary as the other, and its generations in the primary region's account.
    ctx: RunContext | None = None

    def add(self, check: str, ok: bool, detail: str) -> None:
        self.findings.append(Finding(check=check, ok=ok, detail=detail))

    @property
    def client(self) -> AvereClient | None:
        """The logged-in client of the filer's own cluster."""
        return self.clients.get(self.cluster.name) if self.cluster is not None else None


def _short(err: BaseException) -> str:
    """An error's first line, bounded and redacted (URL queries, signatures): enough to act on, never a
    traceback or a SAS."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return redact(f"{type(err).__name__}: {text[:300]}")


def preflight(ref: RunRef) -> Preflight:
    """The checks of a backup run, against the plan snapshot it recorded when it started."""
    snapshot = load_run(ref, *BACKUP_KINDS)
    request = BackupRequest(cluster=ref.cluster, filer=ref.filer, reason=snapshot.reason)
    return run_preflight(request, snapshot.plan, snapshot.context())


def run_preflight(request: BackupRequest, plan: Plan | None = None, ctx: RunContext | None = None) -> Preflight:
    """Every check (a dry run: the route's plan; a run: its snapshot's, directed by the filer's home); each
    finding says why."""
    plan = plan or services.load_plan()
    run = _Run(plan=plan, request=request, ctx=ctx)
    steps: list[tuple[str, Callable[[_Run], None]]] = [
        ("plan", _plan),
        ("keyvault", _keyvault),
        ("keyvault_write", _keyvault_write),
        ("cluster", _cluster),
        ("failover_cluster", _failover_cluster),
        ("filer", _filer),
        ("source_account", _source_account),
        ("backup_account", _backup_account),
        ("backup_write", _backup_write),
        ("containers", _containers),
        ("attention", _attention),
        ("failed_over", _failed_over),
        ("tls", _tls),
    ]
    try:
        for name, step in steps:
            if name != "plan" and run.filer is None:
                run.add(name, False, "not checked: the filer is not in the plan")
                continue
            try:
                step(run)
            except Exception as exc:  # a check that breaks is a failed check, and the others still run
                log.warning("preflight %s of %s/%s failed: %s", name, request.cluster, request.filer, _short(exc))
                run.add(name, False, f"check failed: {_short(exc)}")
    finally:
        for client in run.clients.values():
            client.close()
    ok = run.filer is not None and all(f.ok for f in run.findings)
    return Preflight(ok=ok, findings=tuple(run.findings), encrypted=run.encrypted)


def _plan(run: _Run) -> None:
    req = run.request
    try:
        run.filer = run.plan.filer(req.cluster, req.filer)
        run.cluster = run.plan.cluster(req.cluster)
    except (UnknownClusterError, UnknownFilerError) as exc:
        run.add("plan", False, str(exc))
        return
    if run.ctx is not None:  # the run's own view: its filer's home decides which cluster and accounts
        run.filer, run.cluster = run.ctx.filer, run.ctx.cluster
    if not run.filer.enabled and req.reason != "manual":
        run.add("plan", False, f"filer {run.filer.key} is disabled in the plan (only a manual run may back it up)")
        return
    run.add(
        "plan", True, f"filer {run.filer.key} is in the plan" + ("" if run.filer.enabled else " (disabled; manual run)")
    )


def _keyvault(run: _Run) -> None:
    assert run.cluster is not None
    secret = run.cluster.admin_password_secret
    try:
        services.read_secret(run.plan.keyvault_url, secret)
    except KeyVaultError as exc:
        run.add("keyvault", False, f"cannot read the admin password of cluster {run.cluster.name}: {exc}")
        return
    run.password_ok = True
    run.add("keyvault", True, f"{run.plan.keyvault_url} answers; secret {secret} is readable")


def _keyvault_write(run: _Run) -> None:
    assert run.filer is not None
    probe = preflight_probes.vault_write(run.plan, run.filer)
    run.add("keyvault_write", probe.ok, probe.detail)


def _cluster(run: _Run) -> None:
    assert run.cluster is not None
    if not run.password_ok:
        run.add("cluster", False, "not checked: no admin password")
        return
    client, detail = preflight_probes.login(run.plan, run.cluster)
    if client is not None:
        run.clients[run.cluster.name] = client
    run.add("cluster", client is not None, detail)


def _other_cluster(run: _Run) -> Cluster | None:
    """The cluster a failover (or a failback) of the run would go to."""
    assert run.filer is not None
    if run.ctx is not None:
        return run.ctx.failover_cluster
    return run.plan.dr_cluster(run.filer.failover_cluster) if run.filer.failover_cluster else None


def _failover_cluster(run: _Run) -> None:
    assert run.filer is not None
    target = _other_cluster(run)
    if target is None:
        run.add("failover_cluster", True, f"filer {run.filer.key} names no failover cluster: none to log in to")
        return
    # A re-protect run's other cluster is the primary, which may still be down: one quick try.
    quick = _PROBE_RETRIES if run.ctx is not None and run.ctx.side != "dr" else None
    client, detail = preflight_probes.login(run.plan, target, retries=quick)
    if client is not None:
        run.clients[target.name] = client
    run.add("failover_cluster", client is not None, detail)


def _source_account(run: _Run) -> None:
    assert run.filer is not None
    probe = preflight_probes.source_read(run.plan, run.filer)
    run.add("source_account", probe.ok, probe.detail)


def _backup_write(run: _Run) -> None:
    assert run.filer is not None
    probe = preflight_probes.backup_write(run.plan, run.filer)
    run.add("backup_write", probe.ok, probe.detail)


def _filer(run: _Run) -> None:
    assert run.filer is not None
    if run.client is None:
        run.add("filer", False, "not checked: the cluster is not reachable")
        return
    name = run.filer.name
    if name not in run.client.list_core_filers():
        run.add("filer", False, f"core filer {name!r} does not exist on cluster {run.filer.cluster}")
        return
    info = run.client.filer_info(name)  # adminState, bucket and cryptoMode read strictly: never assumed
    state = str(info["adminState"])
    crypto = str(info["cryptoMode"])
    run.encrypted = crypto.upper() != "DISABLED"
    expected = f"{run.filer.source.account}/{run.filer.source.container}"
    if str(info.get("bucket")) != expected:
        run.add(
            "filer",
            False,
            f"core filer {name!r} is on bucket {info.get('bucket')!r}, but the plan "
            f"says {expected!r}: fix the plan's source",
        )
    elif state != "online":
        run.add("filer", False, f"core filer {name!r} is {state or 'in an unknown state'}, not online")
    else:
        run.add("filer", True, f"core filer {name!r} is online on {expected}, cryptoMode {crypto}")


def _open_catalog(run: _Run) -> Catalog:
    assert run.filer is not None
    if run.ctx is not None:
        return services.open_catalog(run.ctx)
    account = services.backup_account(run.filer, run.plan.storage_auth, run.plan.keyvault_url)
    return Catalog(account, run.plan.catalog_container)


def _backup_account(run: _Run) -> None:
    filer = run.filer
    assert filer is not None
    if filer.backup.region == filer.source.region:
        run.add(
            "backup_account",
            False,
            f"backup account {filer.backup.account} is declared in {filer.backup.region}, the source's own region",
        )
        return
    try:
        with _open_catalog(run) as catalog:
            catalog.exists()  # reachable either way; the catalog container is made on first use
            run.state = catalog.load(filer)
    except (AzureError, StorageConfigError, KeyVaultError) as exc:
        how = preflight_probes.credential_used(run.plan, filer.backup.storage_key_secret)
        run.add(
            "backup_account",
            False,
            f"backup account {filer.backup.account} at {filer.backup.blob_endpoint} "
            f"({how}): the catalog cannot be read: {describe_http_error(exc)}",
        )
        return
    run.add(
        "backup_account",
        True,
        f"backup account {filer.backup.account} answers; declared in "
        f"{filer.backup.region}, the source in {filer.source.region}",
    )


def _cluster_buckets(run: _Run, cluster: Cluster) -> dict[str, str] | None:
    """filer name -> bucket of every core filer on a cluster; None when it cannot be reached."""
    logged_in = run.clients.get(cluster.name)
    if logged_in is not None:
        client, close = logged_in, False
    else:
        try:
            client = services.avere_client(cluster, run.plan.keyvault_url, retries=_PROBE_RETRIES)
        except (KeyVaultError, AvereError, ValueError) as exc:
            log.info("preflight: cluster %s not probed: %s", cluster.name, _short(exc))
            return None
        close = True
    try:
        names = client.list_core_filers()
        if not names:
            return {}
        infos = client.call("corefiler.get", names)
        # A filer whose bucket cannot be read might be on a backup container: it is reported, never skipped.
        return {n: _bucket(infos.get(n)) for n in names}
    except AvereError as exc:
        log.info("preflight: cluster %s not reachable: %s", cluster.name, _short(exc))
        return None
    finally:
        if close:
            client.close()


def _bucket(info: Any) -> str:
    bucket = info.get("bucket") if isinstance(info, dict) else None
    return bucket if isinstance(bucket, str) and bucket else UNREADABLE


def _containers(run: _Run) -> None:
    filer = run.filer
    assert filer is not None
    problems: list[str] = []
    if run.state is None:
        run.add("containers", False, "not checked: the catalog is not readable")
        return
    for g in run.state.attached():
        gen = run.state.generations[g]
        problems.append(
            f"backup container {gen.container} is attached to cluster "
            f"{(gen.attached_to or {}).get('target_cluster')} (failover)"
        )
    containers = filer.generation_containers()
    buckets = {f"{filer.backup.account}/{c}" for c in containers}
    unreachable: list[str] = []
    for cluster in (*run.plan.clusters, *run.plan.dr_clusters):
        found = _cluster_buckets(run, cluster)
        if found is None:
            unreachable.append(cluster.name)
            continue
        problems.extend(
            f"core filer {name!r} on cluster {cluster.name} uses backup container {bucket}"
            for name, bucket in sorted(found.items())
            if bucket in buckets
        )
        problems.extend(
            f"core filer {name!r} on cluster {cluster.name}: its bucket cannot be read"
            for name, bucket in sorted(found.items())
            if bucket == UNREADABLE
        )
    note = f" (not reachable, not checked: {', '.join(unreachable)})" if unreachable else ""
    if problems:
        run.add("containers", False, "; ".join(problems) + note)
    else:
        run.add("containers", True, f"none of {', '.join(containers)} is attached" + note)


def _attention(run: _Run) -> None:
    if run.state is None:
        run.add("attention", False, "not checked: the catalog is not readable")
        return
    marks = []
    if run.state.needs_attention:
        mark = run.state.needs_attention
        marks.append(
            f"needs attention since {mark.get('since')} (run {mark.get('instance_id')}): {mark.get('error', '')[:300]}"
        )
    if run.state.removed_by_app:
        mark = run.state.removed_by_app
        marks.append(
            f"removed by run {mark.get('instance_id')} since {mark.get('since')} and not re-added yet: re-add it first"
        )
    if marks:
        run.add("attention", False, "; ".join(marks))
    else:
        run.add("attention", True, "no unresolved marks")


def _failed_over(run: _Run) -> None:
    if run.state is None:
        run.add("failed_over", False, "not checked: the catalog is not readable")
        return
    done = run.state.failed_over
    attached = run.state.attached()
    fence = active_fence(run.state)
    if done:
        run.add(
            "failed_over",
            False,
            f"the filer failed over to cluster {done.get('target_cluster')} at "
            f"{done.get('at')} (backup {done.get('backup_id')})",
        )
    elif attached:
        gen = run.state.generations[attached[0]]
        run.add(
            "failed_over",
            False,
            f"a failover to cluster {(gen.attached_to or {}).get('target_cluster')} "
            "has begun (a backup container is attached)",
        )
    elif fence is not None:
        run.add("failed_over", False, f"a failover was requested: {describe(fence)}")
    else:
        run.add("failed_over", True, "the filer has not failed over")


def _tls(run: _Run) -> None:
    """How the filer's cluster and its failover cluster are trusted; verification off is said out loud."""
    assert run.filer is not None and run.cluster is not None
    clusters = [run.cluster]
    other = _other_cluster(run)
    if other is not None:
        clusters.append(other)
    ok, notes = True, []
    for cluster in clusters:
        tls, where = cluster.tls, f"cluster {cluster.name} at {cluster.management_address}"
        problem = unverified_tls_problem(cluster.management_address, tls)
        if problem:
            ok = False
            notes.append(f"{where}: tls.acknowledge_insecure {problem}")
        elif not tls.verify:
            notes.append(
                f"{services.TLS_UNVERIFIED}: {where}: TLS verification is OFF "
                f"({services.tls_unverified_because(cluster)}); the admin password goes to a server whose "
                "identity is not checked"
            )
        else:
            notes.append(
                f"{where}: certificate checked against "
                + (f"CA file {tls.ca_file}" if tls.ca_file else "its pinned SHA-256 fingerprint")
            )
    run.add("tls", ok, "; ".join(notes))
