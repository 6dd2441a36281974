"""corefiler.* cloud encryption keys (simpleKey store) and cloud credentials."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from devstack.cluster import keys
from devstack.cluster.faults import EALREADY, EEXIST, EINUSE, EINVAL, ENOENT, ENOTALLOWED, Fault
from devstack.cluster.model import Credential, Filer
from devstack.cluster.registry import Ctx, rpc, struct, text

MAX_PASSPHRASE = 49
CREDENTIAL_TYPES = ("azure-storage", "azure", "s3", "s3-sts", "swift")


def _encrypted(ctx: Ctx, name: Any) -> Filer:
    filer = ctx.cluster.filer(text(name, "name"))
    if not filer.encrypted:
        raise Fault(ENOTALLOWED, f"Core filer '{filer.name}' does not use cloud encryption")
    return filer


def _passphrase(value: Any) -> str:
    passphrase = text(value, "passphrase")
    if len(passphrase) > MAX_PASSPHRASE:
        raise Fault(EINVAL, f"The passphrase must be fewer than {MAX_PASSPHRASE + 1} characters")
    return passphrase


@rpc("corefiler.generateMasterKey")
def generate_master_key(ctx: Ctx, name: Any, passphrase: Any = None, user_key: Any = None) -> dict[str, str]:
    """corefiler.generateMasterKey(name, passphrase, [userKey_hex]) => {keyId, signature, recoveryFile}.

    The new key is ready to activate; the recovery file holds it and every older key, sealed with the
    passphrase. After this call uploadKeyRecoveryFile is no longer allowed on the filer.
    """
    filer = _encrypted(ctx, name)
    secret = _passphrase(passphrase)
    key_id, key_hex = keys.new_key()
    if user_key is not None:
        try:
            raw = bytes.fromhex(text(user_key, "userKey"))
        except ValueError:
            raise Fault(EINVAL, "userKey must be 64 hex digits") from None
        if len(raw) != 32:
            raise Fault(EINVAL, "userKey must be 64 hex digits")
        key_hex = raw.hex()
    bundle = {**filer.keys, key_id: key_hex}
    recovery = keys.seal(secret, keys.RecoveryContents(fsid=filer.fsid, keys=bundle, latest=key_id))
    filer.pending_key, filer.pending_key_hex = key_id, key_hex
    filer.last_file, filer.last_signature = recovery, keys.signature(recovery)
    filer.key_generated = True
    return {"keyId": key_id, "signature": filer.last_signature, "recoveryFile": recovery}


@rpc("corefiler.activateMasterKey")
def activate_master_key(ctx: Ctx, name: Any, key_id: Any, recovery_file: Any = None) -> str:
    """corefiler.activateMasterKey(name, keyId, recoveryFile) => 'success': only the newest generated key."""
    filer = _encrypted(ctx, name)
    key_id = text(key_id, "keyId")
    if key_id == filer.active_key and not filer.pending_key:
        raise Fault(EALREADY, f"Master key {key_id} is already active")
    if not filer.pending_key:
        raise Fault(ENOTALLOWED, "No master key is ready to activate; call generateMasterKey first")
    if key_id != filer.pending_key:
        raise Fault(EINVAL, f"Only the most recently generated master key ({filer.pending_key}) can be activated")
    if not keys.same_file(text(recovery_file, "recoveryFile"), filer.last_file):
        raise Fault(EINVAL, "The recovery file does not belong to the key being activated")
    filer.keys[key_id] = filer.pending_key_hex
    filer.active_key, filer.activation_time = key_id, ctx.cluster.now()
    filer.recovery_signature = filer.last_signature
    filer.pending_key = filer.pending_key_hex = ""
    return "success"


@rpc("corefiler.masterKeyStatus", readonly=True)
def master_key_status(ctx: Ctx, name: Any) -> dict[str, Any]:
    """corefiler.masterKeyStatus(name) => {activeMasterKeyId, masterKeyIdReadyToActivate,
    recoveryFileSignature, keyActivationTime, nodesWithoutLatestMasterKey}"""
    filer = ctx.cluster.filer(text(name, "name"))
    return {
        "activeMasterKeyId": filer.active_key or "NO ACTIVE MASTER KEY",
        "masterKeyIdReadyToActivate": filer.pending_key or "",
        "recoveryFileSignature": filer.recovery_signature,
        "keyActivationTime": str(int(filer.activation_time)) if filer.active_key else "NO ACTIVATION TIME",
        "nodesWithoutLatestMasterKey": [],
    }


@rpc("corefiler.downloadKeyRecoveryFile", readonly=True)
def download_recovery_file(ctx: Ctx, name: Any) -> dict[str, str]:
    """corefiler.downloadKeyRecoveryFile(name) => {keyId, signature, recoveryFile} of the last generate."""
    filer = _encrypted(ctx, name)
    if not filer.last_file:
        raise Fault(ENOENT, f"No master key was generated on core filer '{filer.name}'")
    return {
        "keyId": filer.pending_key or filer.active_key,
        "signature": filer.last_signature,
        "recoveryFile": filer.last_file,
    }


@rpc("corefiler.uploadKeyRecoveryFile")
def upload_recovery_file(ctx: Ctx, name: Any, passphrase: Any, recovery_file: Any) -> str:
    """corefiler.uploadKeyRecoveryFile(name, passphrase, recoveryFile) => 'success'.

    Installs the keys of a recovery file on a new cloud core filer attached to encrypted data; only
    allowed before generateMasterKey. The newest key in the file becomes the active key (simulator's
    decision on open question 3: no new key is needed before the filer serves data).
    """
    filer = _encrypted(ctx, name)
    if filer.key_generated:
        raise Fault(ENOTALLOWED, "uploadKeyRecoveryFile is only allowed on a new core filer before generateMasterKey")
    secret = _passphrase(passphrase)
    file_text = text(recovery_file, "recoveryFile")
    try:
        contents = keys.unseal(secret, file_text)
    except keys.RecoveryError as exc:
        raise Fault(EINVAL, f"Cannot use the recovery file: {exc}") from None
    if contents.fsid != filer.fsid:
        raise Fault(EINVAL, "The recovery file belongs to a different cloud filesystem")
    filer.keys = dict(contents.keys)
    filer.active_key, filer.activation_time = contents.latest, ctx.cluster.now()
    filer.recovery_signature = keys.signature(file_text)
    return "success"


# -- credentials ---------------------------------------------------------------------------------------------


def _credential_json(ctx: Ctx, cred: Credential) -> dict[str, Any]:
    users = sorted(f.name for f in ctx.cluster.state.filers.values() if f.credential == cred.name)
    return {
        "name": cred.name,
        "type": cred.type,
        "internalName": f"cred_{cred.name}",
        "note": cred.note,
        "tenant": cred.tenant,
        "subscription": cred.subscription,
        "coreFilers": users,
    }


def _storage_key(attrs: dict[str, Any]) -> str:
    value = text(attrs.get("storageKey"), "storageKey")
    if not value.startswith("BASE64:"):
        raise Fault(EINVAL, "storageKey must be given as 'BASE64:<key>'")
    try:
        base64.b64decode(value[7:], validate=True)
    except (binascii.Error, ValueError):
        raise Fault(EINVAL, "storageKey is not valid base64") from None
    return value[7:]


@rpc("corefiler.createCredential")
def create_credential(ctx: Ctx, name: Any, cred_type: Any, attrs: Any) -> str:
    """corefiler.createCredential(name, type, attrs) => 'success'. 'azure-storage' takes tenant,
    subscription, storageKey ('BASE64:<account key>') and note."""
    name, cred_type, attrs = text(name, "name"), text(cred_type, "type"), struct(attrs, "attributes")
    if name in ctx.cluster.state.credentials:
        raise Fault(EEXIST, f"Credential '{name}' already exists")
    if cred_type not in CREDENTIAL_TYPES:
        raise Fault(EINVAL, f"Unknown credential type '{cred_type}'")
    key = _storage_key(attrs) if cred_type == "azure-storage" else ""
    ctx.cluster.state.credentials[name] = Credential(
        name=name,
        type=cred_type,
        tenant=str(attrs.get("tenant", "")),
        subscription=str(attrs.get("subscription", "")),
        note=str(attrs.get("note", "")),
        storage_key=key,
    )
    return "success"


@rpc("corefiler.modifyCredential")
def modify_credential(ctx: Ctx, name: Any, attrs: Any) -> str:
    """corefiler.modifyCredential(name, attrs) => 'success'."""
    cred = ctx.cluster.state.credentials.get(text(name, "name"))
    if cred is None:
        raise Fault(ENOENT, f"Cannot find credential '{name}'")
    attrs = struct(attrs, "attributes")
    if "storageKey" in attrs:
        cred.storage_key = _storage_key(attrs)
    for field in ("tenant", "subscription", "note"):
        if field in attrs:
            setattr(cred, field, str(attrs[field]))
    return "success"


@rpc("corefiler.removeCredential")
def remove_credential(ctx: Ctx, name: Any) -> str:
    """corefiler.removeCredential(name) => 'success'; refused while a core filer uses it."""
    name = text(name, "name")
    if name not in ctx.cluster.state.credentials:
        raise Fault(ENOENT, f"Cannot find credential '{name}'")
    if any(f.credential == name for f in ctx.cluster.state.filers.values()):
        raise Fault(EINUSE, f"Credential '{name}' is used by a core filer")
    del ctx.cluster.state.credentials[name]
    return "success"


@rpc("corefiler.listCredentials", readonly=True)
def list_credentials(ctx: Ctx) -> list[dict[str, Any]]:
    """corefiler.listCredentials() => [{name, type, internalName, note, tenant, coreFilers}] (no secrets)."""
    return [_credential_json(ctx, c) for _, c in sorted(ctx.cluster.state.credentials.items())]


@rpc("corefiler.getCredential", readonly=True)
def get_credential(ctx: Ctx, name: Any) -> dict[str, Any]:
    """corefiler.getCredential(name) => {name, type, ...} (no secrets)."""
    cred = ctx.cluster.state.credentials.get(text(name, "name"))
    if cred is None:
        raise Fault(ENOENT, f"Cannot find credential '{name}'")
    return _credential_json(ctx, cred)
