"""Master keys and the key recovery file: every key of a filesystem, sealed with the admin's passphrase."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import textwrap
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

RECOVERY_FORMAT = "avere-sim-keys/1"
_MAGIC = b"Salted__"  # like `openssl enc -a`, so the file starts with U2FsdGVkX1 as the cluster's do
_SALT = 8
_NONCE = 12


class RecoveryError(ValueError):
    """Wrong passphrase, or not a recovery file (the text never repeats either)."""


@dataclass(frozen=True)
class RecoveryContents:
    fsid: str
    keys: dict[str, str] = field(repr=False)  # key id -> hex key, oldest first
    latest: str = ""


def new_key() -> tuple[str, str]:
    """A fresh AES-256 key: (key id, hex key)."""
    return secrets.token_hex(4), secrets.token_bytes(32).hex()


def _kdf(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(passphrase.encode())


def signature(recovery_file: str) -> str:
    """What generateMasterKey/masterKeyStatus report as the file's signature."""
    return hashlib.sha256(_decode(recovery_file)).hexdigest()[:40]


def _decode(recovery_file: str) -> bytes:
    try:
        return base64.b64decode("".join(recovery_file.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RecoveryError("the recovery file is not base64") from None


def seal(passphrase: str, contents: RecoveryContents) -> str:
    """The recovery file: base64 with a newline every 64 characters, like the cluster's."""
    salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
    plain = json.dumps(
        {"format": RECOVERY_FORMAT, "fsid": contents.fsid, "keys": contents.keys, "latest": contents.latest}
    ).encode()
    blob = _MAGIC + salt + nonce + AESGCM(_kdf(passphrase, salt)).encrypt(nonce, plain, _MAGIC)
    return "\n".join(textwrap.wrap(base64.b64encode(blob).decode(), 64)) + "\n"


def unseal(passphrase: str, recovery_file: str) -> RecoveryContents:
    blob = _decode(recovery_file)
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _SALT + _NONCE + 16:
        raise RecoveryError("not a key recovery file")
    salt = blob[len(_MAGIC) : len(_MAGIC) + _SALT]
    nonce = blob[len(_MAGIC) + _SALT : len(_MAGIC) + _SALT + _NONCE]
    try:
        plain = AESGCM(_kdf(passphrase, salt)).decrypt(nonce, blob[len(_MAGIC) + _SALT + _NONCE :], _MAGIC)
    except InvalidTag:
        raise RecoveryError("invalid passphrase or damaged recovery file") from None
    data = json.loads(plain)
    if data.get("format") != RECOVERY_FORMAT:
        raise RecoveryError("unknown recovery file format")
    return RecoveryContents(fsid=str(data["fsid"]), keys=dict(data["keys"]), latest=str(data["latest"]))


def same_file(a: str, b: str) -> bool:
    return "".join(a.split()) == "".join(b.split())
