"""Validation plumbing for the DR plan: a problem collector, typed field readers and Azure naming rules."""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from shared.core.netutil import is_loopback_host

SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_REGION = re.compile(r"^[a-z][a-z0-9]{1,39}$")
# Cluster and filer names end up in instance ids and in "cluster/filer" keys: no slashes or spaces.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_VAULT_SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net")
_VAULT_NAME = re.compile(r"^[a-zA-Z](?:[a-zA-Z0-9]|-(?=[a-zA-Z0-9])){2,23}$")
_BLOB_SUFFIXES = (".blob.core.windows.net", ".blob.core.chinacloudapi.cn", ".blob.core.usgovcloudapi.net")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan: where (`filers[1].backup.account`), what, and which rule."""

    path: str
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PlanError(ValueError):
    """A plan that cannot be used; `.problems` lists every problem as "path: problem"."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.details: tuple[Problem, ...] = tuple(problems)
        self.problems: tuple[str, ...] = tuple(str(p) for p in self.details)
        count = len(self.problems)
        super().__init__(
            f"invalid DR plan ({count} problem{'s' if count != 1 else ''}):\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )


class Problems:
    """Collects problems so validation can report all of them at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, message: str, rule: str) -> None:
        self.items.append(Problem(path, message, rule))

    def raise_if_any(self) -> None:
        if self.items:
            raise PlanError(self.items)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _PLAIN_KEY.fullmatch(key):  # an empty or odd key ("", "a.b", a newline) still names one place
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


REQUIRED: Any = object()  # default= value meaning "no default: report it missing"
Check = Callable[[str], str | None]


class Obj:
    """Reads one JSON object of the plan; every read records its own problems and unknown keys are errors."""

    def __init__(self, data: Any, path: str, problems: Problems, allowed: Iterable[str]) -> None:
        self.path = path
        self.problems = problems
        self.ok = isinstance(data, dict)
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        allowed = tuple(allowed)
        if not self.ok:
            problems.add(path or "plan", f"must be a JSON object, got {_kind(data)}", "type")
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
                problems.add(join(path, str(key)), f"unknown key{hint}", "unknown-key")

    def at(self, key: str) -> str:
        return join(self.path, key)

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is REQUIRED:
            if self.ok:
                self.problems.add(self.at(key), "required", "required")
            return REQUIRED
        return default

    def text(self, key: str, check: Check | None = None, *, default: Any = REQUIRED, rule: str = "value") -> str | None:
        value = self._get(key, default)
        if value is REQUIRED or (value is None and default is None):  # null: an optional field left empty
            return None
        if not isinstance(value, str):
            self.problems.add(self.at(key), f"must be a string, got {_kind(value)}", "type")
            return None
        problem = check(value) if check else None
        if problem:
            self.problems.add(self.at(key), problem, rule)
            return None
        return value

    def integer(
        self, key: str, low: int, high: int | None = None, *, default: Any = REQUIRED, message: str | None = None
    ) -> int | None:
        value = self._get(key, default)
        if value is REQUIRED:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(self.at(key), f"must be an integer, got {_kind(value)}", "type")
            return None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problems.add(self.at(key), message or f"must be {bounds}, got {value}", "range")
            return None
        return value

    def number(
        self,
        key: str,
        *,
        above: float | None = None,
        low: float | None = None,
        high: float | None = None,
        default: Any = REQUIRED,
    ) -> float | None:
        value = self._get(key, default)
        if value is REQUIRED:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.add(self.at(key), f"must be a number, got {_kind(value)}", "type")
            return None
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            value = math.inf
        if not math.isfinite(value):  # Python's json reads NaN and Infinity; no setting means either
            self.problems.add(self.at(key), "must be a finite number", "range")
            return None
        bad = (
            (above is not None and value <= above)
            or (low is not None and value < low)
            or (high is not None and value > high)
        )
        if bad:
            parts = [
                f"greater than {above:g}" if above is not None else "",
                f"at least {low:g}" if low is not None else "",
                f"at most {high:g}" if high is not None else "",
            ]
            self.problems.add(self.at(key), f"must be {' and '.join(p for p in parts if p)}, got {value:g}", "range")
            return None
        return float(value)

    def flag(self, key: str, *, default: Any = REQUIRED) -> bool | None:
        value = self._get(key, default)
        if value is REQUIRED:
            return None
        if not isinstance(value, bool):
            self.problems.add(self.at(key), f"must be true or false, got {_kind(value)}", "type")
            return None
        return value

    def obj(self, key: str, allowed: Iterable[str], *, required: bool = True) -> Obj | None:
        value = self._get(key, REQUIRED if required else None)
        if value is REQUIRED or (value is None and not required):
            return None
        return Obj(value, self.at(key), self.problems, allowed)  # null where an object is required: a problem

    def items(self, key: str, *, default: Any = REQUIRED) -> Iterator[tuple[str, Any]]:
        value = self._get(key, default)
        if value is REQUIRED:
            return
        if not isinstance(value, list):
            self.problems.add(self.at(key), f"must be a JSON array, got {_kind(value)}", "type")
            return
        for index, item in enumerate(value):
            yield join(self.at(key), index), item


def _kind(value: Any) -> str:
    """A value's JSON type, never the value itself (it might be a pasted secret)."""
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# Checks return a problem description, or None when the value is fine. None of them echo the value.


def secret_name(value: str) -> str | None:
    if SECRET_NAME.fullmatch(value):
        return None
    return (
        "must be a Key Vault secret *name*: 1-127 letters, digits and hyphens "
        "(the plan holds secret names, never secret values)"
    )


def account_name(value: str) -> str | None:
    if _ACCOUNT.fullmatch(value):
        return None
    return "must be a storage account name: 3-24 lowercase letters and digits"


def container_name(value: str) -> str | None:
    if _CONTAINER.fullmatch(value) and len(value) <= 63:
        return None
    return (
        "must be a container name: 3-63 lowercase letters, digits and single hyphens, "
        "starting and ending with a letter or digit"
    )


def region(value: str) -> str | None:
    if _REGION.fullmatch(value):
        return None
    return "must be an Azure region name such as westus2 (lowercase, no spaces)"


def object_name(value: str) -> str | None:
    return (
        None
        if _NAME.fullmatch(value)
        else ("must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    )


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.rstrip(".").split(".")
        return bool(host) and len(host) <= 253 and all(_HOST_LABEL.match(p) for p in labels)


def host_port(value: str) -> str | None:
    """A management address: host, host:port or [v6]:port."""
    host, port = value, ""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "must be host, host:port or [IPv6]:port"
        port = rest[1:]
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    if not _valid_host(host):
        return "must be an IP address or host name, optionally with :port"
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return "port must be a number from 1 to 65535"
    return None


def rpc_path(value: str) -> str | None:
    if value.startswith("/") and "?" not in value and "#" not in value and " " not in value:
        return None
    return "must be an absolute URL path such as /cgi-bin/rpc2.py"


def _split(value: str) -> SplitResult | None:
    """urlsplit, or None for what it refuses (an unclosed IPv6 bracket, characters NFKC turns into '/')."""
    try:
        return urlsplit(value)
    except ValueError:
        return None


def blob_endpoint(value: str) -> str | None:
    """The account's blob service URL: https://<account>.blob.core.windows.net or, on loopback, path style."""
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL such as https://<account>.blob.core.windows.net"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, fragment or credentials (the plan holds no SAS tokens or keys)"
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        return "must use https (plain http is accepted only for a loopback emulator)"
    return None


def endpoint_account(endpoint: str, account: str) -> str | None:
    """Whether a blob endpoint addresses this account (host label in Azure, path segment on loopback)."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    path = parts.path.rstrip("/")
    if host.endswith(_BLOB_SUFFIXES):
        named = host.split(".", 1)[0]
        if named != account:
            return f"names account {named!r} but account is {account!r}"
        if path:
            return "must be the account's endpoint with no path"
    elif is_loopback_host(host) and path != f"/{account}":
        return f"must be path style on an emulator: {parts.scheme}://{parts.netloc}/{account}"
    return None


def keyvault_url(value: str) -> str | None:
    parts = _split(value)
    host = ((parts.hostname if parts else None) or "").lower()
    if parts is None or parts.scheme != "https" or not host:
        return "must be an https URL such as https://<vault-name>.vault.azure.net"
    if parts.query or parts.fragment or parts.username or parts.password or parts.path.strip("/"):
        return "must be the vault's root URL, with no path or query"
    if is_loopback_host(host):
        return None
    for suffix in _VAULT_SUFFIXES:
        if host.endswith(suffix):
            name = host[: -len(suffix)]
            if _VAULT_NAME.fullmatch(name):
                return None
            return "vault name must be 3-24 letters, digits and single hyphens, starting with a letter"
    return f"must be a Key Vault URL (https://<name>{_VAULT_SUFFIXES[0]}) or a loopback stand-in"


def fingerprint(value: str) -> str | None:
    digits = value.replace(":", "")
    if len(digits) == 64 and all(c in "0123456789abcdefABCDEF" for c in digits):
        return None
    return "must be a SHA-256 certificate fingerprint: 64 hex digits, colons optional"


def normal_fingerprint(value: str) -> str:
    """Upper-case colon-separated, the form `openssl x509 -fingerprint -sha256` prints."""
    digits = value.replace(":", "").upper()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
