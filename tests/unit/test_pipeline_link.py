"""The daemon ↔ pipeline-process messages: coalesced wakes, settings refreshes, EOF, a full socket."""

from __future__ import annotations

import asyncio
import pickle
import socket
from pathlib import Path
from typing import Any

from eventdbx.config import load_settings
from eventdbx.pipeline_child import _Link
from eventdbx.pipeline_process import SETTINGS, WAKE, WAKE_GAP_SECS, PipelineProcess


class _FakePipeline:
    def __init__(self) -> None:
        self.wakes = 0
        self.settings: list[Any] = []

    def wake(self) -> None:
        self.wakes += 1

    def refresh_settings(self, settings: Any) -> None:
        self.settings.append(settings)


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    theirs.setblocking(False)
    return ours, theirs


def test_link_coalesces_wakes_applies_settings_and_stops_on_eof(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "config.toml")

    async def run() -> tuple[_FakePipeline, bool, bool]:
        daemon_end, child_end = _pair()
        pipeline = _FakePipeline()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        link = _Link(child_end, pipeline, stop)  # type: ignore[arg-type]
        loop.add_reader(child_end.fileno(), link.on_readable)
        for _ in range(5):
            daemon_end.send(WAKE)
        daemon_end.send(SETTINGS + pickle.dumps(settings))
        link.on_readable()
        stopped_early = stop.is_set()
        daemon_end.close()
        link.on_readable()
        child_end.close()
        return pipeline, stopped_early, stop.is_set()

    pipeline, stopped_early, stopped = asyncio.run(run())
    assert pipeline.wakes == 1
    assert pipeline.settings == [settings]
    assert not stopped_early and stopped


def test_wakes_are_coalesced_to_one_per_gap_and_none_is_lost(tmp_path: Path) -> None:
    process = PipelineProcess(load_settings(tmp_path / "config.toml"))
    daemon_end, child_end = _pair()
    process._sock = daemon_end

    async def run() -> list[int]:
        received = []
        for _ in range(3):
            for _ in range(100):  # a burst of group commits
                process.wake()
            received.append(len(_drain(child_end)))
            await asyncio.sleep(WAKE_GAP_SECS * 3)
            received.append(len(_drain(child_end)))
        return received

    # each burst: one send at once, one more for the rest of the burst once the gap has passed
    assert asyncio.run(run()) == [1, 1, 1, 1, 1, 1]
    daemon_end.close()
    child_end.close()


def _drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(16))
        except BlockingIOError:
            return got


def test_wake_never_blocks_or_raises_when_the_child_lags_or_is_gone(tmp_path: Path) -> None:
    process = PipelineProcess(load_settings(tmp_path / "config.toml"))
    daemon_end, child_end = _pair()
    process._sock = daemon_end
    sent = 0
    while True:  # fill the socket buffer
        try:
            daemon_end.send(WAKE)
        except BlockingIOError:
            break
        sent += 1
    assert sent > 0

    async def run() -> None:
        process.wake()  # full: dropped, the child has unread wakes anyway
        assert child_end.recv(16) == WAKE
        child_end.close()
        await asyncio.sleep(WAKE_GAP_SECS * 2)
        process.wake()  # gone: the watcher restarts the child
        await asyncio.sleep(WAKE_GAP_SECS * 2)

    asyncio.run(run())
    daemon_end.close()
