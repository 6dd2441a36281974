"""The Avere vFXT management client: high-level, idempotent core-filer operations over XML-RPC."""

from __future__ import annotations

from shared.avere import answers
from shared.avere.errors import (
    AvereConfigError,
    AvereConflict,
    AvereExists,
    FilerNotFound,
    FlushInProgress,
    JunctionNotFound,
)
from shared.avere.keys import AvereKeys
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
from shared.avere.records import (
    CachePolicyRecord,
    ExportPolicyRecord,
    ExportRule,
    FilerRecord,
    JunctionRecord,
    Recovery,
)
from shared.avere.writes import send_once

MAINTENANCE = ("system.enableAPI", ("maintenance",))
# Settings of an existing filer that must equal the request's before it counts as the one asked for:
# (corefiler.get field, createCloudFiler option).
SAME_FILER = (
    ("bucket", "bucket"),
    ("cryptoMode", "cryptoMode"),
    ("compressMode", "compressMode"),
    ("cloudCredential", "cloudCredential"),
    ("policyName", "cachePolicyName"),
)


class AvereClient(AvereKeys):
    """Client of one cluster's management API. Long operations return an activity id (or 'success').

    Construct with plain arguments: AvereClient(url, user, password, ca_file=... | fingerprint_sha256=...
    | insecure=True, timeout=30, retries=5). Every secret given to it is scrubbed from errors and logs.

    Writes are never sent twice blindly: the session re-sends one only when it surely was not sent, and after
    a lost answer each method here reads the state back and goes on from what is there (shared/avere/writes.py).
    """

    # -- writing -----------------------------------------------------------------------------------------
    def suspend_clients(self, name: str) -> str:
        return str(self.call("corefiler.modify", name, {"clientSuspend": "yes"}))

    def unsuspend_clients(self, name: str) -> str:
        return str(self.call("corefiler.modify", name, {"clientSuspend": "no"}))

    def flush_core_filer(self, name: str) -> str:
        """Start writing all dirty data back; returns the flush activity (the running one if any)."""

        def send() -> str:
            try:
                return str(self.multicall([MAINTENANCE, ("corefiler.flush", (name,))])[1])
            except FlushInProgress:
                running = self._running_activity("corefiler_flush", name)
                if running is None:
                    raise
                return running

        # A flush that did not start (or already ended) is harmless to start again.
        return send_once(
            f"corefiler.flush({name})",
            send,
            lambda: self._running_activity("corefiler_flush", name),
            resends=self.session.retries,
        )

    def remove_junctions(self, name: str) -> list[str]:
        """Remove every junction of the filer on every vserver; returns their activities."""
        activities: list[str] = []
        for j in self.junctions(name):

            def send(j: JunctionRecord = j) -> str:
                try:
                    return str(self.call("vserver.removeJunction", j.vserver, j.path))
                except JunctionNotFound:
                    return "success"  # removed meanwhile: the goal is reached

            def gone(j: JunctionRecord = j) -> str | None:
                listed = {str(e["path"]) for e in self.junction_entries(j.vserver)}
                return None if j.path in listed else "success"

            activity = send_once(
                f"vserver.removeJunction({j.vserver}, {j.path})", send, gone, resends=self.session.retries
            )
            if activity != "success":
                activities.append(activity)
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

        def send() -> str:
            try:
                return str(self.multicall([MAINTENANCE, ("corefiler.remove", (name,))])[1])
            except FilerNotFound:
                return "success"

        def applied() -> str | None:
            state = self.filer_state(name)
            if state == "removed":
                return "success"
            if state == "removing":
                return self._running_activity("corefiler_remove", name) or "success"
            return None

        return send_once(f"corefiler.remove({name})", send, applied, resends=self.session.retries)

    def ensure_credential(
        self,
        name: str,
        account: str,
        storage_key: str,
        *,
        tenant: str | None = None,
        subscription: str = "",
        note: str = "",
    ) -> str:
        """Create (or refresh the key of) an 'azure-storage' credential; returns 'created' or 'updated'."""
        if not name or not account or not storage_key:
            raise AvereConfigError("credential name, account and storage key are required")
        prefixed = f"BASE64:{storage_key}"
        self.session.add_secrets([storage_key, prefixed])
        attrs = {"tenant": tenant or account, "subscription": subscription, "storageKey": prefixed, "note": note}
        existing = self._credential_type(name)
        if existing and existing != "azure-storage":
            raise AvereConflict(f"credential {name!r} exists with type {existing!r}, not 'azure-storage'")
        if existing:
            self.call("corefiler.modifyCredential", name, attrs, secrets=[storage_key, prefixed])
            return "updated"

        def send() -> str:
            self.call("corefiler.createCredential", name, "azure-storage", attrs, secrets=[storage_key, prefixed])
            return "created"

        return send_once(
            f"corefiler.createCredential({name})",
            send,
            lambda: "created" if self._credential_type(name) == "azure-storage" else None,
            resends=self.session.retries,
        )

    def ensure_cache_policy(self, policy: CachePolicyRecord) -> None:
        if policy.builtin or self._has_cache_policy(policy.name):
            return

        def send() -> bool:
            self.call("cachePolicy.create", cache_policy_create_struct(policy))
            return True

        send_once(
            f"cachePolicy.create({policy.name})",
            send,
            lambda: True if self._has_cache_policy(policy.name) else None,
            resends=self.session.retries,
        )

    def _has_cache_policy(self, name: str) -> bool:
        return any(
            isinstance(p, dict) and p.get("name") == name
            for p in answers.array(self.call("cachePolicy.list"), "cachePolicy.list")
        )

    def add_cloud_core_filer(
        self,
        record: FilerRecord,
        bucket: str,
        server_name: str,
        credential: str,
        *,
        bucket_contents: str = "used",
        recovery: Recovery | None = None,
        name: str | None = None,
    ) -> str:
        """Re-create the recorded filer on `bucket`. Returns the create activity, or 'success' once it exists.

        Call again after the activity succeeds: for an existing filer with the recorded settings on the same
        bucket it uploads the recovery file (if encrypted) and stops there; it never generates or activates a
        key. An existing filer whose settings differ is a conflict, left untouched.
        """
        name = name or record.name
        try:
            options = create_options(
                record, bucket=bucket, server_name=server_name, credential=credential, bucket_contents=bucket_contents
            )
        except ValueError as exc:
            raise AvereConfigError(str(exc)) from None
        if record.encrypted and bucket_contents == "used" and recovery is None:
            raise AvereConfigError(
                f"core filer {name!r} is encrypted: re-adding its data needs the recovery file and passphrase"
            )
        state = self.filer_state(name)
        if state != "removed":
            self._check_same_filer(name, options)
            if state == "removing":
                raise AvereConflict(f"core filer {name!r} is still being removed; add it after it is gone")
            if record.encrypted and recovery is not None:
                self.upload_recovery_file(name, recovery)
            return "success"
        running = self._running_activity("corefiler_create", name)
        if running is not None:  # created by an earlier call whose answer was lost or failed after the start
            return running
        self.ensure_cache_policy(record.cache_policy)

        def send() -> str:
            try:
                return str(self.call("corefiler.createCloudFiler", name, options))
            except AvereExists:
                running = self._running_activity("corefiler_create", name)
                if running is None:
                    raise
                return running

        def applied() -> str | None:
            running = self._running_activity("corefiler_create", name)
            if running is not None:
                return running
            if self.filer_state(name) == "removed":
                return None
            self._check_same_filer(name, options)
            return "success"

        result = send_once(f"corefiler.createCloudFiler({name})", send, applied, resends=self.session.retries)
        if result == "success" and record.encrypted and recovery is not None:
            self.upload_recovery_file(name, recovery)
        return result

    def _check_same_filer(self, name: str, options: dict[str, object]) -> None:
        """An existing filer of that name is the one asked for only with the same bucket and settings."""
        info = self.filer_info(name, tuple(field for field, _ in SAME_FILER))
        differ = [
            f"{field} {info[field]!r} (asked {options[option]!r})"
            for field, option in SAME_FILER
            if str(info[field]).upper() != str(options[option]).upper()
        ]
        if differ:
            raise AvereConflict(
                f"core filer {name!r} already exists with other settings: {'; '.join(differ)}; it was left untouched"
            )

    def restore_junctions(
        self, record: FilerRecord, vserver_map: dict[str, str] | None = None, filer_name: str | None = None
    ) -> list[str]:
        """Re-create the record's export policies and junctions exactly; returns the junction activities."""
        vmap = vserver_map or {}
        filer = filer_name or record.name
        present = set(answers.names(self.call("vserver.list"), "vserver.list"))
        missing = sorted({vmap.get(j.vserver, j.vserver) for j in record.junctions} - present)
        if missing:
            raise AvereConflict(
                f"vserver(s) {', '.join(missing)} do not exist on this cluster; pass vserver_map to place the junctions"
            )
        plan: list[JunctionRecord] = []
        for j in record.junctions:
            target = JunctionRecord.from_json({**JunctionRecord.to_json(j), "vserver": vmap.get(j.vserver, j.vserver)})
            if self._junction_there(target, filer) is None:
                plan.append(target)
        for policy in record.export_policies:
            self._ensure_export_policy(vmap.get(policy.vserver, policy.vserver), policy)
        activities: list[str] = []
        for j in plan:

            def send(j: JunctionRecord = j) -> str:
                return str(self.call("vserver.addJunction", j.vserver, j.path, filer, j.export, junction_advanced(j)))

            def there(j: JunctionRecord = j) -> str | None:
                return self._junction_there(j, filer)

            activities.append(
                send_once(f"vserver.addJunction({j.vserver}, {j.path})", send, there, resends=self.session.retries)
            )
        return activities

    def _junction_there(self, target: JunctionRecord, filer: str) -> str | None:
        """'success' when the junction exists exactly as recorded, None when the path is free; a conflict when
        the path holds another junction."""
        current = {str(d["path"]): d for d in self.junction_entries(target.vserver)}
        if target.path not in current:
            return None
        existing = junction_from_api(target.vserver, current[target.path])
        if junction_filer(current[target.path]) != filer or not same_junction(existing, target):
            raise AvereConflict(f"junction {target.path} on {target.vserver} exists and differs; remove it first")
        return "success"

    def _ensure_export_policy(self, vserver: str, policy: ExportPolicyRecord) -> None:
        if policy.name not in self._policies(vserver):

            def send() -> bool:
                self.call("nfs.addPolicy", vserver, policy.name)
                return True

            send_once(
                f"nfs.addPolicy({vserver}, {policy.name})",
                send,
                lambda: True if policy.name in self._policies(vserver) else None,
                resends=self.session.retries,
            )
        have = self._rules(vserver, policy.name)
        for rule in policy.rules:
            if rule in have:
                have.remove(rule)  # one listed rule stands for one recorded rule, duplicates included
                continue
            self._add_rule(vserver, policy.name, rule)

    def _policies(self, vserver: str) -> set[str]:
        return {str(p) for p in answers.array(self.call("nfs.listPolicies", vserver), "nfs.listPolicies")}

    def _rules(self, vserver: str, policy: str) -> list[ExportRule]:
        listed = answers.array(self.call("nfs.listRules", vserver, policy, ""), f"nfs.listRules({policy})")
        return [rule_from_api(answers.struct(r, f"nfs.listRules({policy})")) for r in listed]

    def _add_rule(self, vserver: str, policy: str, rule: ExportRule) -> None:
        """nfs.addRule accepts a duplicate as a new rule: after a lost answer, count the equal rules."""
        before = self._rules(vserver, policy).count(rule)

        def send() -> bool:
            self.call("nfs.addRule", *rule_add_params(vserver, policy, rule))
            return True

        send_once(
            f"nfs.addRule({vserver}, {policy})",
            send,
            lambda: True if self._rules(vserver, policy).count(rule) > before else None,
            resends=self.session.retries,
        )
