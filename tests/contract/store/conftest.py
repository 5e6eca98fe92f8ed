"""The store contract suite runs against every Store implementation listed here."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventdbx.store.protocols import Store
from eventdbx.store.session import SqliteStore

DEK = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(params=["sqlite", "sqlite-encrypted"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store (plain, and sealing values at rest with a data key)."""
    dek = DEK if request.param == "sqlite-encrypted" else None
    backend = SqliteStore.open(tmp_path / "event_store.db", "normal", create=True, dek=dek)
    yield backend
    backend.close()
