"""Fixtures for service integration tests: fresh settings/data dir, a fake clock, an open EventService."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventdbx.clock import FakeClock
from eventdbx.config import Settings, load_settings
from eventdbx.service import EventService


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a private config + data dir under tmp_path."""
    return load_settings(tmp_path / "home" / "config.toml")


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved clock."""
    return FakeClock()


@pytest.fixture
def make_service(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., EventService]]:
    """Open services with settings overrides (closed at teardown)."""
    opened: list[EventService] = []

    def make(**overrides: Any) -> EventService:
        svc = EventService.open(dataclasses.replace(settings, **overrides), clock=clock)
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        svc.close()


@pytest.fixture
def service(make_service: Callable[..., EventService]) -> EventService:
    """A service over a fresh store with default settings."""
    return make_service()

