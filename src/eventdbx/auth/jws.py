"""Compact JWS (EdDSA) encoding and parsing for auth.md §3, plus a small per-key cache of checked signatures."""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from eventdbx.errors import InvalidTokenError

T = TypeVar("T")

CACHE_SIZE = 512


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; InvalidTokenError when malformed."""
    if not text or any(c not in _URLSAFE for c in text):
        raise InvalidTokenError()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTokenError() from None


_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def compact_json(obj: Mapping[str, Any]) -> bytes:
    """JSON without spaces, keys in the given order."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_compact(header: Mapping[str, Any], claims: Mapping[str, Any], private_key: Any) -> str:
    """`b64(header).b64(claims).b64(Ed25519 signature)`."""
    signing_input = f"{b64url(compact_json(header))}.{b64url(compact_json(claims))}"
    signature: bytes = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """Header and claims of a syntactically valid EdDSA token (signature not yet checked)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except (ValueError, UnicodeDecodeError):
        raise InvalidTokenError() from None
    if not isinstance(value, dict):
        raise InvalidTokenError()
    return value


def parse_compact(token: str) -> ParsedToken:
    """Check 1 of auth.md §5: non-empty, three segments, base64url JSON objects, `alg` = EdDSA."""
    parts = token.split(".") if token else []
    if len(parts) != 3:
        raise InvalidTokenError()
    header, claims = _object(parts[0]), _object(parts[1])
    if header.get("alg") != "EdDSA":
        raise InvalidTokenError()
    signature = b64url_decode(parts[2])
    return ParsedToken(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


class SignatureCache:
    """LRU of token strings whose signature already verified under one public key (thread-safe).

    It holds whatever digest of the claims the verifier keeps (see `verify_signature`).
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> object | None:
        """The digest stored for a token whose signature was checked before."""
        with self._lock:
            hit = self._items.get(token)
            if hit is not None:
                self._items.move_to_end(token)
            return hit

    def put(self, token: str, parsed: object) -> None:
        """Remember a verified token."""
        with self._lock:
            self._items[token] = parsed
            self._items.move_to_end(token)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def verify_signature(
    token: str, public_key: Any, cache: SignatureCache, digest: Callable[[ParsedToken], T],
) -> T:
    """Checks 1–2: parse and verify the Ed25519 signature; returns (and caches per token) `digest(parsed)`."""
    hit = cache.get(token)
    if hit is not None:
        return hit  # type: ignore[return-value]  # one digest function per cache (tokens.py)
    parsed = parse_compact(token)
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(parsed.signature, parsed.signing_input)
    except InvalidSignature:
        raise InvalidTokenError() from None
    value = digest(parsed)
    cache.put(token, value)
    return value
