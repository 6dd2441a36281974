"""How production code reaches a storage account: clients with throttling-aware retries, read-only SAS."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from azure.core.credentials import TokenCredential
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_container_sas,
)
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from shared.azure.retry import AsyncStorageRetry, RetrySettings, StorageRetry
from shared.core.clock import utc_now
from shared.core.netutil import is_loopback_host

__all__ = [
    "MAX_SAS_LIFETIME",
    "SAS_CLOCK_SKEW",
    "RetrySettings",
    "SasToken",
    "StorageAccount",
    "StorageConfigError",
    "account_name_from_endpoint",
    "container_read_sas",
    "parse_connection_string",
    "sas_protocol",
    "split_container_url",
]

# A user-delegation key lives at most 7 days, so no copy may be allowed to stay pending longer than that.
MAX_SAS_LIFETIME = timedelta(days=7)
# A SAS (and its user-delegation key) is valid from this long before it is made, as the storage service's
# clock may run a little behind ours; it ends exactly its lifetime after it is made.
SAS_CLOCK_SKEW = timedelta(minutes=5)


class StorageConfigError(ValueError):
    """An account description that cannot work (bad endpoint, missing permission, unusable auth)."""


def sas_protocol(blob_endpoint: str) -> str:
    """The `spr` of every SAS this app makes: https only, except for a loopback http endpoint (the local
    stack's Azurite), which gets "https,http". A SAS for any other http endpoint is refused."""
    parts = urlsplit(blob_endpoint)
    if parts.scheme == "https":
        return "https"
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return "https,http"
    raise StorageConfigError(
        f"blob endpoint {parts.scheme}://{parts.netloc}: a SAS travels over https only "
        "(plain http is allowed for a loopback emulator alone)"
    )


def container_read_sas(
    account: str,
    container: str,
    blob_endpoint: str,
    *,
    start: datetime,
    expiry: datetime,
    listing: bool = False,
    account_key: str | None = None,
    delegation_key: UserDelegationKey | None = None,
) -> str:
    """A service SAS on exactly one container (`sr=c`) that reads blobs (`sp=r`; `rl` only when listing is
    asked for), over https (sas_protocol), valid from start to expiry. Signed with a user-delegation key, or
    with the account key when that is how the plan reaches the account. Pure: no request is made."""
    if not container:
        raise StorageConfigError(f"account {account!r}: a SAS names one container, and none was given")
    if (account_key is None) == (delegation_key is None):
        raise StorageConfigError(
            f"account {account!r}: a SAS is signed with an account key or a user-delegation key, exactly one"
        )
    if expiry <= start:
        raise StorageConfigError(f"account {account!r}: a SAS must end after it starts")
    permission = ContainerSasPermissions(read=True, list=listing)
    return generate_container_sas(
        account,
        container,
        account_key=account_key,
        user_delegation_key=delegation_key,
        permission=permission,
        start=start,
        expiry=expiry,
        protocol=sas_protocol(blob_endpoint),
    )


@dataclass(frozen=True)
class SasToken:
    """A SAS given by an operator (CLI container URLs); never shown in repr or logs."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", self.token.lstrip("?"))

    def permissions(self) -> str:
        return parse_qs(self.token).get("sp", [""])[0]

    def __repr__(self) -> str:
        return "SasToken(<redacted>)"


class _AsyncCredential:
    """Lets a sync TokenCredential (DefaultAzureCredential) serve aio clients without blocking the loop."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._credential.get_token, *scopes, **kwargs)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> _AsyncCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def _is_async_credential(credential: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(credential, "get_token", None))


class StorageAccount:
    """One storage account as production code reaches it: name, blob endpoint, and how to authenticate.

    auth is an account key (str: the local stack, or plan storage_auth "key"), a TokenCredential (managed
    identity in Azure; sync or async), or a SasToken (operator-supplied container URLs).
    """

    def __init__(
        self,
        name: str,
        blob_endpoint: str,
        auth: str | TokenCredential | SasToken | Any,
        *,
        retry: RetrySettings | None = None,
        ca_file: str | None = None,
        api_version: str | None = None,
    ) -> None:
        parts = urlsplit(blob_endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise StorageConfigError(f"blob endpoint of account {name!r}: an http(s) URL without query")
        if not name:
            raise StorageConfigError("account name is required")
        if auth is None or auth == "":
            raise StorageConfigError(f"account {name!r} has no credential")
        self.name = name
        self.blob_endpoint = blob_endpoint.rstrip("/")
        self._auth = auth
        self.retry = retry or RetrySettings()
        self.ca_file = ca_file
        self.api_version = api_version
        self._delegation: tuple[UserDelegationKey, datetime] | None = None

    def __repr__(self) -> str:
        return f"StorageAccount(name={self.name!r}, blob_endpoint={self.blob_endpoint!r}, auth={self.auth_kind})"

    @property
    def auth_kind(self) -> str:
        if isinstance(self._auth, str):
            return "key"
        if isinstance(self._auth, SasToken):
            return "sas"
        return "token"

    def sas_permissions(self) -> str | None:
        """The `sp` of an operator-supplied SAS (None for key or token auth)."""
        return self._auth.permissions() if isinstance(self._auth, SasToken) else None

    def with_retry(self, retry: RetrySettings) -> StorageAccount:
        return StorageAccount(
            self.name, self.blob_endpoint, self._auth, retry=retry, ca_file=self.ca_file, api_version=self.api_version
        )

    # --- URLs -------------------------------------------------------------------------------------------
    def container_url(self, container: str) -> str:
        return f"{self.blob_endpoint}/{quote(container, safe='')}"

    def blob_url(self, container: str, name: str) -> str:
        """The blob's URL with its name percent-encoded as the SDK does (spaces, %, #, ?, unicode)."""
        return f"{self.container_url(container)}/{quote(name, safe='~/')}"

    # --- clients ----------------------------------------------------------------------------------------
    def _credential(self, for_async: bool) -> Any:
        auth = self._auth
        if isinstance(auth, str):
            return {"account_name": self.name, "account_key": auth}
        if isinstance(auth, SasToken):
            return None
        if for_async and not _is_async_credential(auth):
            return _AsyncCredential(auth)
        if not for_async and _is_async_credential(auth):
            raise StorageConfigError(f"account {self.name!r}: an async credential cannot serve a sync client")
        return auth

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "connection_timeout": self.retry.connection_timeout,
            "read_timeout": self.retry.read_timeout,
        }
        if self.api_version:
            kwargs["api_version"] = self.api_version
        if self.ca_file:
            kwargs["connection_verify"] = self.ca_file
        return kwargs

    def _account_url(self) -> str:
        if isinstance(self._auth, SasToken):
            return f"{self.blob_endpoint}?{self._auth.token}"
        return self.blob_endpoint

    def service_client(self) -> BlobServiceClient:
        return BlobServiceClient(
            self._account_url(),
            credential=self._credential(False),
            retry_policy=StorageRetry(self.retry),
            **self._client_kwargs(),
        )

    def async_service_client(self, max_connections: int = 100) -> AsyncBlobServiceClient:
        """An aio client whose connection pool fits max_connections requests in flight."""
        import aiohttp

        from azure.core.pipeline.transport import AioHttpTransport

        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections, ssl=self._ssl_context())
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)
        transport = AioHttpTransport(session=session, session_owner=True)
        return AsyncBlobServiceClient(
            self._account_url(),
            credential=self._credential(True),
            retry_policy=AsyncStorageRetry(self.retry),
            transport=transport,
            **self._client_kwargs(),
        )

    def _ssl_context(self) -> Any:
        """TLS trust of the aio client: ca_file, else the system's, read now. aiohttp's own default context is
        made once at import, so a trust store named later (SSL_CERT_FILE, as the sync clients honour
        REQUESTS_CA_BUNDLE per request) would be ignored."""
        import ssl

        return ssl.create_default_context(cafile=self.ca_file)

    # --- SAS ----------------------------------------------------------------------------------------------
    @staticmethod
    def sas_lifetime(pending_limit_seconds: float, margin_seconds: float) -> timedelta:
        """How long a copy source SAS must live: a copy may stay pending up to the limit, plus a margin."""
        lifetime = timedelta(seconds=pending_limit_seconds + margin_seconds)
        if pending_limit_seconds <= 0 or margin_seconds < 0:
            raise StorageConfigError("pending limit must be > 0 and the SAS margin >= 0")
        if lifetime > MAX_SAS_LIFETIME:
            raise StorageConfigError(f"pending limit + margin ({lifetime}) exceeds the 7-day SAS/key limit")
        return lifetime

    def _check_sas_token(self, listing: bool) -> str:
        assert isinstance(self._auth, SasToken)
        needed = {"r": "read (r)", "l": "list (l)"} if listing else {"r": "read (r)"}
        missing = [name for letter, name in needed.items() if letter not in self._auth.permissions()]
        if missing:
            raise StorageConfigError(
                f"the SAS given for account {self.name!r} lacks {' and '.join(missing)} permission"
            )
        return self._auth.token

    def _window(self, lifetime: timedelta, now: datetime | None) -> tuple[datetime, datetime]:
        if lifetime <= timedelta(0) or lifetime > MAX_SAS_LIFETIME:
            raise StorageConfigError(f"a SAS lifetime must be > 0 and at most 7 days, not {lifetime}")
        now = now or utc_now()
        return now - SAS_CLOCK_SKEW, now + lifetime

    def read_sas(
        self, container: str, lifetime: timedelta, now: datetime | None = None, *, listing: bool = False
    ) -> str:
        """A read-only SAS on one container that ends `lifetime` from now (see container_read_sas): signed
        with a user-delegation key when the account is reached with a token credential (the managed
        identity), with the account key only when the plan's storage_auth is "key"."""
        start, expiry = self._window(lifetime, now)
        signed = self._sas_without_delegation(container, start, expiry, listing)
        if signed is not None:
            return signed
        key = self._cached_delegation_key(expiry)
        if key is None:
            with self.service_client() as client:
                key = client.get_user_delegation_key(start, expiry)
            self._delegation = (key, expiry)
        return self._delegation_sas(container, start, expiry, key, listing)

    def _sas_without_delegation(self, container: str, start: datetime, expiry: datetime, listing: bool) -> str | None:
        """The SAS when no user-delegation key is needed (a given SAS token, or an account key)."""
        if isinstance(self._auth, SasToken):
            return self._check_sas_token(listing)
        if isinstance(self._auth, str):
            return container_read_sas(
                self.name,
                container,
                self.blob_endpoint,
                start=start,
                expiry=expiry,
                listing=listing,
                account_key=self._auth,
            )
        return None

    async def read_sas_async(
        self,
        client: AsyncBlobServiceClient,
        container: str,
        lifetime: timedelta,
        now: datetime | None = None,
        *,
        listing: bool = False,
    ) -> str:
        """As read_sas, using an open aio client of this account for the user-delegation key."""
        start, expiry = self._window(lifetime, now)
        signed = self._sas_without_delegation(container, start, expiry, listing)
        if signed is not None:
            return signed
        key = self._cached_delegation_key(expiry)
        if key is None:
            key = await client.get_user_delegation_key(start, expiry)
            self._delegation = (key, expiry)
        return self._delegation_sas(container, start, expiry, key, listing)

    def _cached_delegation_key(self, expiry: datetime) -> UserDelegationKey | None:
        # Reuse a key only for an identical expiry: a longer-lived key would stretch the SAS lifetime rule.
        if self._delegation and self._delegation[1] == expiry:
            return self._delegation[0]
        return None

    def _delegation_sas(
        self, container: str, start: datetime, expiry: datetime, key: UserDelegationKey, listing: bool
    ) -> str:
        return container_read_sas(
            self.name, container, self.blob_endpoint, start=start, expiry=expiry, listing=listing, delegation_key=key
        )

    # --- construction from operator input --------------------------------------------------------------
    @classmethod
    def from_connection_string(cls, conn: str, **kwargs: Any) -> StorageAccount:
        """Parse AccountName/AccountKey/BlobEndpoint (or protocol + suffix) from a connection string."""
        fields = parse_connection_string(conn)
        name = fields.get("accountname", "")
        key = fields.get("accountkey")
        sas = fields.get("sharedaccesssignature")
        endpoint = fields.get("blobendpoint")
        if not endpoint and name:
            proto = fields.get("defaultendpointsprotocol", "https")
            suffix = fields.get("endpointsuffix", "core.windows.net")
            endpoint = f"{proto}://{name}.blob.{suffix}"
        if not name and endpoint:
            name = account_name_from_endpoint(endpoint)
        if not endpoint or not name:
            raise StorageConfigError("connection string needs AccountName (or BlobEndpoint)")
        if key:
            return cls(name, endpoint, key, **kwargs)
        if sas:
            return cls(name, endpoint, SasToken(sas), **kwargs)
        raise StorageConfigError("connection string needs AccountKey or SharedAccessSignature")


def parse_connection_string(conn: str) -> dict[str, str]:
    """Key=value pairs separated by ';' (keys lower-cased); values may contain '='."""
    fields: dict[str, str] = {}
    for part in conn.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise StorageConfigError("connection string parts must be Key=Value")
        fields[key.strip().lower()] = value.strip()
    return fields


def account_name_from_endpoint(endpoint: str) -> str:
    """Account name from an endpoint: the first host label (Azure) or the first path segment (IP-style)."""
    parts = urlsplit(endpoint)
    path = parts.path.strip("/")
    host = parts.hostname or ""
    if path and (host.replace(".", "").isdigit() or host in ("localhost", "127.0.0.1") or ":" in host):
        return path.split("/")[0]
    return host.split(".")[0]


def split_container_url(url: str, **kwargs: Any) -> tuple[StorageAccount, str, str]:
    """`https://acct.blob.core.windows.net/container[/prefix]?<SAS>` -> (account, container, prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageConfigError("container URL must be http(s)://host/container?<SAS>")
    if not parts.query:
        raise StorageConfigError("container URL must carry a SAS (query string)")
    segments = [s for s in parts.path.split("/") if s]
    host = parts.hostname or ""
    ip_style = host.replace(".", "").isdigit() or host == "localhost"
    if ip_style:
        if len(segments) < 2:
            raise StorageConfigError("IP-style container URL must be http://host:port/account/container")
        name, container, rest = segments[0], segments[1], segments[2:]
        endpoint = f"{parts.scheme}://{parts.netloc}/{name}"
    else:
        if not segments:
            raise StorageConfigError("container URL names no container")
        name, container, rest = host.split(".")[0], segments[0], segments[1:]
        endpoint = f"{parts.scheme}://{parts.netloc}"
    from urllib.parse import unquote

    account = StorageAccount(name, endpoint, SasToken(parts.query), **kwargs)
    return account, unquote(container), unquote("/".join(rest))
