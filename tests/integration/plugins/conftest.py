"""Fixtures for dispatcher and sink integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dispatch_support import T0, Env
from receivers import HttpReceiver, TcpReceiver

from eventdbx.clock import FakeClock
from eventdbx.config import Settings, load_settings
from eventdbx.store.plugin_queue import PluginQueue


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("settings")
    return load_settings(root / "config.toml")


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[PluginQueue]:
    q = PluginQueue.open(tmp_path / "plugin_queue.db")
    yield q
    q.close()


@pytest.fixture
async def env(base_settings: Settings, queue: PluginQueue) -> AsyncIterator[Env]:
    environment = Env(base_settings, queue, FakeClock(now=T0))
    yield environment
    await environment.stop()


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    receiver = await HttpReceiver().start()
    yield receiver
    await receiver.go_away()


@pytest.fixture
async def tcp_receiver() -> AsyncIterator[TcpReceiver]:
    receiver = await TcpReceiver(ack=True).start()
    yield receiver
    await receiver.go_away()
