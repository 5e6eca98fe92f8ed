"""Ed25519 key text of auth.md §2 (PKCS#8 v1/v2 DER in base64) and the pair check; imports only binascii.

Config loading uses this module, so it must stay light (cryptography only when a v1 key needs deriving).
"""

from __future__ import annotations

import binascii
from pathlib import Path

from eventdbx.errors import ConfigError

V2_PREFIX = bytes.fromhex("3053020101300506032b657004220420")
V2_MIDDLE = bytes.fromhex("a123032100")
V1_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
MISMATCH = "jwt public key does not match private key"


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


def _decode(value: str, key: str, path: Path | None) -> bytes:
    try:
        return binascii.a2b_base64(value.strip(), strict_mode=True)
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
