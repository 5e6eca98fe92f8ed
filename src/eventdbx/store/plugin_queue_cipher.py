"""Envelope encryption at rest for plugin_queue.db (plugins.md §2): `ENCv1:` + base64(nonce ‖ ciphertext ‖ tag).

AES-256-GCM with a random 12-byte nonce and no AAD, keyed by `data_encryption_key` (base64 of 32 bytes), as in
data-model.md §15. Values without the prefix are plaintext (written before a key was set).
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventdbx.errors import ConfigError

PREFIX = "ENCv1:"
NO_KEY = "data encryption key must be configured to read encrypted events"
WRONG_KEY = "data encryption key does not match this data directory"


@lru_cache(maxsize=4)
def _aes(dek: str) -> AESGCM:
    try:
        key = base64.b64decode(dek, validate=True)
        return AESGCM(key)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("data_encryption_key must be base64 of 32 bytes") from exc


def seal(text: str, dek: str | None) -> str:
    """Encrypt `text` when a key is set; plaintext otherwise."""
    if not dek:
        return text
    nonce = os.urandom(12)
    return PREFIX + base64.b64encode(nonce + _aes(dek).encrypt(nonce, text.encode(), None)).decode("ascii")


def unseal(value: str, dek: str | None) -> str:
    """Decrypt a sealed value (plaintext passes through)."""
    if not value.startswith(PREFIX):
        return value
    if not dek:
        raise ConfigError(NO_KEY)
    try:
        raw = base64.b64decode(value[len(PREFIX):], validate=True)
        return _aes(dek).decrypt(raw[:12], raw[12:], None).decode()
    except (InvalidTag, binascii.Error, ValueError):
        raise ConfigError(WRONG_KEY) from None
