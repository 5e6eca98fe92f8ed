"""Test-side wire helpers: our own copy of the schemas, reference-client frames and a raw TCP connection."""

from __future__ import annotations

import asyncio
import struct
from functools import cache
from pathlib import Path
from typing import Any

import capnp

SCHEMAS = Path(__file__).with_name("schemas")


@cache
def _parser() -> Any:
    # a private parser: the same file ids are also loaded by the code under test
    return capnp.SchemaParser()


@cache
def schema(name: str) -> Any:
    """One of the test copies of control/cli/replication.capnp."""
    return _parser().load(str(SCHEMAS / f"{name}.capnp"))


def request(request_id: int, variant: str, **fields: Any) -> bytes:
    """A ControlRequest as the reference ControlClient frames it: every field of the variant set."""
    defaults: dict[str, dict[str, Any]] = {
        "listAggregates": {"skip": 0, "take": 0, "hasTake": False},
        "getAggregate": {"aggregateType": "", "aggregateId": ""},
        "listEvents": {"aggregateType": "", "aggregateId": "", "skip": 0, "take": 0, "hasTake": False},
        "appendEvent": {"token": "", "aggregateType": "", "aggregateId": "", "eventType": "", "payloadJson": "",
                        "patchJson": "", "note": "", "hasNote": False, "metadataJson": "", "hasMetadata": False},
        "verifyAggregate": {"aggregateType": "", "aggregateId": ""},
        "authenticate": {"token": ""},
    }
    message = schema("control").ControlRequest.new_message()
    message.id = request_id
    body = message.init(variant)
    for key, value in {**defaults[variant], **fields}.items():
        setattr(body, key, value)
    data: bytes = message.to_bytes()
    return data


def response(frame: bytes) -> dict[str, Any]:
    """A ControlResponse as a dict: {"id", "which", <member fields>}."""
    with schema("control").ControlResponse.from_bytes(frame) as message:
        which = str(message.which)
        body = getattr(message, which).to_dict()
        return {"id": int(message.id), "which": which, **body}


def segments_of(frame: bytes) -> int:
    """Segment count of a framed message."""
    return int(struct.unpack_from("<I", frame, 0)[0]) + 1


class RawConn:
    """A bare TCP connection speaking frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawConn:
        """Connect."""
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Write raw bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, timeout: float = 10.0) -> bytes:
        """Read one whole frame."""
        async with asyncio.timeout(timeout):
            head = await self.reader.readexactly(4)
            count = struct.unpack("<I", head)[0] + 1
            table = await self.reader.readexactly(4 * count + (4 if count % 2 == 0 else 0))
            body = 8 * sum(struct.unpack_from(f"<{count}I", table, 0))
            return head + table + await self.reader.readexactly(body)

    async def call(self, data: bytes, timeout: float = 10.0) -> dict[str, Any]:
        """Send one request frame and decode the reply."""
        await self.send(data)
        return response(await self.frame(timeout))

    async def closed(self, timeout: float = 10.0) -> bool:
        """True when the server closes the connection (EOF) within `timeout`, discarding any bytes."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        await self.close()
        return True

    async def close(self) -> None:
        """Close our side."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
