"""integrity's sha256 source: bundled C sha256 for the first events of a process, then OpenSSL; same digests."""

from __future__ import annotations

import hashlib

import pytest

from eventdbx.domain import integrity


def _reference(n: int) -> str:
    parts = [
        b"order",
        f"o-{n}".encode(),
        n.to_bytes(8, "big"),
        b"order_created",
        b"k",
        str(n).encode(),
    ]
    return hashlib.sha256(b"".join(parts)).hexdigest()


def test_digests_do_not_change_when_the_implementation_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(integrity, "_sha256", integrity._bundled_sha256())
    monkeypatch.setattr(integrity, "_events_before_openssl", 3)
    assert integrity._sha256 is not hashlib.sha256  # CPython ships the bundled module
    leaves = [
        integrity.event_hash("order", f"o-{n}", n, "order_created", {"k": str(n)}) for n in range(8)
    ]
    assert integrity._sha256 is hashlib.sha256  # switched after three events
    assert leaves == [_reference(n) for n in range(8)]
    monkeypatch.setattr(integrity, "_sha256", integrity._bundled_sha256())
    bundled_root = integrity.merkle_root(leaves)
    monkeypatch.setattr(integrity, "_sha256", hashlib.sha256)
    assert integrity.merkle_root(leaves) == bundled_root
