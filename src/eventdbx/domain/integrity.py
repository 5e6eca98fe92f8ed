"""Event hashes and Merkle roots (data-model.md §5), with an O(log n) frontier for appends. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _bundled_sha256() -> Callable[[bytes], Any]:
    """CPython's bundled C sha256 (hashlib's fallback), else hashlib's.

    Digests are identical either way. hashlib loads OpenSSL (~2.5 ms, a twentieth of a `dbx aggregate
    apply`), the bundled module ~0.2 ms; a process that keeps appending moves to OpenSSL's sha256, faster
    per call, after a few events (event_hash counts them).
    """
    for name in ("_sha2", "_sha256"):  # CPython >= 3.12, 3.11
        try:
            constructor: Callable[[bytes], Any] = __import__(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    from hashlib import sha256

    return sha256


_sha256 = _bundled_sha256()
_events_before_openssl = 32


def _switch_to_openssl() -> None:
    global _sha256
    from hashlib import sha256

    _sha256 = sha256


def event_hash(
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    event_type: str,
    payload_map: Mapping[str, str],
) -> str:
    """sha256(type ‖ id ‖ u64_be(version) ‖ event_type ‖ (key ‖ value)* in UTF-8 byte order of keys), hex."""
    global _events_before_openssl
    if _events_before_openssl:
        _events_before_openssl -= 1
        if not _events_before_openssl:
            _switch_to_openssl()
    parts = [
        aggregate_type.encode(),
        aggregate_id.encode(),
        version.to_bytes(8, "big"),
        event_type.encode(),
    ]
    # Python str order is code-point order, which equals UTF-8 byte order.
    for key in sorted(payload_map):
        parts.append(key.encode())
        parts.append(payload_map[key].encode())
    return _sha256(b"".join(parts)).hexdigest()  # type: ignore[no-any-return]


def _parent(left: str, right: str) -> str:
    return _sha256((left + right).encode("ascii")).hexdigest()  # type: ignore[no-any-return]


def merkle_root(hashes: Sequence[str]) -> str:
    """Full recompute: pair per level (odd last node with itself); one leaf is the root; none → sha256("")."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_parent(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def frontier_append(frontier: Sequence[str | None], leaf: str) -> list[str | None]:
    """Push one leaf: frontier[k] is the root of a complete 2^k-leaf subtree not yet paired (None if absent)."""
    out: list[str | None] = list(frontier)
    carry = leaf
    for level, node in enumerate(out):
        if node is None:
            out[level] = carry
            return out
        carry = _parent(node, carry)
        out[level] = None
    out.append(carry)
    return out


def frontier_of(hashes: Sequence[str]) -> list[str | None]:
    """The frontier after pushing `hashes` in order (rebuilds a stored frontier, e.g. after import)."""
    frontier: list[str | None] = []
    for leaf in hashes:
        frontier = frontier_append(frontier, leaf)
    return frontier


def frontier_root(frontier: Sequence[str | None]) -> str:
    """Root over all leaves pushed so far; equals merkle_root of those leaves, in O(log n)."""
    top = len(frontier) - 1
    while top >= 0 and frontier[top] is None:
        top -= 1
    if top < 0:
        return EMPTY_ROOT
    # acc: the incomplete right edge raised to the current level (lone nodes pair with themselves).
    acc: str | None = None
    for level in range(top):
        node = frontier[level]
        if node is not None:
            acc = _parent(node, node if acc is None else acc)
        elif acc is not None:
            acc = _parent(acc, acc)
    highest = frontier[top]
    assert highest is not None
    return highest if acc is None else _parent(highest, acc)
