"""The Avere vFXT management client: high-level, idempotent core-filer operations over XML-RPC."""

from __future__ import annotations

from shared.avere.errors import (
    AvereAlready,
    AvereConfigError,
    AvereConflict,
    AvereExists,
    FilerNotFound,
    FlushInProgress,
    JunctionNotFound,
)
from shared.avere.namespace import (
    cache_policy_create_struct,
    create_options,
    junction_advanced,
    junction_filer,
    junction_from_api,
    rule_add_params,
    rule_from_api,
    same_junction,
)
from shared.avere.reader import AvereReader
from shared.avere.records import (
    MAX_PASSPHRASE,
    CachePolicyRecord,
    ExportPolicyRecord,
    FilerRecord,
    JunctionRecord,
    MasterKey,
    Recovery,
)

MAINTENANCE = ("system.enableAPI", ("maintenance",))


class AvereClient(AvereReader):
    """Client of one cluster's management API. Long operations return an activity id (or 'success').

    Construct with plain arguments: AvereClient(url, user, password, ca_file=... | fingerprint_sha256=...
    | insecure=True, timeout=30, retries=5). Every secret given to it is scrubbed from errors and logs.
    """

    # -- keys --------------------------------------------------------------------------------------------
    def generate_master_key(self, name: str, passphrase: str) -> MasterKey:
        """A new (not yet active) key; the caller stores the recovery file before activate_master_key."""
        if not passphrase or len(passphrase) > MAX_PASSPHRASE:
            raise AvereConfigError(f"passphrase must have 1 to {MAX_PASSPHRASE} characters")
        self.session.add_secrets([passphrase])
        data = self.call("corefiler.generateMasterKey", name, passphrase, secrets=[passphrase])
        recovery = str(data["recoveryFile"])
        self.session.add_secrets([recovery])
        return MasterKey(key_id=str(data["keyId"]), signature=str(data.get("signature", "")),
                         recovery_file=recovery)

    def activate_master_key(self, name: str, key_id: str, recovery_file: str) -> None:
        """Activate the most recently generated key; a no-op when it already is the active one."""
        self.session.add_secrets([recovery_file])
        if self.master_key_status(name).active_key_id == key_id:
            return
        try:
            self.call("corefiler.activateMasterKey", name, key_id, recovery_file, secrets=[recovery_file])
        except AvereAlready:
            if self.master_key_status(name).active_key_id != key_id:
                raise

    def upload_recovery_file(self, name: str, recovery: Recovery) -> bool:
        """Install the keys of a recovery file on a re-added filer; False when keys are already there."""
        self.session.add_secrets([recovery.passphrase, recovery.recovery_file])
        if self.master_key_status(name).active_key_id:
            return False
        self.call("corefiler.uploadKeyRecoveryFile", name, recovery.passphrase, recovery.recovery_file,
                  secrets=[recovery.passphrase, recovery.recovery_file])
        return True

    # -- writing -----------------------------------------------------------------------------------------
    def suspend_clients(self, name: str) -> str:
        return str(self.call("corefiler.modify", name, {"clientSuspend": "yes"}))

    def unsuspend_clients(self, name: str) -> str:
        return str(self.call("corefiler.modify", name, {"clientSuspend": "no"}))

    def flush_core_filer(self, name: str) -> str:
        """Start writing all dirty data back; returns the flush activity (the running one if any)."""
        try:
            return str(self.multicall([MAINTENANCE, ("corefiler.flush", (name,))])[1])
        except FlushInProgress:
            running = self._running_activity("corefiler_flush", name)
            if running is None:
                raise
            return running

    def remove_junctions(self, name: str) -> list[str]:
        """Remove every junction of the filer on every vserver; returns their activities."""
        activities: list[str] = []
        for j in self._junctions(name):
            try:
                activities.append(str(self.call("vserver.removeJunction", j.vserver, j.path)))
            except JunctionNotFound:
                continue  # removed meanwhile: the goal is reached
        return activities

    def remove_core_filer(self, name: str) -> str:
        """Maintenance API + corefiler.remove in one session; 'success' when the filer is already gone."""
        state = self.filer_state(name)
        if state == "removed":
            return "success"
        if state == "removing":
            running = self._running_activity("corefiler_remove", name)
            if running is None:
                raise AvereConflict(f"core filer {name!r} is being removed; poll filer_state until removed")
            return running
        try:
            return str(self.multicall([MAINTENANCE, ("corefiler.remove", (name,))])[1])
        except FilerNotFound:
            return "success"

    def ensure_credential(self, name: str, account: str, storage_key: str, *, tenant: str | None = None,
                          subscription: str = "", note: str = "") -> str:
        """Create (or refresh the key of) an 'azure-storage' credential; returns 'created' or 'updated'."""
        if not name or not account or not storage_key:
            raise AvereConfigError("credential name, account and storage key are required")
        prefixed = f"BASE64:{storage_key}"
        self.session.add_secrets([storage_key, prefixed])
        attrs = {"tenant": tenant or account, "subscription": subscription, "storageKey": prefixed,
                 "note": note}
        existing = self._credential_type(name)
        if existing and existing != "azure-storage":
            raise AvereConflict(f"credential {name!r} exists with type {existing!r}, not 'azure-storage'")
        if existing:
            self.call("corefiler.modifyCredential", name, attrs, secrets=[storage_key, prefixed])
            return "updated"
        self.call("corefiler.createCredential", name, "azure-storage", attrs, secrets=[storage_key, prefixed])
        return "created"

    def ensure_cache_policy(self, policy: CachePolicyRecord) -> None:
        if policy.builtin:
            return
        if any(p.get("name") == policy.name for p in self.call("cachePolicy.list")):
            return
        self.call("cachePolicy.create", cache_policy_create_struct(policy))

    def add_cloud_core_filer(self, record: FilerRecord, bucket: str, server_name: str, credential: str, *,
                             bucket_contents: str = "used", recovery: Recovery | None = None,
                             name: str | None = None) -> str:
        """Re-create the recorded filer on `bucket`. Returns the create activity, or 'success' once it exists.

        Call again after the activity succeeds: for an existing filer on the same bucket it uploads the
        recovery file (if encrypted) and stops there; it never generates or activates a key.
        """
        name = name or record.name
        try:
            options = create_options(record, bucket=bucket, server_name=server_name, credential=credential,
                                     bucket_contents=bucket_contents)
        except ValueError as exc:
            raise AvereConfigError(str(exc)) from None
        if record.encrypted and bucket_contents == "used" and recovery is None:
            raise AvereConfigError(f"core filer {name!r} is encrypted: re-adding its data needs the recovery "
                                   "file and passphrase")
        state = self.filer_state(name)
        if state != "removed":
            current = self._filer_info(name)
            if current.get("bucket") != bucket:
                raise AvereConflict(f"core filer {name!r} already exists on bucket "
                                    f"{current.get('bucket')!r}, not {bucket!r}")
            if state == "removing":
                raise AvereConflict(f"core filer {name!r} is still being removed; add it after it is gone")
            if record.encrypted and recovery is not None:
                self.upload_recovery_file(name, recovery)
            return "success"
        self.ensure_cache_policy(record.cache_policy)
        try:
            result = str(self.call("corefiler.createCloudFiler", name, options))
        except AvereExists:
            running = self._running_activity("corefiler_create", name)
            if running is None:
                raise
            return running
        if result == "success" and record.encrypted and recovery is not None:
            self.upload_recovery_file(name, recovery)
        return result

    def restore_junctions(self, record: FilerRecord, vserver_map: dict[str, str] | None = None,
                          filer_name: str | None = None) -> list[str]:
        """Re-create the record's export policies and junctions exactly; returns the junction activities."""
        vmap = vserver_map or {}
        filer = filer_name or record.name
        present = {str(v) for v in self.call("vserver.list")}
        missing = sorted({vmap.get(j.vserver, j.vserver) for j in record.junctions} - present)
        if missing:
            raise AvereConflict(f"vserver(s) {', '.join(missing)} do not exist on this cluster; "
                                "pass vserver_map to place the junctions")
        plan: list[JunctionRecord] = []
        for j in record.junctions:
            target = JunctionRecord.from_json({**JunctionRecord.to_json(j),
                                               "vserver": vmap.get(j.vserver, j.vserver)})
            current = {str(d["path"]): d for d in self.call("vserver.listJunctions", target.vserver)}
            if target.path in current:
                existing = junction_from_api(target.vserver, current[target.path])
                if junction_filer(current[target.path]) != filer or not same_junction(existing, target):
                    raise AvereConflict(f"junction {target.path} on {target.vserver} exists and differs; "
                                        "remove it first")
                continue
            plan.append(target)
        for policy in record.export_policies:
            self._ensure_export_policy(vmap.get(policy.vserver, policy.vserver), policy)
        return [str(self.call("vserver.addJunction", j.vserver, j.path, filer, j.export,
                              junction_advanced(j))) for j in plan]

    def _ensure_export_policy(self, vserver: str, policy: ExportPolicyRecord) -> None:
        if policy.name not in {str(p) for p in self.call("nfs.listPolicies", vserver)}:
            self.call("nfs.addPolicy", vserver, policy.name)
            have = []
        else:
            have = [rule_from_api(r) for r in self.call("nfs.listRules", vserver, policy.name, "")]
        for rule in policy.rules:
            if rule not in have:
                self.call("nfs.addRule", *rule_add_params(vserver, policy.name, rule))
