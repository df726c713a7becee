"""Secrets at rest: a value the service must read back in clear (a partner's signing secret, a
webhook's secret) is stored sealed with AES-256-GCM under a key kept outside the database
(FEDELTA_<NAME>_SECRETS_KEY), so a copy of the database alone opens nothing.

A sealed value is `v1:<key id>:<nonce>:<ciphertext>` (nonce and ciphertext in unpadded
URL-safe base64; the key id is the first 8 hex digits of the key's SHA-256, never the key).
The caller's `context` (its table and the row's id) is the associated data: a sealed value
copied to another row, or another table, does not open. Rotation: a new key becomes the current
one, the old one goes into the previous keys, which still open what they sealed; values are
sealed again with the current key (`Keyring.needs_resealing`) and then the old key is dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealingError(ValueError):
    """A sealed value that does not open: tampered, another row's, or sealed with a key this
    keyring does not hold. Its message names the key id at most, never a secret."""


@dataclass(frozen=True)
class SealingKey:
    key_id: str
    material: bytes = field(repr=False)

    @classmethod
    def from_bytes(cls, material: bytes) -> SealingKey:
        if len(material) != KEY_BYTES:
            raise ValueError(f"a secrets key is {KEY_BYTES} bytes, not {len(material)}")
        return cls(hashlib.sha256(material).hexdigest()[:8], material)

    @classmethod
    def parse(cls, text: str) -> SealingKey:
        """A key as configured: base64 (standard or URL-safe, padded or not) of 32 bytes."""
        cleaned = text.strip()
        try:
            material = base64.urlsafe_b64decode(
                cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4)
            )
        except (binascii.Error, ValueError):
            raise ValueError("a secrets key must be base64 of 32 random bytes") from None
        if len(material) != KEY_BYTES or _b64(material) != _b64_of(cleaned):
            raise ValueError("a secrets key must be base64 of 32 random bytes")
        return cls.from_bytes(material)

    @classmethod
    def generate(cls) -> SealingKey:
        return cls.from_bytes(os.urandom(KEY_BYTES))

    def encoded(self) -> str:
        """What a setting holds: standard base64, padded."""
        return base64.b64encode(self.material).decode()


def seal(plaintext: str, key: SealingKey, context: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key.material).encrypt(nonce, plaintext.encode(), context.encode())
    return ":".join((VERSION, key.key_id, _b64(nonce), _b64(ciphertext)))


def unseal(sealed: str, keys: Iterable[SealingKey], context: str) -> str:
    parts = sealed.split(":")
    if len(parts) != 4 or parts[0] != VERSION:
        raise SealingError("not a sealed value (expected v1:<key id>:<nonce>:<ciphertext>)")
    _, key_id, nonce, ciphertext = parts
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        raise SealingError(f"sealed with key {key_id!r}, which is not configured")
    try:
        opened = AESGCM(key.material).decrypt(_unb64(nonce), _unb64(ciphertext), context.encode())
    except (InvalidTag, ValueError):
        raise SealingError(f"sealed value does not open with key {key_id!r} here") from None
    return opened.decode()


def is_sealed(value: str) -> bool:
    return value.startswith(f"{VERSION}:") and value.count(":") == 3


@dataclass(frozen=True)
class Keyring:
    """The current key (seals) and the previous ones (still open what they sealed)."""

    current: SealingKey
    previous: tuple[SealingKey, ...] = ()

    @classmethod
    def parse(cls, current: str, previous: str | None = None) -> Keyring:
        """From the settings: the current key, and previous keys separated by commas."""
        older = tuple(SealingKey.parse(k) for k in (previous or "").split(",") if k.strip())
        return cls(SealingKey.parse(current), older)

    def seal(self, plaintext: str, context: str) -> str:
        return seal(plaintext, self.current, context)

    def unseal(self, sealed: str, context: str) -> str:
        return unseal(sealed, (self.current, *self.previous), context)

    def needs_resealing(self, sealed: str) -> bool:
        """Sealed with another key than the current one (or not sealed at all)."""
        return not is_sealed(sealed) or sealed.split(":")[1] != self.current.key_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_of(text: str) -> str:
    """The canonical unpadded URL-safe form of base64 text in either alphabet."""
    return text.replace("+", "-").replace("/", "_").rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealingError("sealed value is not base64") from None


def keyring_from_environment(environ: Mapping[str, str], prefix: str) -> Keyring | None:
    """`<prefix>SECRETS_KEY` and `<prefix>SECRETS_KEY_PREVIOUS` as the settings read them
    (for a migration, which runs without the service's settings); None when unset."""
    current = environ.get(f"{prefix}SECRETS_KEY", "").strip()
    if not current:
        return None
    return Keyring.parse(current, environ.get(f"{prefix}SECRETS_KEY_PREVIOUS"))
