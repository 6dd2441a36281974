"""The one Key Vault secret per key rotation: its name for a filer, and the JSON value it holds."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

CONTENT_TYPE = "application/vnd.vfxtdr.avere-key+json"
# Key Vault's limit on a secret value; the recovery file inside grows with every rotation.
VALUE_LIMIT = 25 * 1024
WARN_FRACTION = 0.8
_NAME_MAX = 127
_UNSAFE = re.compile(r"[^0-9a-zA-Z-]+")


def key_secret_name(cluster: str, filer: str) -> str:
    """`avere-key-<cluster>-<filer>`, made to obey Key Vault's name rule ^[0-9a-zA-Z-]{1,127}$.

    Characters outside the rule become '-'; when that changed anything (or the name is too long) a short
    hash of the real names keeps two different filers from sharing one secret.
    """
    base = f"avere-key-{cluster}-{filer}"
    safe = _UNSAFE.sub("-", base).strip("-")
    if safe == base and len(safe) <= _NAME_MAX:
        return safe
    digest = hashlib.sha256(f"{cluster}\0{filer}".encode()).hexdigest()[:10]
    return f"{safe[: _NAME_MAX - 11]}-{digest}"


@dataclass(frozen=True)
class KeySecret:
    """What one rotation stores: enough to re-add the container anywhere. Never in Durable payloads."""

    passphrase: str = field(repr=False)
    recovery_file: str = field(repr=False)
    key_id: str
    signature: str
    cluster: str
    filer: str

    def dumps(self) -> str:
        return json.dumps(
            {
                "passphrase": self.passphrase,
                "recovery_file": self.recovery_file,
                "key_id": self.key_id,
                "signature": self.signature,
                "cluster": self.cluster,
                "filer": self.filer,
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, value: str) -> KeySecret:
        try:
            data = json.loads(value)
            return cls(
                **{k: str(data[k]) for k in ("passphrase", "recovery_file", "key_id", "signature", "cluster", "filer")}
            )
        except (ValueError, KeyError, TypeError) as err:
            # Deliberately no detail from the value: it is secret.
            raise ValueError(f"the key secret is not a {CONTENT_TYPE} value ({type(err).__name__})") from None

    def tags(self) -> dict[str, str]:
        return {"cluster": self.cluster, "filer": self.filer, "key_id": self.key_id}

    def near_limit(self) -> bool:
        return len(self.dumps().encode()) > WARN_FRACTION * VALUE_LIMIT
