"""The Key Vault stand-in's secret store: versions, soft delete and Key Vault's limits, persisted to disk."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME_RULE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_CHARS = 25_600  # Key Vault's 25 KB limit on a secret value
MAX_TAGS = 15
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
RECOVERABLE_DAYS = 90
RECOVERY_LEVEL = "Recoverable+Purgeable"  # soft delete (90 days), purge allowed
PROTECTED_RECOVERY_LEVEL = "Recoverable"  # soft delete with purge protection, as infra/main.bicep deploys it
_PURGE_PROTECTED = (
    'Operation "purge" is not allowed because purge protection is enabled for this vault. Key '
    "Vault service will automatically purge it after the retention period has passed."
)
_NOT_FOUND_HINT = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command."
)


class VaultError(Exception):
    """A Key Vault error response: HTTP status, error code, message and optional inner code."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


def bad_parameter(message: str) -> VaultError:
    return VaultError(400, "BadParameter", message)


def check_name(name: str) -> str:
    if not NAME_RULE.match(name):
        raise bad_parameter(
            f"The request URI contains an invalid name: {name[:200]!r}. Secret names must "
            "be 1-127 characters of 0-9, a-z, A-Z and '-'."
        )
    return name


@dataclass(frozen=True)
class Version:
    """One stored secret version as the server renders it (value included; callers drop it as needed)."""

    name: str
    version: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Deleted:
    """A soft-deleted secret: its latest version plus when it was deleted and will be purged."""

    latest: Version
    deleted_date: int
    scheduled_purge_date: int


def _check_attributes(attrs: Any) -> dict[str, Any]:
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise bad_parameter("attributes must be a JSON object")
    out: dict[str, Any] = {}
    if "enabled" in attrs and attrs["enabled"] is not None:
        if not isinstance(attrs["enabled"], bool):
            raise bad_parameter("attributes.enabled must be true or false")
        out["enabled"] = attrs["enabled"]
    for key in ("nbf", "exp"):
        if key in attrs and attrs[key] is not None:
            if not isinstance(attrs[key], int) or isinstance(attrs[key], bool):
                raise bad_parameter(f"attributes.{key} must be Unix seconds (an integer)")
            out[key] = attrs[key]
    return out


def _check_tags(tags: Any) -> dict[str, str] | None:
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise bad_parameter("tags must be a JSON object of string values")
    if len(tags) > MAX_TAGS:
        raise bad_parameter(f"A secret can have at most {MAX_TAGS} tags; {len(tags)} were given.")
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_NAME:
            raise bad_parameter(f"Tag names must be 1-{MAX_TAG_NAME} characters; {key[:40]!r} is not.")
        if len(value) > MAX_TAG_VALUE:
            raise bad_parameter(f"The value of tag {key[:40]!r} is longer than {MAX_TAG_VALUE} characters.")
    return dict(tags)


def _check_content_type(content_type: Any) -> str | None:
    if content_type is not None and not isinstance(content_type, str):
        raise bad_parameter("contentType must be a string")
    return content_type


class SecretStore:
    """Secrets keyed by lower-cased name (Key Vault names are case-insensitive), saved after each change.

    purge_protection: a deleted secret cannot be purged (403, Key Vault's text), only recovered or left to
    expire; the vault's recovery level then reads "Recoverable"."""

    def __init__(self, state_dir: Path, clock: Callable[[], float], *, purge_protection: bool = False) -> None:
        self.purge_protection = purge_protection
        self.recovery_level = PROTECTED_RECOVERY_LEVEL if purge_protection else RECOVERY_LEVEL
        self._dir = Path(state_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._dir.chmod(0o700)
        self._path = self._dir / "secrets.json"
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {"secrets": {}, "deleted": {}}
        if self._path.exists():
            self._data = json.loads(self._path.read_text())

    def _now(self) -> int:
        return int(self._clock())

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._dir, prefix=".secrets.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(self._data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- lookups (callers hold the lock) --------------------------------------------------------------

    def _live(self, name: str) -> dict[str, Any]:
        entry = self._data["secrets"].get(check_name(name).lower())
        if entry is None:
            raise VaultError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name} was not found in this key vault. {_NOT_FOUND_HINT}",
            )
        return entry

    def _version(self, name: str, version: str | None) -> Version:
        entry = self._live(name)
        ver = version or entry["latest"]
        record = entry["versions"].get(ver.lower())
        if record is None:
            raise VaultError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name}/{version} was not found in this key vault. {_NOT_FOUND_HINT}",
            )
        return Version(entry["name"], ver.lower(), dict(record))

    def _expire_deleted(self) -> bool:
        now = self._now()
        gone = [k for k, d in self._data["deleted"].items() if d["scheduledPurgeDate"] <= now]
        for key in gone:
            del self._data["deleted"][key]
        return bool(gone)

    def _deleted(self, name: str) -> dict[str, Any]:
        if self._expire_deleted():
            self._save()
        entry = self._data["deleted"].get(check_name(name).lower())
        if entry is None:
            raise VaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return entry

    @staticmethod
    def _deleted_view(entry: dict[str, Any]) -> Deleted:
        secret = entry["secret"]
        latest = Version(secret["name"], secret["latest"], dict(secret["versions"][secret["latest"]]))
        return Deleted(latest, entry["deletedDate"], entry["scheduledPurgeDate"])

    # -- operations -----------------------------------------------------------------------------------

    def set(self, name: str, body: Any) -> Version:
        check_name(name)
        if not isinstance(body, dict) or "value" not in body:
            raise bad_parameter("The request body must be a JSON object with a 'value' property.")
        value = body["value"]
        if not isinstance(value, str):
            raise bad_parameter("The secret value must be a string.")
        if len(value) > MAX_VALUE_CHARS:
            raise bad_parameter(
                f"The secret value is {len(value)} characters long; Key Vault allows at most {MAX_VALUE_CHARS} (25 KB)."
            )
        attrs = _check_attributes(body.get("attributes"))
        tags = _check_tags(body.get("tags"))
        content_type = _check_content_type(body.get("contentType"))
        with self._lock:
            key = name.lower()
            self._expire_deleted()
            if key in self._data["deleted"]:
                raise VaultError(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but "
                    "recoverable state, and its name cannot be reused; in this state, the "
                    "secret can only be recovered or purged.",
                    "ObjectIsDeletedButRecoverable",
                )
            now = self._now()
            entry = self._data["secrets"].setdefault(key, {"name": name, "latest": "", "versions": {}})
            version = uuid.uuid4().hex
            record: dict[str, Any] = {
                "value": value,
                "contentType": content_type,
                "tags": tags,
                "enabled": attrs.get("enabled", True),
                "created": now,
                "updated": now,
            }
            for limit in ("nbf", "exp"):
                if limit in attrs:
                    record[limit] = attrs[limit]
            entry["versions"][version] = record
            entry["latest"] = version
            self._save()
            return Version(entry["name"], version, dict(record))

    def get(self, name: str, version: str | None) -> Version:
        with self._lock:
            found = self._version(name, version)
        if not found.record["enabled"]:
            raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
        return found

    def update(self, name: str, version: str | None, body: Any) -> Version:
        if not isinstance(body, dict):
            raise bad_parameter("The request body must be a JSON object.")
        attrs = _check_attributes(body.get("attributes"))
        tags = _check_tags(body.get("tags"))
        content_type = _check_content_type(body.get("contentType"))
        with self._lock:
            found = self._version(name, version)
            record = self._data["secrets"][found.name.lower()]["versions"][found.version]
            record.update(attrs)
            if tags is not None:
                record["tags"] = tags
            if content_type is not None:
                record["contentType"] = content_type
            record["updated"] = self._now()
            self._save()
            return Version(found.name, found.version, dict(record))

    def list_latest(self) -> list[Version]:
        with self._lock:
            return [
                Version(e["name"], e["latest"], dict(e["versions"][e["latest"]]))
                for _, e in sorted(self._data["secrets"].items())
            ]

    def list_versions(self, name: str) -> list[Version]:
        """Every version of name, in hash (version-id) order like the real service, never creation order.

        An unknown name lists nothing (200 with an empty page), as the service does.
        """
        check_name(name)
        with self._lock:
            entry = self._data["secrets"].get(name.lower())
            if entry is None:
                return []
            return [Version(entry["name"], v, dict(r)) for v, r in sorted(entry["versions"].items())]

    def delete(self, name: str) -> Deleted:
        with self._lock:
            entry = self._live(name)
            now = self._now()
            deleted = {"secret": entry, "deletedDate": now, "scheduledPurgeDate": now + RECOVERABLE_DAYS * 86_400}
            del self._data["secrets"][name.lower()]
            self._data["deleted"][name.lower()] = deleted
            self._save()
            return self._deleted_view(deleted)

    def get_deleted(self, name: str) -> Deleted:
        with self._lock:
            return self._deleted_view(self._deleted(name))

    def list_deleted(self) -> list[Deleted]:
        with self._lock:
            if self._expire_deleted():
                self._save()
            return [self._deleted_view(d) for _, d in sorted(self._data["deleted"].items())]

    def recover(self, name: str) -> Version:
        with self._lock:
            entry = self._deleted(name)
            del self._data["deleted"][name.lower()]
            self._data["secrets"][name.lower()] = entry["secret"]
            self._save()
            return self._deleted_view(entry).latest

    def purge(self, name: str) -> None:
        with self._lock:
            self._deleted(name)
            if self.purge_protection:
                raise VaultError(403, "Forbidden", _PURGE_PROTECTED)
            del self._data["deleted"][name.lower()]
            self._save()
