"""integrity: the §5 test vectors, Merkle recompute vs. the O(log n) frontier."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.domain.integrity import (
    EMPTY_ROOT,
    event_hash,
    frontier_append,
    frontier_of,
    frontier_root,
    merkle_root,
)
from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.state import fold_state, payload_map

VECTORS = [
    (
        "order_created",
        '{"status":"created"}',
        "2f227e08db5d01f2187411b846608cf906ce4d1673e34a4ac45d7d339d681eb2",
        "2f227e08db5d01f2187411b846608cf906ce4d1673e34a4ac45d7d339d681eb2",
    ),
    (
        "order_updated",
        '{"status":"shipped","tracking":"abc123","n":5,"obj":{"b":1,"a":[1,"x",null]}}',
        "2d4c1885c62f5c9b279fcbc69944104806ed9688a6d740fec7c3ff923ad60590",
        "bca912c4a0bab01a2121abf101065df894db533a191f8e40fbb42e25de926b51",
    ),
    (
        "order_noted",
        "null",
        "9533c5ee95dd2626d9d7b79c89756739f257ecad64231886f8641fd700e33157",
        "f5ff8549b48a94fc66d27ded6354a4d78996392db78c0bc4f335e143fee94c4b",
    ),
]


def test_spec_vectors() -> None:
    hashes: list[str] = []
    frontier: list[str | None] = []
    state: dict[str, str] = {}
    for version, (event_type, payload, want_hash, want_root) in enumerate(VECTORS, start=1):
        pmap = payload_map(parse_json(payload))
        state = fold_state(state, pmap)
        digest = event_hash("order", "order-1", version, event_type, pmap)
        assert digest == want_hash
        hashes.append(digest)
        frontier = frontier_append(frontier, digest)
        assert merkle_root(hashes) == want_root
        assert frontier_root(frontier) == want_root
        assert json.loads(json.dumps(frontier)) == frontier
    assert payload_map(parse_json(VECTORS[1][1]))["obj"] == '{"a":[1,"x",null],"b":1}'
    assert state["n"] == "5"


def test_empty_root() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()
    assert frontier_root([]) == EMPTY_ROOT
    assert frontier_root([None, None]) == EMPTY_ROOT


def test_hash_orders_keys_by_utf8_bytes() -> None:
    pmap = {"b": "2", "a": "1", "\uffff": "x", "\U00010000": "y"}
    data = b"t" + b"i" + (7).to_bytes(8, "big") + b"e" + b"a1b2" + "\uffffx\U00010000y".encode()
    assert event_hash("t", "i", 7, "e", pmap) == hashlib.sha256(data).hexdigest()


def _leaf(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_merkle_small_shapes() -> None:
    a, b, c = _leaf(0), _leaf(1), _leaf(2)

    def parent(x: str, y: str) -> str:
        return hashlib.sha256((x + y).encode("ascii")).hexdigest()

    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == parent(a, b)
    assert merkle_root([a, b, c]) == parent(parent(a, b), parent(c, c))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_frontier_equals_recompute(n: int) -> None:
    leaves = [_leaf(i) for i in range(n)]
    frontier: list[str | None] = []
    for leaf in leaves:
        frontier = frontier_append(frontier, leaf)
    assert frontier_root(frontier) == merkle_root(leaves)
    assert frontier == frontier_of(leaves)
    assert len(frontier) == n.bit_length()
    assert [node is not None for node in frontier] == [
        bool(n >> k & 1) for k in range(len(frontier))
    ]


@pytest.mark.parametrize("n", range(0, 40))
def test_frontier_every_prefix(n: int) -> None:
    leaves = [_leaf(i) for i in range(n)]
    frontier: list[str | None] = []
    for k, leaf in enumerate(leaves, start=1):
        frontier = frontier_append(frontier, leaf)
        assert frontier_root(frontier) == merkle_root(leaves[:k])
