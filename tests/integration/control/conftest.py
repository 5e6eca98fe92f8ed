"""Fixtures: a real EventService on a temp data dir behind an in-process ControlServer, and token issuing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from control_daemon import Daemon, StartFn

from eventdbx.config import Settings, load_settings


@pytest.fixture
def base_settings(tmp_path: Path) -> Iterator[Settings]:
    """Fresh config + data dir (fresh signing keys)."""
    settings = load_settings(tmp_path / "config.toml", create=True)
    yield dataclasses.replace(settings, socket=dataclasses.replace(settings.socket, bind_addr="127.0.0.1:0"))


@pytest.fixture
async def start_daemon(base_settings: Settings) -> AsyncIterator[StartFn]:
    """`await start_daemon(trusted_networks=(), page_limit=5, ...)` → a running Daemon (closed at teardown)."""
    from eventdbx.control.server import ControlServer
    from eventdbx.service import EventService

    running: list[Daemon] = []

    async def start(**overrides: Any) -> Daemon:
        socket_keys = {k: overrides.pop(k) for k in list(overrides)
                       if k in {f.name for f in dataclasses.fields(base_settings.socket)}}
        on_commit = overrides.pop("on_commit", None)
        frame_stall_secs = overrides.pop("frame_stall_secs", None)
        settings = dataclasses.replace(
            base_settings, socket=dataclasses.replace(base_settings.socket, **socket_keys), **overrides)
        service = EventService.open(settings, create=True)
        extra: dict[str, Any] = {"on_commit": on_commit}
        if frame_stall_secs is not None:
            extra["frame_stall_secs"] = frame_stall_secs
        server = ControlServer(service, settings, **extra)
        await server.start()
        daemon = Daemon(server=server, service=service, settings=settings)
        running.append(daemon)
        return daemon

    yield start
    for daemon in running:
        await daemon.server.close(grace=1.0)
        daemon.service.close()


@pytest.fixture
async def daemon(start_daemon: StartFn) -> Daemon:
    """A daemon with default settings (loopback trusted)."""
    return await start_daemon()
