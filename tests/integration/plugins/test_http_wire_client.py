"""The http sink's lean HTTP/1.1 client against canned raw answers: body framings, keep-alive, interim answers."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from eventdbx.plugins.sinks.http_client import (
    BODY_KEEP,
    HttpClientError,
    HttpPool,
    ServerDisconnected,
    Target,
)

REQUEST = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


class RawServer:
    """Answers each request (read up to its 2-byte body) with the next canned bytes; None closes at once,
    and an answer starting with `!` is sent without the `!` and then the connection closes."""

    def __init__(self) -> None:
        self.answers: list[bytes | None] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)
                answer = self.answers.pop(0) if self.answers else None
                if answer is None:
                    break
                close = answer.startswith(b"!")
                answer = answer.removeprefix(b"!")
                for part in (answer[: len(answer) // 2], answer[len(answer) // 2 :]):
                    writer.write(part)  # split in two writes: the parser must resume mid-answer
                    await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    raw = RawServer()
    raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    raw.port = raw.server.sockets[0].getsockname()[1]
    try:
        yield raw
    finally:
        raw.server.close()
        await raw.server.wait_closed()


def pool_for(raw: RawServer) -> HttpPool:
    return HttpPool(Target.parse(f"http://127.0.0.1:{raw.port}/hook"), limit=2, connect_timeout=2)


async def test_framings_share_one_keep_alive_connection(raw_server: RawServer) -> None:
    raw_server.answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nboom\r\n3\r\n!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nContent-Length: 0\r\n\r\n",
    ]
    pool = pool_for(raw_server)
    try:
        first = await pool.request(REQUEST)
        second = await pool.request(REQUEST)
        third = await pool.request(REQUEST)
        fourth = await pool.request(REQUEST)
    finally:
        await pool.aclose()
    assert (first.status, first.reason, first.body) == (200, "OK", b"hello")
    assert (second.status, second.body) == (204, b"")
    assert (third.status, third.body) == (500, b"boom!!!")
    assert (fourth.status, fourth.headers["retry-after"]) == (429, "7")
    assert raw_server.connections == 1


async def test_close_delimited_body_and_connection_close(raw_server: RawServer) -> None:
    raw_server.answers = [
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 4\r\n\r\ngone",
        b"!HTTP/1.0 502 Bad Gateway\r\n\r\nupstream down",
    ]
    pool = pool_for(raw_server)
    try:
        first = await pool.request(REQUEST)
        second = await asyncio.wait_for(pool.request(REQUEST), 5)
    finally:
        await pool.aclose()
    assert (first.status, first.body) == (404, b"gone")
    assert (second.status, second.body) == (502, b"upstream down")
    assert raw_server.connections == 2


async def test_a_long_body_is_cut_and_the_connection_dropped(raw_server: RawServer) -> None:
    size = BODY_KEEP * 3
    raw_server.answers = [
        b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ]
    pool = pool_for(raw_server)
    try:
        first = await pool.request(REQUEST)
        second = await pool.request(REQUEST)
    finally:
        await pool.aclose()
    assert first.status == 500 and first.body == b"x" * BODY_KEEP
    assert second.status == 200 and raw_server.connections == 2


async def test_disconnect_before_any_answer_is_retried_once(raw_server: RawServer) -> None:
    raw_server.answers = [None, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None, None]
    pool = pool_for(raw_server)
    try:
        assert (await pool.request(REQUEST)).status == 200
        with pytest.raises(ServerDisconnected):
            await pool.request(REQUEST)
    finally:
        await pool.aclose()


async def test_garbage_and_truncated_answers_fail(raw_server: RawServer) -> None:
    raw_server.answers = [
        b"SMTP ready\r\n\r\n",
        b"!HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    ]
    pool = pool_for(raw_server)
    try:
        with pytest.raises(HttpClientError, match="invalid status line"):
            await pool.request(REQUEST)
        with pytest.raises(HttpClientError, match="before the answer was complete"):
            await asyncio.wait_for(pool.request(REQUEST), 5)
    finally:
        await pool.aclose()


def test_target_parsing() -> None:
    assert Target.parse("http://example.com/a?b=1") == Target(
        "example.com", 80, "/a?b=1", False, "example.com"
    )
    assert Target.parse("https://h:8443") == Target("h", 8443, "/", True, "h:8443")
    assert Target.parse("http://[::1]:81/x").host_header == "[::1]:81"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (key, cert)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


async def test_tls_is_verified(raw_server: RawServer, tmp_path: Path) -> None:
    key_path, cert_path = _self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert_path, key_path)
    tls_server = await asyncio.start_server(raw_server.handle, "127.0.0.1", 0, ssl=server_side)
    port = tls_server.sockets[0].getsockname()[1]
    raw_server.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    target = Target.parse(f"https://127.0.0.1:{port}/hook")
    untrusted = HttpPool(target, limit=1, connect_timeout=2)
    trusting = HttpPool(
        target, limit=1, connect_timeout=2, tls=ssl.create_default_context(cafile=cert_path)
    )
    try:
        with pytest.raises(HttpClientError, match="cannot connect to 127.0.0.1"):
            await untrusted.request(REQUEST)
        answer = await trusting.request(REQUEST)
    finally:
        await untrusted.aclose()
        await trusting.aclose()
        tls_server.close()
        await tls_server.wait_closed()
    assert (answer.status, answer.body) == (200, b"ok")
