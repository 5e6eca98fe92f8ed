"""Ed25519 signing keys: generation, the PKCS#8 v1/v2 DER text of auth.md §2, key ids; no config I/O."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventdbx.auth.jws import SignatureCache
from eventdbx.errors import ConfigError

if TYPE_CHECKING:
    from eventdbx.config import AuthSettings

V2_PREFIX = bytes.fromhex("3053020101300506032b657004220420")
V2_MIDDLE = bytes.fromhex("a123032100")
V1_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
MISMATCH = "jwt public key does not match private key"


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
    verified: SignatureCache = field(default_factory=SignatureCache, compare=False, repr=False)


def encode_private_v2(seed: bytes, public: bytes) -> bytes:
    """PKCS#8 v2 DER (85 bytes): prefix ‖ seed ‖ `A1 23 03 21 00` ‖ public."""
    if len(seed) != 32 or len(public) != 32:
        raise ValueError("Ed25519 seed and public key must be 32 bytes")
    return V2_PREFIX + seed + V2_MIDDLE + public


def decode_private(der: bytes) -> tuple[bytes, bytes | None]:
    """(seed, embedded public key or None) from v2 (85 bytes) or v1 (48 bytes) DER."""
    if len(der) == 85 and der[:16] == V2_PREFIX and der[48:53] == V2_MIDDLE:
        return der[16:48], der[53:]
    if len(der) == 48 and der[:16] == V1_PREFIX:
        return der[16:], None
    raise ValueError("not an Ed25519 PKCS#8 v1/v2 key")


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


def _decode(value: str, key: str, path: Path | None) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid value for 'auth.{key}'{where}: expected base64") from None


def _derive_public(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_key_pair(private_key: str, public_key: str, *, path: Path | None = None, derive: bool = False) -> None:
    """Validate the stored pair; cheap for v2 (embedded public key) unless `derive` re-derives it from the seed."""
    if not private_key and not public_key:
        return
    where = f" in {path}" if path else ""
    try:
        seed, embedded = decode_private(_decode(private_key, "private_key", path))
    except ValueError:
        raise ConfigError(f"invalid value for 'auth.private_key'{where}: expected Ed25519 PKCS#8 DER") from None
    public = _decode(public_key, "public_key", path)
    if len(public) != 32:
        raise ConfigError(f"invalid value for 'auth.public_key'{where}: expected 32 bytes")
    if embedded is not None and embedded != public:
        raise ConfigError(MISMATCH)
    if (embedded is None or derive) and _derive_public(seed) != public:
        raise ConfigError(MISMATCH)


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
