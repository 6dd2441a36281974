"""Cloud encryption keys of a core filer: generate (never twice for one request), activate, recovery files."""

from __future__ import annotations

from typing import Any

from shared.avere import answers
from shared.avere.errors import AvereAlready, AvereConfigError, AvereConflict
from shared.avere.reader import AvereReader
from shared.avere.records import MAX_PASSPHRASE, MasterKey, Recovery
from shared.avere.writes import send_once


class AvereKeys(AvereReader):
    """The key calls of the management API (simpleKey store). Passphrases and recovery files are scrubbed."""

    def generate_master_key(self, name: str, passphrase: str) -> MasterKey:
        """A new (not yet active) key; the caller stores the recovery file before activate_master_key.

        If the answer is lost, the key may exist: a pending key that was not there before the call is this
        call's (one run per filer at a time), and downloadKeyRecoveryFile returns it with its recovery file,
        sealed with this passphrase. Only when no new key is pending is the key generated again.
        """
        if not passphrase or len(passphrase) > MAX_PASSPHRASE:
            raise AvereConfigError(f"passphrase must have 1 to {MAX_PASSPHRASE} characters")
        self.session.add_secrets([passphrase])
        label = f"corefiler.generateMasterKey({name})"
        before = self.master_key_status(name).ready_to_activate  # unreadable: nothing is generated

        def send() -> MasterKey:
            return self._master_key(
                self.call("corefiler.generateMasterKey", name, passphrase, secrets=[passphrase]), label
            )

        def applied() -> MasterKey | None:
            pending = self.master_key_status(name).ready_to_activate
            if not pending or pending == before:
                return None
            key = self.download_recovery_file(name)
            if key.key_id != pending:
                raise AvereConflict(
                    f"{label}: the answer was lost; key {pending} is pending but "
                    f"downloadKeyRecoveryFile returned key {key.key_id}: generate again later"
                )
            return key

        return send_once(label, send, applied, resends=self.session.retries)

    def download_recovery_file(self, name: str) -> MasterKey:
        """The key of the most recent generateMasterKey with its recovery file (API guide p.182)."""
        label = f"corefiler.downloadKeyRecoveryFile({name})"
        return self._master_key(self.call("corefiler.downloadKeyRecoveryFile", name), label)

    def _master_key(self, answer: Any, what: str) -> MasterKey:
        data = answers.struct(answer, what)
        recovery = answers.text(data, "recoveryFile", what)
        self.session.add_secrets([recovery])
        return MasterKey(
            key_id=answers.text(data, "keyId", what), signature=str(data.get("signature", "")), recovery_file=recovery
        )

    def activate_master_key(self, name: str, key_id: str, recovery_file: str) -> None:
        """Activate the most recently generated key; a no-op when it already is the active one."""
        self.session.add_secrets([recovery_file])
        if self.master_key_status(name).active_key_id == key_id:
            return

        def send() -> bool:
            try:
                self.call("corefiler.activateMasterKey", name, key_id, recovery_file, secrets=[recovery_file])
            except AvereAlready:
                if self.master_key_status(name).active_key_id != key_id:
                    raise
            return True

        send_once(
            f"corefiler.activateMasterKey({name})",
            send,
            lambda: True if self.master_key_status(name).active_key_id == key_id else None,
            resends=self.session.retries,
        )

    def upload_recovery_file(self, name: str, recovery: Recovery) -> bool:
        """Install the keys of a recovery file on a re-added filer; False when keys are already there."""
        self.session.add_secrets([recovery.passphrase, recovery.recovery_file])
        if self.master_key_status(name).active_key_id:
            return False

        def send() -> bool:
            self.call(
                "corefiler.uploadKeyRecoveryFile",
                name,
                recovery.passphrase,
                recovery.recovery_file,
                secrets=[recovery.passphrase, recovery.recovery_file],
            )
            return True

        return send_once(
            f"corefiler.uploadKeyRecoveryFile({name})",
            send,
            lambda: True if self.master_key_status(name).active_key_id else None,
            resends=self.session.retries,
        )
