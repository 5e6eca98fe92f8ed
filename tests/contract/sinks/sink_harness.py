"""Harnesses for the sink contract suite: each builds a sink against a loopback receiver it can steer."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "plugins"))

from receivers import Answer, HttpReceiver, TcpReceiver

from eventdbx.errors import DeliveryError
from eventdbx.plugins.sink import Sink
from eventdbx.plugins.sinks.http import HttpSink
from eventdbx.plugins.sinks.log import LOGGER_NAME, LogSink
from eventdbx.plugins.sinks.recording import RecordingSink
from eventdbx.plugins.sinks.tcp import TcpSink


class Harness(Protocol):
    """What the contract tests need from each sink kind."""

    kind: str

    def make_sink(self) -> Sink: ...
    def received(self) -> list[bytes]: ...
    def fail_next(self, *, permanent: bool) -> None: ...
    async def go_away(self) -> None: ...


class HttpHarness:
    kind = "http"

    def __init__(self, receiver: HttpReceiver) -> None:
        self.receiver = receiver

    def make_sink(self) -> Sink:
        return HttpSink(endpoint=self.receiver.url, timeout_secs=2)

    def received(self) -> list[bytes]:
        return [r.body for r in self.receiver.posts]

    def fail_next(self, *, permanent: bool) -> None:
        self.receiver.answer(Answer(status=404 if permanent else 500, body="nope"))

    async def go_away(self) -> None:
        await self.receiver.go_away()


class TcpHarness:
    kind = "tcp"

    def __init__(self, receiver: TcpReceiver) -> None:
        self.receiver = receiver

    def make_sink(self) -> Sink:
        return TcpSink(host="127.0.0.1", port=self.receiver.port, ack=True, timeout_secs=2)

    def received(self) -> list[bytes]:
        return [line.removesuffix(b"\n") for line in self.receiver.lines]

    def fail_next(self, *, permanent: bool) -> None:
        self.receiver.replies.append("reject bad" if permanent else "error busy")

    async def go_away(self) -> None:
        await self.receiver.go_away()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class LogHarness:
    kind = "log"

    def __init__(self) -> None:
        self.capture = _Capture()
        self.level = "debug"
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(self.capture)
        logger.setLevel(1)

    def make_sink(self) -> Sink:
        self.sink = LogSink(level=self.level, template=None)
        return self.sink

    def received(self) -> list[bytes]:
        # event-only envelopes give one line; its payload is the exact wire JSON of event.payload
        return [line.encode() for line in self.capture.lines]

    def fail_next(self, *, permanent: bool) -> None:
        self.sink.level_text = "loud"  # a bad level put into plugins.json by hand

    async def go_away(self) -> None:
        self.sink.level_text = "loud"

    def close(self) -> None:
        logging.getLogger(LOGGER_NAME).removeHandler(self.capture)


class RecordingHarness:
    kind = "recording"

    def __init__(self) -> None:
        self.sink = RecordingSink()

    def make_sink(self) -> Sink:
        return self.sink

    def received(self) -> list[bytes]:
        return [job.body for job in self.sink.delivered]

    def fail_next(self, *, permanent: bool) -> None:
        self.sink.fail_next(
            DeliveryError("scripted", retryable=not permanent, endpoint_failure=False)
        )

    async def go_away(self) -> None:
        self.sink.down = DeliveryError("down", endpoint_failure=True)
