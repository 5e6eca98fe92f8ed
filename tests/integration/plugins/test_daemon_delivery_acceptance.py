"""plugins.md §14 through the real daemon (`dbx start`): the HTTP regression body, and a sink that fails, goes
dead with `plugin_max_attempts = 0` and delivers after `dbx queue retry`."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from tests.conftest import DbxEnv


@dataclass
class Webhook:
    """A threaded HTTP/1.1 receiver that records POSTs and answers with `status`."""

    port: int = 0
    status: int = 200
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append((dict(self.headers.items()), body))
            reply = b"" if state.status < 300 else b"try later"
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def daemon(dbx: DbxEnv) -> Iterator[DbxEnv]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{port}")
    try:
        yield dbx
    finally:
        dbx.run("stop")


def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_http_regression_body(daemon: DbxEnv, webhook: Webhook) -> None:
    dbx = daemon
    endpoint = f"127.0.0.1:{webhook.port}/hook"
    dbx.ok(
        "plugin",
        "config",
        "http",
        "--name",
        "hook",
        "--endpoint",
        endpoint,
        "--header",
        "X-Test=ok",
    )
    dbx.ok("start")
    dbx.ok("aggregate", "apply", "order", "order-123", "order_created", "--field", "status=new")
    for _ in range(3):
        dbx.ok("aggregate", "apply", "order", "order-123", "order_updated", "--field", "n=1")
    dbx.ok(
        "aggregate", "apply", "order", "order-123", "order_updated",
        "--field", "status=created", "--note", "regression",
    )  # fmt: skip
    until(lambda: len(webhook.posts) >= 5)
    headers, body = webhook.posts[-1]
    envelope = json.loads(body)
    event, state = envelope["event"], envelope["state"]
    assert headers["X-Test"] == "ok"
    assert headers["X-EventDBX-Attempt"] == "1"
    assert headers["X-EventDBX-Event-Id"] == event["metadata"]["event_id"]
    assert (event["aggregate_type"], event["aggregate_id"], event["version"]) == (
        "order",
        "order-123",
        5,
    )
    assert event["event_type"] == "order_updated"
    assert event["metadata"]["note"] == "regression"
    assert (
        isinstance(event["metadata"]["event_id"], str) and event["metadata"]["event_id"].isdigit()
    )
    assert state["version"] == 5 and state["state"]["status"] == "created"
    assert "schema" not in envelope  # `all` without a schema has no schema key
    versions = [json.loads(b)["event"]["version"] for _, b in webhook.posts]
    assert versions == [1, 2, 3, 4, 5]  # aggregate ordering through the daemon


def test_dead_at_first_failure_then_retry_delivers(daemon: DbxEnv, webhook: Webhook) -> None:
    dbx = daemon
    dbx.ok("config", "--plugin-max-attempts", "3")
    config = dbx.data_dir / "config.toml"  # the CLI refuses 0; the file may say it (§14)
    text = config.read_text()
    assert "plugin_max_attempts = 3" in text
    config.write_text(text.replace("plugin_max_attempts = 3", "plugin_max_attempts = 0"))
    webhook.status = 500
    endpoint = f"127.0.0.1:{webhook.port}/hook"
    dbx.ok("plugin", "config", "http", "--name", "hook", "--endpoint", endpoint)
    dbx.ok("start")
    dbx.ok("aggregate", "apply", "order", "o-1", "order_created", "--field", "status=new")
    until(lambda: json.loads(dbx.ok("queue", "--json").out)["counts"]["dead"] == 1)
    webhook.status = 200
    dbx.ok("queue", "retry")
    until(lambda: json.loads(dbx.ok("queue", "--json").out)["counts"]["done"] == 1)
    counts = json.loads(dbx.ok("queue", "--json").out)["counts"]
    assert counts == {"pending": 0, "processing": 0, "done": 1, "dead": 0}
    assert len(webhook.posts) == 2
    assert [h["X-EventDBX-Attempt"] for h, _ in webhook.posts] == ["1", "1"]
