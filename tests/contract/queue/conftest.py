"""Fixtures for the plugin queue contract suite: a fresh plugin_queue.db."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventdbx.store.plugin_queue import PluginQueue


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[PluginQueue]:
    """An empty queue file."""
    q = PluginQueue.open(tmp_path / "plugin_queue.db")
    yield q
    q.close()

