"""The sink contract suite runs once per sink kind."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "plugins"))

from receivers import HttpReceiver, TcpReceiver
from sink_harness import Harness, HttpHarness, LogHarness, RecordingHarness, TcpHarness


@pytest.fixture(params=["http", "tcp", "log", "recording"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Each sink kind in turn."""
    if request.param == "http":
        http = await HttpReceiver().start()
        yield HttpHarness(http)
        await http.go_away()
    elif request.param == "tcp":
        tcp = await TcpReceiver(ack=True).start()
        yield TcpHarness(tcp)
        await tcp.go_away()
    elif request.param == "recording":
        yield RecordingHarness()
    else:
        log_harness = LogHarness()
        yield log_harness
        log_harness.close()
