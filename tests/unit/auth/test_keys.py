"""Ed25519 key text (auth.md §2): PKCS#8 v2 layout, v1 reading, key ids and pair checks."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from eventdbx.auth.keys import (
    check_key_pair,
    decode_private,
    encode_private_v2,
    generate_keys,
    key_id_for,
    signing_keys,
)
from eventdbx.config import AuthSettings
from eventdbx.errors import ConfigError


def test_generated_private_key_is_85_byte_v2_der() -> None:
    material = generate_keys(1761480000.0)
    der = base64.b64decode(material.private_key)
    assert len(der) == 85
    assert der[:16] == bytes.fromhex("3053020101300506032b657004220420")
    assert der[48:53] == bytes.fromhex("a123032100")
    public = base64.b64decode(material.public_key)
    assert len(public) == 32 and der[53:] == public
    # the seed derives the public key (the A1 23 wrapper is ring's layout, which OpenSSL does not parse)
    seed = der[16:48]
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert derived == public
    assert material.key_id == "key-20251026120000"


def test_v1_is_read_and_v2_matches_openssl_layout() -> None:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    v1 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    assert len(v1) == 48
    assert decode_private(v1) == (seed, None)
    assert decode_private(encode_private_v2(seed, public)) == (seed, public)
    check_key_pair(base64.b64encode(v1).decode(), base64.b64encode(public).decode())


def test_mismatch_message() -> None:
    a, b = generate_keys(0), generate_keys(0)
    with pytest.raises(ConfigError) as info:
        check_key_pair(a.private_key, b.public_key)
    assert str(info.value) == "configuration error: jwt public key does not match private key"
    # v1 pair mismatch is found by derivation
    key = Ed25519PrivateKey.generate()
    v1 = base64.b64encode(key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())).decode()
    with pytest.raises(ConfigError, match="does not match"):
        check_key_pair(v1, b.public_key)


def test_tampered_embedded_public_key_is_found_on_load() -> None:
    a, b = generate_keys(0), generate_keys(0)
    der = bytearray(base64.b64decode(a.private_key))
    der[53:] = base64.b64decode(b.public_key)
    forged = base64.b64encode(bytes(der)).decode()
    check_key_pair(forged, b.public_key)  # cheap check passes: embedded key agrees
    with pytest.raises(ConfigError, match="does not match"):
        signing_keys(AuthSettings(private_key=forged, public_key=b.public_key, key_id="k"))


def test_bad_base64_names_key() -> None:
    with pytest.raises(ConfigError, match="auth.private_key"):
        check_key_pair("***", "AAAA")


def test_key_id_format() -> None:
    assert key_id_for(0) == "key-19700101000000"
