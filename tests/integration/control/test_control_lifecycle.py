"""ControlServer lifecycle as the daemon drives it: start, serve_forever, on_commit, close; bind addresses."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest
from control_wire import RawConn, request

from eventdbx.config import Settings
from eventdbx.control.reads import json_array
from eventdbx.control.server import ControlServer, parse_bind_addr
from eventdbx.errors import ConfigError
from eventdbx.service import EventService


def test_parse_bind_addr() -> None:
    assert parse_bind_addr("127.0.0.1:6363") == ("127.0.0.1", 6363)
    assert parse_bind_addr("[::1]:6363") == ("::1", 6363)
    assert parse_bind_addr("0.0.0.0:0") == ("0.0.0.0", 0)
    with pytest.raises(ConfigError):
        parse_bind_addr("localhost")


def test_list_replies_stop_before_the_cap() -> None:
    items = [b'{"n":%d}' % n for n in range(10)]
    assert json_array(items, cap=2 + 7 * 3 + 2) == b'[{"n":0},{"n":1},{"n":2}]'
    assert json_array([b"x" * 100], cap=10) == b"[" + b"x" * 100 + b"]"  # at least one item
    assert json_array([]) == b"[]"


async def test_start_serve_forever_close_and_on_commit(base_settings: Settings) -> None:
    service = EventService.open(base_settings, create=True)
    commits: list[int] = []
    server = ControlServer(service, base_settings, on_commit=lambda: commits.append(1))
    await server.start()
    serving = asyncio.create_task(server.serve_forever())
    from control_daemon import issue_token

    token = issue_token(base_settings, actions=("*.*",), resources=("*",), group="g", user="u",
                        ttl_secs=None, write_events=None)
    conn = await RawConn.open(server.port)
    reply = await conn.call(request(1, "appendEvent", token=token, aggregateType="t", aggregateId="i",
                                    eventType="t_created", payloadJson="{}"))
    assert reply["which"] == "appendEvent"
    assert commits == [1]
    idle = await RawConn.open(server.port)
    port = server.port
    await server.close(grace=1.0)
    await asyncio.wait_for(serving, 5)
    assert await conn.closed(timeout=5) and await idle.closed(timeout=5)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    service.close()


async def test_bind_failure_is_a_config_error(base_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = dataclasses.replace(
            base_settings, socket=dataclasses.replace(base_settings.socket, bind_addr=f"127.0.0.1:{port}"))
        service = EventService.open(settings, create=True)
        server = ControlServer(service, settings)
        with pytest.raises(ConfigError):
            await server.start()
        service.close()


async def test_ipv6_loopback(base_settings: Settings) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    settings = dataclasses.replace(
        base_settings, socket=dataclasses.replace(base_settings.socket, bind_addr="[::1]:0"))
    service = EventService.open(settings, create=True)
    server = ControlServer(service, settings)
    try:
        await server.start()
    except ConfigError:
        service.close()
        pytest.skip("cannot bind ::1")
    conn = await RawConn.open(server.port, host="::1")
    assert (await conn.call(request(1, "listAggregates")))["which"] == "listAggregates"  # ::1 is trusted
    await conn.close()
    await server.close(grace=1.0)
    service.close()
