"""Attach a captured filer record to a cluster (re-add, failover), one idempotent step per call.

The activity names its run (AttachRef); what is attached where is resolved here from the run's snapshot and the
catalog (`resolve`): the request that results (AttachRequest) never travels in a payload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from shared.avere import answers
from shared.avere.client import AvereClient
from shared.avere.errors import AvereActivityFailed, AvereConfigError, AvereConflict
from shared.avere.records import FilerRecord, Recovery
from shared.azure.keyvault import SecretRef
from shared.catalog.fence import lifted_record
from shared.catalog.store import ATTACHED, Catalog
from shared.core.errors import InputRefused
from shared.plan.load import BackupStorage, Cluster
from shared.runbook import fence as fencing
from shared.runbook import services
from shared.runbook.key_secret import KeySecret
from shared.runbook.payloads import AttachRef, AttachStep, RunContext
from shared.runbook.refs import BACKUP_KINDS
from shared.runbook.runs import RunSnapshot, load_run

log = logging.getLogger("vfxtdr.attach")

CREATING, REMOVING, KEYS, JUNCTIONS, UNSUSPENDING, HEALTH, DONE, FENCED = (
    "creating",
    "removing",
    "keys",
    "junctions",
    "unsuspending",
    "health",
    "done",
    "fenced",
)
# FENCED (done, nothing attached): a re-add on the filer's own cluster stopped because a failover fenced it.


@dataclass(frozen=True)
class AttachRequest:
    """One attach as resolved: `record` attached and serving on `cluster`.

    Re-add: the original cluster, bucket and credential. Failover/drill: a DR cluster, the backup container
    and a credential for the backup account whose key is read from `storage_key_secret`. The recovery file
    and passphrase come from `key` (a Key Vault secret version), read inside the step.
    """

    cluster: Cluster
    keyvault_url: str
    record: FilerRecord
    bucket: str
    server_name: str
    credential: str
    key: SecretRef | None = None
    storage_account: str = ""
    storage_key_secret: str | None = None
    activity_ids: tuple[str, ...] = ()
    # A re-add on the filer's own cluster (a backup or readd run): the run's context, whose catalog says whether
    # a failover fenced the filer (shared/runbook/fence.py). None for a failover's attach on a DR cluster.
    fence: RunContext | None = None


# --- building requests (pure) -----------------------------------------------------------------------------
def readd_request(context: RunContext, record: FilerRecord, key: SecretRef | None) -> AttachRequest:
    """Re-add on the original cluster: the recorded bucket, server and credential (which still exists)."""
    return AttachRequest(
        cluster=context.cluster,
        keyvault_url=context.keyvault_url,
        record=record,
        bucket=record.bucket,
        server_name=record.server_name,
        credential=record.credential_name,
        key=key,
    )


def backup_server_name(backup: BackupStorage) -> str:
    """The serverName a cluster uses for the backup account (the Azure host, even behind a local emulator)."""
    host = (urlsplit(backup.blob_endpoint).hostname or "").lower()
    return host if host.startswith(f"{backup.account}.") else f"{backup.account}.blob.core.windows.net"


def failover_request(
    context: RunContext, target: Cluster, record: FilerRecord, container: str, key: SecretRef | None
) -> AttachRequest:
    """Attach a backup container (or a drill's copy of it) to the target cluster with a credential for the
    backup account."""
    backup = context.filer.backup
    return AttachRequest(
        cluster=target,
        keyvault_url=context.keyvault_url,
        record=record,
        bucket=f"{backup.account}/{container}",
        server_name=backup_server_name(backup),
        credential=f"azure-storage-{backup.account}",
        key=key,
        storage_account=backup.account,
        storage_key_secret=backup.storage_key_secret,
    )


# --- resolving an AttachRef ---------------------------------------------------------------------------------
def resolve(ref: AttachRef) -> AttachRequest:
    """What the run attaches where: a backup run re-adds the record it captured (with the key it rotated); a readd
    run what the catalog's marks say this app removed; a failover the backup `backup_id`, marked attached to the
    run's DR cluster by this run, on that cluster."""
    snapshot = load_run(ref.run, *BACKUP_KINDS, "readd", "failover")
    ctx = snapshot.context()
    with services.open_catalog(ctx) as catalog:
        if snapshot.kind == "failover":
            request = _failover(snapshot, ctx, catalog, ref)
        else:  # a failback's attach at the primary is resolved by shared/runbook/failback.py (activities/readd.py)
            request = replace(readd_request(ctx, *_removed(snapshot, ctx, catalog, ref)), fence=ctx)
    return replace(request, activity_ids=ref.activity_ids)


def _removed(
    snapshot: RunSnapshot, ctx: RunContext, catalog: Catalog, ref: AttachRef
) -> tuple[FilerRecord, SecretRef | None]:
    if ref.backup_id not in (None, ref.run.run_id if snapshot.kind == "backup" else None):
        raise InputRefused(
            f"a {snapshot.kind} run re-adds its own filer: backup_id {ref.backup_id[:80]!r} names nothing it attaches",
            filer=ctx.filer.key,
        )
    if snapshot.kind in BACKUP_KINDS:
        record = catalog.record(ctx.filer, ref.run.run_id)
        rotated = catalog.key(ctx.filer, ref.run.run_id)
        key = rotated[0] if rotated else None
    else:
        state = catalog.load(ctx.filer)
        record, key = state.removed_record()
        if record is None:  # nothing removed: a fence lifted for this run brings back a suspended filer
            record = lifted_record(state, ref.run.instance_id)
    if record is None:
        what = (
            f"backup {ref.run.run_id} captured no record"
            if snapshot.kind in BACKUP_KINDS
            else "the catalog records no removal by this app"
        )
        raise InputRefused(f"nothing to re-add for {ctx.filer.key}: {what}", filer=ctx.filer.key)
    return record, key


def _failover(snapshot: RunSnapshot, ctx: RunContext, catalog: Catalog, ref: AttachRef) -> AttachRequest:
    backup_id, target = ref.backup_id, snapshot.target_cluster
    if not backup_id or not target:
        raise InputRefused("a failover attaches a backup: the input names none", filer=ctx.filer.key)
    state = catalog.load(ctx.filer)
    g = state.generation_of(backup_id)
    gen = state.generations[g] if g else None
    by = (gen.attached_to or {}) if gen else {}
    if (
        gen is None
        or gen.status != ATTACHED
        or (by.get("target_cluster"), by.get("instance_id")) != (target, ref.run.instance_id)
    ):
        now = (
            "held by no generation"
            if gen is None
            else f"{gen.status}"
            + (f" to {by.get('target_cluster')} by {by.get('instance_id')}" if gen.status == ATTACHED else "")
        )
        raise InputRefused(
            f"backup {backup_id[:80]} is {now}: a failover attaches only the backup it marked attached to {target}",
            filer=ctx.filer.key,
        )
    record = catalog.record(ctx.filer, backup_id)
    if record is None:
        raise InputRefused(f"the catalog holds no filer record for backup {backup_id}", filer=ctx.filer.key)
    return failover_request(ctx, snapshot.plan.dr_cluster(target), record, gen.container, gen.key)


# --- the step ---------------------------------------------------------------------------------------------
def _recovery(request: AttachRequest) -> Recovery:
    """Passphrase + recovery file from Key Vault, in memory only."""
    name = request.record.name
    if request.key is None:
        raise AvereConfigError(
            f"core filer {name!r} is encrypted: attaching its data needs the key secret (none was given)"
        )
    value = KeySecret.loads(services.key_vault(request.keyvault_url).read_ref(request.key).value)
    if value.filer != name:
        raise AvereConfigError(
            f"key secret {request.key.name}/{request.key.version} belongs to filer {value.filer!r}, not {name!r}"
        )
    return Recovery(passphrase=value.passphrase, recovery_file=value.recovery_file)


def _ensure_credential(client: AvereClient, request: AttachRequest) -> None:
    if request.storage_key_secret:
        if not request.storage_account:
            raise AvereConfigError("storage_account is required with storage_key_secret")
        key = services.read_secret(request.keyvault_url, request.storage_key_secret)
        client.ensure_credential(request.credential, request.storage_account, key, note="vfxt-dr: backup account")
        return
    names = {str(c.get("name")) for c in client.call("corefiler.listCredentials")}
    if request.credential not in names:
        raise AvereConflict(
            f"credential {request.credential!r} does not exist on cluster "
            f"{request.cluster.name}; it is needed to re-add core filer {request.record.name!r}"
        )


def _pending(client: AvereClient, ids: tuple[str, ...]) -> list[str]:
    """Activities still running; a failed one is an error naming it."""
    running = []
    for status in (client.activity_status(i) for i in ids):
        if status.state == "failure":
            raise AvereActivityFailed(
                f"activity {status.id} ({status.process}) failed: {status.status}",
                activity_id=status.id,
                status=status.status,
            )
        if not status.succeeded:
            running.append(status.id)
    return running


def _create(client: AvereClient, request: AttachRequest, name: str) -> AttachStep:
    record = request.record
    _ensure_credential(client, request)
    recovery = _recovery(request) if record.encrypted else None
    activity = client.add_cloud_core_filer(
        record,
        request.bucket,
        request.server_name,
        request.credential,
        bucket_contents="used",
        recovery=recovery,
        name=name,
    )
    log.info("attach %s on %s: creating on %s", name, request.cluster.name, request.bucket)
    return AttachStep(
        phase=CREATING,
        done=False,
        activity_ids=(activity,) if activity != "success" else (),
        detail=f"creating core filer {name!r} on {request.bucket}",
    )


def _next_on_present(client: AvereClient, request: AttachRequest, name: str) -> AttachStep | None:
    """The first thing a present filer still lacks (keys, junctions, client access), started now."""
    record, where = request.record, request.cluster.name
    info = client.filer_info(name)  # bucket and cryptoMode must be in the answer: never assumed
    if info["bucket"] != request.bucket:
        raise AvereConflict(
            f"core filer {name!r} on cluster {where} is on bucket {info['bucket']!r}, "
            f"not {request.bucket!r}; it was left untouched"
        )
    encrypted = str(info["cryptoMode"]).upper() != "DISABLED"
    if encrypted and not client.master_key_status(name).active_key_id:
        client.upload_recovery_file(name, _recovery(request))
        log.info("attach %s on %s: recovery file uploaded", name, where)
        return AttachStep(phase=KEYS, done=False, detail="keys installed from the recovery file")
    ids = [i for i in client.restore_junctions(record, filer_name=name) if i != "success"]
    if ids:
        log.info("attach %s on %s: restoring %d junction(s)", name, where, len(ids))
        return AttachStep(
            phase=JUNCTIONS, done=False, activity_ids=tuple(ids), detail=f"restoring {len(ids)} junction(s)"
        )
    if answers.flag(info.get("clientSuspend")) is not False:  # suspended, or not said: unsuspend (idempotent)
        fenced = _fenced(client, request)  # read again right before: a failover may have been asked meanwhile
        if fenced is not None:
            return fenced
        client.unsuspend_clients(name)
        fenced = _fenced(client, request)  # and right after: one asked in between wins, clients suspended again
        return fenced or AttachStep(phase=UNSUSPENDING, done=False, detail="client access resumed")
    return None


def _fenced(client: AvereClient, request: AttachRequest) -> AttachStep | None:
    """On the filer's own cluster: stop at a failover's fence, the filer kept removed or client-suspended."""
    if request.fence is None:
        return None
    fence = fencing.held(request.fence)
    if fence is None:
        return None
    detail = fencing.keep(request.fence, client, fence, "a failover fenced it; the re-add stopped")
    return AttachStep(phase=FENCED, done=True, detail=detail)


def attach_step(request: AttachRequest, *, name: str | None = None) -> AttachStep:
    """One step towards the record attached and serving on request.cluster; call again until done.

    `name`: the core filer's name there when it is not the record's (a drill attaches a copy under its own
    name); the key secret still has to belong to the record's filer."""
    name = name or request.record.name
    with services.avere_client(request.cluster, request.keyvault_url) as client:
        running = _pending(client, request.activity_ids)
        state = client.filer_state(name)
        # A fence found while an activity runs waits for it: a creation that finishes later must be caught too.
        fenced = _fenced(client, request) if state != "removing" and not running else None
        if fenced is not None:
            step = fenced
        elif running:
            step = AttachStep(
                phase=CREATING if state == "removed" else JUNCTIONS,
                done=False,
                activity_ids=tuple(running),
                detail=f"waiting for {len(running)} activity(ies)",
            )
        elif state == "removing":
            step = AttachStep(phase=REMOVING, done=False, detail=f"core filer {name!r} is still being removed")
        elif state == "removed":
            step = _create(client, request, name)
        else:
            step = _next_on_present(client, request, name) or _health(client, request, name)
    return step


def _health(client: AvereClient, request: AttachRequest, name: str) -> AttachStep:
    health = client.health(name)
    if not health.healthy:
        return AttachStep(phase=HEALTH, done=False, detail="; ".join(health.reasons)[:1000])
    log.info("attach %s on %s: serving", name, request.cluster.name)
    return AttachStep(phase=DONE, done=True, detail="serving", mounts=client.client_mount_addresses(name))
