"""Loopback receivers (port 0) for the http, tcp and capnp sinks, each recording what it got."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eventdbx.control.plugin_codec import body_length, decode_envelope, frame_length


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` until true or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


@dataclass
class HttpRequest:
    """One request the HTTP receiver answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """What the HTTP receiver saw, and how it answers."""

    port: int = 0
    head_status: int = 200
    post_status: int = 200
    requests: list[HttpRequest] = field(default_factory=list)

    def posts(self) -> list[HttpRequest]:
        """The POST requests only."""
        return [r for r in self.requests if r.method == "POST"]


@contextmanager
def http_receiver(*, head_status: int = 200, post_status: int = 200) -> Iterator[HttpReceiver]:
    """A threaded HTTP server on 127.0.0.1:0."""
    state = HttpReceiver(head_status=head_status, post_status=post_status)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, method: str, status: int) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                HttpRequest(method, self.path, {k: v for k, v in self.headers.items()}, body)
            )
            reply = b"" if method == "HEAD" or status < 300 else b"nope"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(reply)

        def do_HEAD(self) -> None:
            self._answer("HEAD", state.head_status)

        def do_POST(self) -> None:
            self._answer("POST", state.post_status)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class SocketReceiver:
    """What a raw TCP receiver saw: the lines (tcp) or decoded envelopes (capnp)."""

    port: int = 0
    lines: list[str] = field(default_factory=list)
    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connections: int = 0


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


@contextmanager
def socket_receiver(kind: str, *, ack: str | None = None) -> Iterator[SocketReceiver]:
    """A TCP listener on 127.0.0.1:0 reading JSON lines (`tcp`) or Cap'n Proto frames (`capnp`).

    `ack` (tcp only) is the reply line sent after each received line.
    """
    state = SocketReceiver()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    state.port = listener.getsockname()[1]
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.settimeout(10)
        buffer = b""
        try:
            while not stop.is_set():
                if kind == "tcp":
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        state.lines.append(line.decode("utf-8"))
                        if ack is not None:
                            conn.sendall(ack.encode() + b"\n")
                else:
                    header = _read_exact(conn, 4)
                    table, segments = frame_length(header)
                    rest = _read_exact(conn, table)
                    body = _read_exact(conn, body_length(rest, segments))
                    state.frames.append(decode_envelope(header + rest + body))
        except (EOFError, OSError):
            return
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state.connections += 1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def free_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
