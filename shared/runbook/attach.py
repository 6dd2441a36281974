"""Attach a captured filer record to a cluster (re-add, failover), one idempotent step per call."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from shared.avere.client import AvereClient
from shared.avere.errors import AvereActivityFailed, AvereConfigError, AvereConflict
from shared.avere.namespace import yes
from shared.avere.records import FilerRecord, Recovery
from shared.azure.keyvault import SecretRef
from shared.plan.load import BackupStorage
from shared.runbook import fence as fencing
from shared.runbook import services
from shared.runbook.failover_payloads import FailoverChoice
from shared.runbook.key_secret import KeySecret
from shared.runbook.payloads import AttachRequest, AttachStep, RunContext

log = logging.getLogger("vfxtdr.attach")

CREATING, REMOVING, KEYS, JUNCTIONS, UNSUSPENDING, HEALTH, DONE, FENCED = (
    "creating", "removing", "keys", "junctions", "unsuspending", "health", "done", "fenced")
# FENCED (done, nothing attached): a re-add on the filer's own cluster stopped because a failover fenced it.


# --- building requests (pure: orchestrators call these) --------------------------------------------------
def readd_request(context: RunContext, record: FilerRecord, key: SecretRef | None) -> AttachRequest:
    """Re-add on the original cluster: the recorded bucket, server and credential (which still exists)."""
    return AttachRequest(cluster=context.cluster, keyvault_url=context.keyvault_url, record=record,
                         bucket=record.bucket, server_name=record.server_name,
                         credential=record.credential_name, key=key)


def backup_server_name(backup: BackupStorage) -> str:
    """The serverName a cluster uses for the backup account (the Azure host, even behind a local emulator)."""
    host = (urlsplit(backup.blob_endpoint).hostname or "").lower()
    return host if host.startswith(f"{backup.account}.") else f"{backup.account}.blob.core.windows.net"


def failover_request(choice: FailoverChoice, container: str | None = None) -> AttachRequest:
    """Attach a backup container (or a drill's copy of it) to the target cluster with a credential for the
    backup account."""
    backup = choice.context.filer.backup
    return AttachRequest(cluster=choice.target_cluster, keyvault_url=choice.context.keyvault_url,
                         record=choice.record, bucket=f"{backup.account}/{container or choice.container}",
                         server_name=backup_server_name(backup), credential=f"azure-storage-{backup.account}",
                         key=choice.key, storage_account=backup.account,
                         storage_key_secret=backup.storage_key_secret)


# --- the step ---------------------------------------------------------------------------------------------
def _recovery(request: AttachRequest) -> Recovery:
    """Passphrase + recovery file from Key Vault, in memory only."""
    name = request.record.name
    if request.key is None:
        raise AvereConfigError(f"core filer {name!r} is encrypted: attaching its data needs the key secret "
                               "(none was given)")
    value = KeySecret.loads(services.key_vault(request.keyvault_url).read_ref(request.key).value)
    if value.filer != name:
        raise AvereConfigError(f"key secret {request.key.name}/{request.key.version} belongs to filer "
                               f"{value.filer!r}, not {name!r}")
    return Recovery(passphrase=value.passphrase, recovery_file=value.recovery_file)


def _ensure_credential(client: AvereClient, request: AttachRequest) -> None:
    if request.storage_key_secret:
        if not request.storage_account:
            raise AvereConfigError("storage_account is required with storage_key_secret")
        key = services.read_secret(request.keyvault_url, request.storage_key_secret)
        client.ensure_credential(request.credential, request.storage_account, key,
                                 note="vfxt-dr: backup account")
        return
    names = {str(c.get("name")) for c in client.call("corefiler.listCredentials")}
    if request.credential not in names:
        raise AvereConflict(f"credential {request.credential!r} does not exist on cluster "
                            f"{request.cluster.name}; it is needed to re-add core filer {request.record.name!r}")


def _pending(client: AvereClient, ids: tuple[str, ...]) -> list[str]:
    """Activities still running; a failed one is an error naming it."""
    running = []
    for status in (client.activity_status(i) for i in ids):
        if status.state == "failure":
            raise AvereActivityFailed(f"activity {status.id} ({status.process}) failed: {status.status}",
                                      activity_id=status.id, status=status.status)
        if not status.succeeded:
            running.append(status.id)
    return running


def _create(client: AvereClient, request: AttachRequest) -> AttachStep:
    record, name = request.record, request.record.name
    _ensure_credential(client, request)
    recovery = _recovery(request) if record.encrypted else None
    activity = client.add_cloud_core_filer(record, request.bucket, request.server_name, request.credential,
                                           bucket_contents="used", recovery=recovery)
    log.info("attach %s on %s: creating on %s", name, request.cluster.name, request.bucket)
    return AttachStep(phase=CREATING, done=False, activity_ids=(activity,) if activity != "success" else (),
                      detail=f"creating core filer {name!r} on {request.bucket}")


def _next_on_present(client: AvereClient, request: AttachRequest, primary: RunContext | None) -> AttachStep | None:
    """The first thing a present filer still lacks (keys, junctions, client access), started now."""
    record, name, where = request.record, request.record.name, request.cluster.name
    info = dict(client.call("corefiler.get", name)[name])
    if info.get("bucket") != request.bucket:
        raise AvereConflict(f"core filer {name!r} on cluster {where} is on bucket {info.get('bucket')!r}, "
                            f"not {request.bucket!r}; it was left untouched")
    encrypted = str(info.get("cryptoMode", "DISABLED")).upper() != "DISABLED"
    if encrypted and not client.master_key_status(name).active_key_id:
        client.upload_recovery_file(name, _recovery(request))
        log.info("attach %s on %s: recovery file uploaded", name, where)
        return AttachStep(phase=KEYS, done=False, detail="keys installed from the recovery file")
    ids = [i for i in client.restore_junctions(record, filer_name=name) if i != "success"]
    if ids:
        log.info("attach %s on %s: restoring %d junction(s)", name, where, len(ids))
        return AttachStep(phase=JUNCTIONS, done=False, activity_ids=tuple(ids),
                          detail=f"restoring {len(ids)} junction(s)")
    if yes(info.get("clientSuspend", "no")):
        fenced = _fenced(client, primary)  # read again right before: a failover may have been asked meanwhile
        if fenced is not None:
            return fenced
        client.unsuspend_clients(name)
        fenced = _fenced(client, primary)  # and right after: one asked in between wins, clients suspended again
        return fenced or AttachStep(phase=UNSUSPENDING, done=False, detail="client access resumed")
    return None


def _fenced(client: AvereClient, primary: RunContext | None) -> AttachStep | None:
    """On the filer's own cluster: stop at a failover's fence, the filer kept removed or client-suspended."""
    if primary is None:
        return None
    fence = fencing.held(primary)
    if fence is None:
        return None
    detail = fencing.keep(primary, client, fence, "a failover fenced it; the re-add stopped")
    return AttachStep(phase=FENCED, done=True, detail=detail)


def attach_step(request: AttachRequest) -> AttachStep:
    """One step towards the record attached and serving on request.cluster; call again until done."""
    name = request.record.name
    primary = fencing.primary_context(request.cluster.name, name)
    with services.avere_client(request.cluster, request.keyvault_url) as client:
        running = _pending(client, request.activity_ids)
        state = client.filer_state(name)
        # A fence found while an activity runs waits for it: a creation that finishes later must be caught too.
        fenced = _fenced(client, primary) if state != "removing" and not running else None
        if fenced is not None:
            step = fenced
        elif running:
            step = AttachStep(phase=CREATING if state == "removed" else JUNCTIONS, done=False,
                              activity_ids=tuple(running), detail=f"waiting for {len(running)} activity(ies)")
        elif state == "removing":
            step = AttachStep(phase=REMOVING, done=False, detail=f"core filer {name!r} is still being removed")
        elif state == "removed":
            step = _create(client, request)
        else:
            step = _next_on_present(client, request, primary) or _health(client, request)
    return step


def _health(client: AvereClient, request: AttachRequest) -> AttachStep:
    name = request.record.name
    health = client.health(name)
    if not health.healthy:
        return AttachStep(phase=HEALTH, done=False, detail="; ".join(health.reasons)[:1000])
    log.info("attach %s on %s: serving", name, request.cluster.name)
    return AttachStep(phase=DONE, done=True, detail="serving", mounts=client.client_mount_addresses(name))
