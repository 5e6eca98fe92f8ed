"""The store contract suite runs against every Store implementation listed here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventdbx.store.protocols import Store
from eventdbx.store.session import SqliteStore


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store."""
    assert request.param == "sqlite"
    backend = SqliteStore.open(tmp_path / "event_store.db", "normal", create=True)
    yield backend
    backend.close()
