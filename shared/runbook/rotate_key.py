"""Key rotation: a fresh passphrase, a new master key, stored in Key Vault BEFORE it is activated."""

from __future__ import annotations

import logging
import secrets

from shared.avere.errors import AvereConfigError, AvereError, AvereUnexpectedAnswer
from shared.avere.records import MAX_PASSPHRASE
from shared.azure.keyvault import KeyVault, SecretRef
from shared.core.errors import DrError
from shared.runbook import services
from shared.runbook.key_secret import CONTENT_TYPE, VALUE_LIMIT, WARN_FRACTION, KeySecret, key_secret_name
from shared.runbook.payloads import KeyRotation
from shared.runbook.refs import BACKUP_KINDS, RunRef
from shared.runbook.runs import load_run, reserved_target

log = logging.getLogger("vfxtdr.rotation")

PASSPHRASE_CHARS = 40  # the cluster takes fewer than 50


class KeyRotationFailed(DrError):
    kind = "key_rotation"


def new_passphrase() -> str:
    passphrase = secrets.token_urlsafe(32)[:PASSPHRASE_CHARS]
    assert 0 < len(passphrase) <= MAX_PASSPHRASE
    return passphrase


def _store_checked(vault: KeyVault, name: str, value: KeySecret) -> SecretRef:
    """Store the value and read that exact version back: only a stored, intact key may be activated."""
    ref = vault.store(name, value.dumps(), content_type=CONTENT_TYPE, tags=value.tags())
    stored = vault.read_ref(ref)
    if stored.value != value.dumps():
        raise KeyRotationFailed(
            f"Key Vault returned a different value for {ref.name}/{ref.version} than was stored",
            filer=f"{value.cluster}/{value.filer}",
            state="a new key was generated but NOT activated; the old key stays active",
            action="check the vault, then run the backup again",
        )
    return ref


def rotate_key(run: RunRef) -> KeyRotation:
    """generateMasterKey -> store one JSON secret version (and its version in the catalog, under the backup) ->
    activateMasterKey -> check masterKeyStatus.

    A re-run makes a newer key; its recovery file holds every older key, so nothing is lost.
    """
    context = load_run(run, *BACKUP_KINDS).context()
    cluster, filer = context.cluster, context.filer
    with services.open_catalog(context) as catalog:
        reserved_target(catalog.load(filer), run.run_id, filer.key)  # this run is writing its backup
    where = filer.key
    vault = services.key_vault(context.keyvault_url)
    name = key_secret_name(cluster.name, filer.name)
    with services.avere_client(cluster, context.keyvault_url) as client:
        try:
            # Strict reads: a missing cryptoMode or key id is an error, never "not encrypted" or "no key".
            if not client.encrypted(filer.name):
                raise AvereConfigError(
                    f"core filer {filer.name!r} on cluster {cluster.name} is not encrypted: there is no key to rotate"
                )
            passphrase = new_passphrase()
            key = client.generate_master_key(filer.name, passphrase)
        except AvereConfigError:
            raise
        except AvereError as exc:
            raise KeyRotationFailed(
                f"generating a new key failed: {exc}",
                filer=where,
                state="no new key was activated; the old key stays active",
                action="check the cluster (corefiler.masterKeyStatus), then run the backup again",
            ) from None
        value = KeySecret(
            passphrase=passphrase,
            recovery_file=key.recovery_file,
            key_id=key.key_id,
            signature=key.signature,
            cluster=cluster.name,
            filer=filer.name,
        )
        size = len(value.dumps().encode())
        if size > VALUE_LIMIT:
            raise KeyRotationFailed(
                f"the key secret would be {size} bytes, over Key Vault's {VALUE_LIMIT}-byte limit",
                filer=where,
                state="a new key was generated but NOT activated; the old key stays active",
                action="move the filer to a new encryption setup or store recovery files elsewhere",
            )
        try:
            ref = _store_checked(vault, name, value)
        except KeyRotationFailed:
            raise
        except Exception as exc:
            raise KeyRotationFailed(
                f"storing the new key in Key Vault failed: {exc}",
                filer=where,
                state="a new key was generated but NOT activated; the old key stays active",
                action="fix Key Vault access, then run the backup again",
            ) from None
        try:  # a re-add of this run, and the backup's entry, read the key's version from the catalog
            with services.open_catalog(context) as catalog:
                catalog.put_key(filer, run.run_id, ref, key.key_id)
        except Exception as exc:
            raise KeyRotationFailed(
                f"recording the new key's version in the catalog failed: {exc}",
                filer=where,
                state=f"a new key was stored as {ref.name}/{ref.version} but NOT activated; the old key stays active",
                action="check the backup account, then run the backup again",
            ) from None
        client.activate_master_key(filer.name, key.key_id, key.recovery_file)
        try:
            active = client.master_key_status(filer.name).active_key_id
        except AvereUnexpectedAnswer as exc:
            raise KeyRotationFailed(
                f"after activation the key status cannot be read: {exc}",
                filer=where,
                state=f"the key is stored as {ref.name}/{ref.version}",
                action="check masterKeyStatus on the cluster, then run again",
            ) from None
        if active != key.key_id:
            raise KeyRotationFailed(
                f"after activation the active key is {active or 'none'}, not {key.key_id}",
                filer=where,
                state=f"the key is stored as {ref.name}/{ref.version}",
                action="check masterKeyStatus on the cluster, then run again",
            )
    near = value.near_limit()
    if near:
        log.warning(
            "key secret %s of %s is %d bytes, over %d%% of Key Vault's %d-byte limit: the recovery "
            "file grows with every rotation",
            ref.name,
            where,
            size,
            int(WARN_FRACTION * 100),
            VALUE_LIMIT,
        )
    log.info("rotated the key of %s: key %s stored as %s/%s, then activated", where, key.key_id, ref.name, ref.version)
    return KeyRotation(secret=ref, key_id=key.key_id, value_bytes=size, near_limit=near)
