"""Key Vault secrets for the DR app: store with tags, read by version, list versions newest first."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.keyvault.secrets import KeyVaultSecret, SecretClient, SecretProperties
from shared.core.codec import JsonRecord
from shared.core.netutil import is_loopback_host

if TYPE_CHECKING:
    from azure.identity import DefaultAzureCredential

SECRET_NAME_RULE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
VERSION_RULE = re.compile(r"^[0-9a-fA-F]{32}$")
MAX_VALUE_CHARS = 25_600  # Key Vault's 25 KB limit on a secret value
MAX_TAGS = 15
# Every version this module stores carries its store time in nanoseconds, because `created` has only
# whole seconds and two versions stored within one second must still sort newest first.
ORDER_TAG = "vfxtdr-stored-ns"
# Write probes (probe_write) are one-off secrets under this prefix, never a name the app keeps anything in.
PROBE_PREFIX = "vfxtdr-preflight-probe-"
PROBE_CONTENT_TYPE = "application/vnd.vfxtdr.preflight-probe"
_EPOCH = datetime.fromtimestamp(0, UTC)


class KeyVaultError(Exception):
    """A Key Vault operation failed: names the secret (and version) and the problem, never the value."""

    def __init__(
        self, name: str, problem: str, *, version: str | None = None, status: int | None = None, code: str | None = None
    ) -> None:
        target = f"{name}/{version}" if version else name
        super().__init__(f"secret {target}: {problem}")
        self.name, self.version, self.problem, self.status, self.code = name, version, problem, status, code


class SecretNotFound(KeyVaultError):
    """No such secret or version (or it is soft-deleted)."""


class SecretDisabled(KeyVaultError):
    """The version exists but is disabled; enable it before reading."""


class SecretConflict(KeyVaultError):
    """The name is soft-deleted: recover or purge it before storing under it again."""


class KeyVaultAccessError(KeyVaultError):
    """Authentication or authorization failed (token, challenge, tenant, access policy)."""


class KeyVaultUnavailable(KeyVaultError):
    """The vault could not be reached (network, DNS, TLS trust)."""


def _text(value: Any) -> str | None:
    """An SDK enum member as the service spelt it (str() of the member gives its Python name)."""
    return None if value is None else str(getattr(value, "value", value))


def purge_after_delete(recovery_level: str | None) -> bool:
    """Whether a secret deleted from a vault of this recovery level can (and must) be purged to be gone:
    the "...+Purgeable" levels (soft delete without purge protection). "Recoverable" and "CustomizedRecoverable"
    (purge protection) keep it until their retention ends, whatever anyone asks; "Purgeable" alone has no
    soft delete (a deletion is final); an unknown level is never purged."""
    return bool(recovery_level) and str(recovery_level).endswith("+Purgeable")


@dataclass(frozen=True)
class ProbeResult:
    """What a write probe proved and what it left: the probe's name, the vault's recovery level, and a note
    when the probe could not be cleaned up (it holds nothing secret)."""

    name: str
    recovery_level: str | None
    purged: bool = False
    left: str = ""


def check_secret_name(name: Any) -> str:
    """Return name if Key Vault accepts it, else raise ValueError saying what is wrong."""
    if not isinstance(name, str) or not SECRET_NAME_RULE.match(name):
        raise ValueError(
            f"invalid Key Vault secret name {str(name)[:140]!r}: use 1-127 characters of 0-9, a-z, A-Z and '-'"
        )
    return name


@dataclass(frozen=True)
class SecretRef(JsonRecord):
    """Where a secret value lives: name and version. Safe to pass through orchestration history."""

    UNKNOWN_KEYS = "refuse"  # the codec's policy (a ClassVar of JsonRecord, not a field)

    name: str
    version: str

    def __post_init__(self) -> None:
        check_secret_name(self.name)
        if not isinstance(self.version, str) or not VERSION_RULE.match(self.version):
            raise ValueError(
                f"invalid Key Vault secret version {str(self.version)[:40]!r} for {self.name}: "
                "expected 32 hexadecimal characters"
            )

    @classmethod
    def from_json(cls, data: Any) -> SecretRef:
        if not isinstance(data, cls) and (not isinstance(data, dict) or set(data) != {"name", "version"}):
            raise ValueError("a SecretRef is a JSON object with exactly 'name' and 'version'")
        return super().from_json(data)


@dataclass(frozen=True)
class SecretVersion:
    """One version's properties (no value); tags as the caller stored them."""

    ref: SecretRef
    created: datetime
    updated: datetime
    enabled: bool
    content_type: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class Secret:
    """A secret value and its reference; the value stays out of repr so it cannot reach a log by accident."""

    ref: SecretRef
    value: str = field(repr=False)
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _check_vault_url(vault_url: str) -> str:
    parts = urlsplit(vault_url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"vault_url must be an https:// URL, got {vault_url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"vault_url must be the vault's root (https://host[:port]), got {vault_url!r}")
    return f"https://{parts.netloc}"


def _check_tags(tags: dict[str, str] | None) -> dict[str, str]:
    tags = dict(tags or {})
    if ORDER_TAG in tags:
        raise ValueError(f"tag {ORDER_TAG!r} is reserved: this module sets it")
    if len(tags) >= MAX_TAGS:
        raise ValueError(
            f"at most {MAX_TAGS - 1} tags may be given ({len(tags)} were); Key Vault allows "
            f"{MAX_TAGS} and one is {ORDER_TAG!r}"
        )
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise ValueError(f"tag {key!r}: tag names and values must be non-empty strings")
    return tags


def _public_tags(tags: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (tags or {}).items() if k != ORDER_TAG}


def _newest_first(props: list[SecretProperties]) -> list[SecretVersion]:
    """Sort by created, then by the store-time tag (sub-second order), newest first."""

    def key(p: SecretProperties) -> tuple[datetime, int]:
        stored = (p.tags or {}).get(ORDER_TAG, "")
        return p.created_on or _EPOCH, int(stored) if stored.isdigit() else 0

    return [
        SecretVersion(
            ref=SecretRef(p.name or "", p.version or ""),
            created=p.created_on or _EPOCH,
            updated=p.updated_on or _EPOCH,
            enabled=bool(p.enabled),
            content_type=p.content_type,
            tags=_public_tags(p.tags),
        )
        for p in sorted(props, key=key, reverse=True)
    ]


class KeyVault:
    """A vault's secrets through azure-keyvault-secrets, DefaultAzureCredential unless a credential is given.

    TLS trust comes from REQUESTS_CA_BUNDLE / SSL_CERT_FILE or ca_bundle. The check that the challenge's
    resource matches the vault's domain is relaxed only for loopback hosts (a local stand-in).
    """

    def __init__(
        self,
        vault_url: str,
        credential: TokenCredential | None = None,
        *,
        ca_bundle: str | Path | None = None,
        retry: dict[str, Any] | None = None,
    ) -> None:
        self.url = _check_vault_url(vault_url)
        options: dict[str, Any] = dict(retry or {})  # azure-core RetryPolicy options; none: the SDK's defaults
        if ca_bundle is not None:
            if not Path(ca_bundle).is_file():
                raise ValueError(f"ca_bundle {str(ca_bundle)!r} is not a file")
            options["connection_verify"] = str(ca_bundle)
        self._own_credential: DefaultAzureCredential | None = None  # made here: closed with the vault
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = self._own_credential = DefaultAzureCredential()
        loopback = is_loopback_host(urlsplit(self.url).hostname or "")
        self._client = SecretClient(self.url, credential, verify_challenge_resource=not loopback, **options)

    def store(self, name: str, value: str, *, content_type: str, tags: dict[str, str] | None = None) -> SecretRef:
        """Store value as a new version of name; return its reference."""
        stored = self._set(name, value, content_type=content_type, tags=tags)
        return SecretRef(name=stored.name or name, version=stored.properties.version or "")

    def _set(self, name: str, value: str, *, content_type: str, tags: dict[str, str] | None) -> KeyVaultSecret:
        check_secret_name(name)
        if not isinstance(value, str):
            raise ValueError(f"secret {name}: the value must be a string")
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(
                f"secret {name}: the value is {len(value)} characters; Key Vault allows at most "
                f"{MAX_VALUE_CHARS} (25 KB)"
            )
        all_tags = {**_check_tags(tags), ORDER_TAG: str(time.time_ns())}
        try:
            stored = self._client.set_secret(name, value, content_type=content_type, tags=all_tags)
        except (AzureError, ValueError) as err:
            raise self._failure(name, None, err) from None
        return stored

    def read(self, name: str, version: str | None = None) -> Secret:
        """The value of name at version (the latest version when None)."""
        check_secret_name(name)
        if version is not None and not VERSION_RULE.match(version):
            raise ValueError(f"secret {name}: invalid version {version[:40]!r} (32 hexadecimal characters)")
        try:
            got = self._client.get_secret(name, version)
        except (AzureError, ValueError) as err:
            raise self._failure(name, version, err) from None
        ref = SecretRef(name=got.name or name, version=got.properties.version or "")
        return Secret(
            ref=ref,
            value=got.value or "",
            content_type=got.properties.content_type,
            tags=_public_tags(got.properties.tags),
        )

    def read_ref(self, ref: SecretRef) -> Secret:
        return self.read(ref.name, ref.version)

    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of name, newest first by creation time (the service lists them in no useful order).

        An unknown name has no versions.
        """
        check_secret_name(name)
        try:
            found = list(self._client.list_properties_of_secret_versions(name))
        except ResourceNotFoundError:
            return []
        except (AzureError, ValueError) as err:
            raise self._failure(name, None, err) from None
        return _newest_first(found)

    def probe_write(self, *, tags: dict[str, str], wait_seconds: float = 30.0) -> ProbeResult:
        """Prove that this identity may store a secret version, without touching any secret the app uses.

        Stores a one-off secret named PROBE_PREFIX + a random suffix (its value says what it is; nothing
        secret), then deletes it and, where the vault allows purging (purge_after_delete), purges it once the
        deletion is done. A vault with purge protection keeps the deleted probe until its retention ends (a
        bounded number: one per probe within the retention period); a live name is never reused or
        re-versioned. Raises KeyVaultError when the write fails; a failed clean-up is only reported.
        """
        name = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        stored = self._set(
            name,
            "vfxtdr preflight write probe: holds nothing secret, safe to delete",
            content_type=PROBE_CONTENT_TYPE,
            tags={**tags, "purpose": "preflight-probe"},
        )
        level = _text(stored.properties.recovery_level)
        try:
            poller = self._client.begin_delete_secret(name)
            if not purge_after_delete(level):
                return ProbeResult(name, level)
            poller.wait(timeout=wait_seconds)
            if not poller.done():
                return ProbeResult(
                    name,
                    level,
                    left=f"still being deleted after {wait_seconds:g}s, so not purged "
                    "(the vault purges it when its retention ends)",
                )
            self._client.purge_deleted_secret(name)
        except (AzureError, ValueError) as err:
            failure = self._failure(name, None, err)
            return ProbeResult(
                name,
                level,
                left=f"could not be cleaned up ({failure.problem}); it holds nothing secret and may be deleted by hand",
            )
        return ProbeResult(name, level, purged=True)

    def _failure(self, name: str, version: str | None, err: Exception) -> KeyVaultError:
        """A typed error from an SDK exception; only the service's error code and message are kept."""
        if isinstance(err, ValueError):  # raised by the SDK itself, e.g. its challenge-resource check
            kind = KeyVaultAccessError if "challenge" in str(err) else KeyVaultError
            return kind(name, f"the SDK refused the request: {str(err)[:300]}", version=version)
        if isinstance(err, ClientAuthenticationError) and err.status_code is None:
            first_line = str(err.message or err).splitlines()[0][:300]
            return KeyVaultAccessError(name, f"could not get a token for {self.url}: {first_line}", version=version)
        if isinstance(err, ServiceRequestError):
            return KeyVaultUnavailable(name, f"cannot reach {self.url}: {str(err.message)[:300]}", version=version)
        if not isinstance(err, HttpResponseError):
            return KeyVaultError(name, f"{type(err).__name__}: {str(err)[:300]}", version=version)
        status = err.status_code
        code = err.error.code if err.error else None
        inner = (getattr(err.error, "innererror", None) or {}).get("code") if err.error else None
        message = (err.error.message if err.error else None) or err.reason or "no message"
        detail = f"HTTP {status} {code or ''}: {str(message)[:300]}".replace("  ", " ")
        kinds: list[tuple[bool, type[KeyVaultError]]] = [
            (isinstance(err, ResourceNotFoundError), SecretNotFound),
            (inner == "SecretDisabled", SecretDisabled),
            (isinstance(err, ResourceExistsError), SecretConflict),
            (status in (401, 403), KeyVaultAccessError),
        ]
        kind = next((k for hit, k in kinds if hit), KeyVaultError)
        return kind(name, detail, version=version, status=status, code=inner or code)

    def close(self) -> None:
        self._client.close()
        if self._own_credential is not None:
            self._own_credential.close()

    def __enter__(self) -> KeyVault:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
