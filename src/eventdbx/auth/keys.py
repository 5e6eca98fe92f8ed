"""Ed25519 signing keys: generation, key ids and loaded key objects (DER text lives in keytext.py); no config I/O."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from eventdbx.auth.keytext import (
    check_key_pair,
    decode_private,
    encode_private_v2,
)
from eventdbx.errors import ConfigError

if TYPE_CHECKING:
    from eventdbx.auth.jws import SignatureCache
    from eventdbx.config import AuthSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyMaterial:
    """The three `[auth]` key values as stored in config.toml."""

    private_key: str
    public_key: str
    key_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKeys:
    """Loaded Ed25519 keys (cryptography objects) and the key id used as JWT `kid`."""

    private: Any  # Ed25519PrivateKey
    public: Any  # Ed25519PublicKey
    public_raw: bytes
    key_id: str
    verified: SignatureCache = field(default_factory=lambda: _signature_cache(), compare=False, repr=False)


def _signature_cache() -> SignatureCache:
    from eventdbx.auth.jws import SignatureCache  # lazy: config loading imports this module

    return SignatureCache()


def key_id_for(unix_seconds: float) -> str:
    """`key-YYYYmmddHHMMSS` in UTC."""
    import time

    return "key-" + time.strftime("%Y%m%d%H%M%S", time.gmtime(unix_seconds))


def generate_keys(unix_seconds: float) -> KeyMaterial:
    """A fresh Ed25519 pair in config.toml form."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return KeyMaterial(
        private_key=base64.b64encode(encode_private_v2(seed, public)).decode("ascii"),
        public_key=base64.b64encode(public).decode("ascii"),
        key_id=key_id_for(unix_seconds),
    )


def signing_keys(auth: AuthSettings) -> SigningKeys:
    """Load the Ed25519 objects for `[auth]` (cached per key text); checks the pair by derivation."""
    return _load_keys(auth.private_key, auth.public_key, auth.key_id)


@lru_cache(maxsize=8)
def _load_keys(private_key: str, public_key: str, key_id: str) -> SigningKeys:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not private_key:
        raise ConfigError("missing [auth] signing keys")
    check_key_pair(private_key, public_key, derive=True)
    seed, _ = decode_private(base64.b64decode(private_key.strip()))
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public_raw = base64.b64decode(public_key.strip())
    return SigningKeys(private=private, public=private.public_key(), public_raw=public_raw, key_id=key_id)
