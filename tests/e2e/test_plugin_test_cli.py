"""`dbx plugin test [N…]` end to end: the fixed sample through the real http, tcp, capnp and log sinks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from plugin_support.receivers import free_port, http_receiver, socket_receiver, wait_for
from tests.conftest import DbxEnv

pytestmark = pytest.mark.timeout(300)

SAMPLE_EVENT = {
    "aggregate_type": "patient",
    "aggregate_id": "p-001",
    "event_type": "patient-updated",
    "version": 5,
    "payload": {"comment": "Archived via API", "status": "inactive"},
    "metadata": {
        "event_id": "1234567890",
        "created_at": "2024-12-01T17:22:43.512345Z",
        "issued_by": {"group": "admin", "user": "jane"},
    },
}


def test_nothing_enabled(dbx: DbxEnv) -> None:
    assert dbx.ok("plugin", "test").out == "(no plugins enabled)\n"
    dbx.ok("plugin", "config", "log", "--name", "audit", "--disable")
    assert dbx.ok("plugin", "test").out == "(no plugins enabled)\n"
    err = dbx.fail("plugin", "test", "audit").err.strip()
    assert err == "Error: plugin 'audit' is disabled; enable it before testing"


def test_http_sample_with_headers_and_signature(dbx: DbxEnv) -> None:
    with http_receiver() as receiver:
        dbx.ok(
            "plugin",
            "config",
            "http",
            "--name",
            "hook",
            "--endpoint",
            f"127.0.0.1:{receiver.port}/hook",
            "--header",
            "X-Test=ok",
            "--payload",
            "event-only",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        res = dbx.ok("plugin", "test")
        assert res.out == "http (hook) - ok\nTested 1 plugin(s): 1 succeeded, 0 failed\n"
        head, post = receiver.requests
        assert head.method == "HEAD" and head.headers["X-Test"] == "ok"
        assert post.path == "/hook"
        assert post.headers["X-Test"] == "ok"
        assert post.headers["Content-Type"] == "application/json"
        assert post.headers["X-EventDBX-Event-Id"] == "1234567890"
        assert post.headers["X-EventDBX-Attempt"] == "1"
        assert post.headers["Idempotency-Key"] == post.headers["X-EventDBX-Job-Id"]
        assert post.headers["webhook-signature"].startswith("v1,")
        assert "X-EventDBX-Replay" not in post.headers
        body = json.loads(post.body)
        assert set(body) == {"event"}
        event = body["event"]
        assert {k: event[k] for k in SAMPLE_EVENT} == SAMPLE_EVENT
        assert event["hash"].startswith("cafe") and event["merkle_root"].startswith("deadbeef")
        # wire JSON: compact, keys sorted at every level
        assert post.body == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def test_http_failure_is_reported_per_plugin(dbx: DbxEnv) -> None:
    with http_receiver(post_status=422) as receiver:
        dbx.ok(
            "plugin",
            "config",
            "http",
            "--name",
            "hook",
            "--endpoint",
            f"http://127.0.0.1:{receiver.port}/h",
        )
        dbx.ok("plugin", "config", "log", "--name", "audit")
        res = dbx.fail("plugin", "test")
        assert res.out == (
            "http (hook) - FAILED (http plugin request failed (422 Unprocessable Entity): nope)\n"
            "log (audit) - ok\n"
            "Tested 2 plugin(s): 1 succeeded, 1 failed\n"
        )
        assert res.err.strip().splitlines()[-1] == "Error: plugin test failed for 1 plugin(s)"
        body = json.loads(receiver.posts()[0].body)
        assert set(body) == {"event", "state", "schema"}
        assert body["state"]["state"] == SAMPLE_EVENT["payload"]
        assert body["state"]["version"] == 5
        assert body["schema"]["aggregate"] == "patient"
        assert body["schema"]["events"] == {"patient-updated": {"fields": ["comment", "status"]}}


def test_readiness_failure_and_named_targets(dbx: DbxEnv) -> None:
    port = free_port()
    dbx.ok("plugin", "config", "tcp", "--name", "sink", "--host", "127.0.0.1", "--port", str(port))
    dbx.ok(
        "plugin", "config", "log", "--name", "audit", "--level", "warn", "--payload", "state-only"
    )
    res = dbx.fail("plugin", "test", "sink")
    line = res.out.splitlines()[0]
    assert line.startswith(
        "tcp (sink) - FAILED (failed to establish connection for 'sink': "
        f"tcp plugin connect to 127.0.0.1:{port} failed:"
    )
    assert res.out.splitlines()[1] == "Tested 1 plugin(s): 0 succeeded, 1 failed"
    res = dbx.ok("plugin", "test", "audit", "log (audit)")
    assert res.out == "log (audit) - ok\nTested 1 plugin(s): 1 succeeded, 0 failed\n"
    assert (
        'aggregate=patient id=p-001 state={"comment":"Archived via API","status":"inactive"}'
        in res.err
    )


def test_tcp_sample_with_and_without_ack(dbx: DbxEnv) -> None:
    with socket_receiver("tcp", ack="ok") as acking, socket_receiver("tcp") as plain:
        dbx.ok(
            "plugin",
            "config",
            "tcp",
            "--name",
            "acked",
            "--host",
            "127.0.0.1",
            "--port",
            str(acking.port),
            "--ack",
            "--payload",
            "event-and-schema",
        )
        dbx.ok(
            "plugin",
            "config",
            "tcp",
            "--name",
            "plain",
            "--host",
            "127.0.0.1",
            "--port",
            str(plain.port),
            "--payload",
            "extensions-only",
        )
        res = dbx.ok("plugin", "test")
        assert res.out == (
            "tcp (acked) - ok\ntcp (plain) - ok\nTested 2 plugin(s): 2 succeeded, 0 failed\n"
        )
        wait_for(lambda: len(plain.lines) == 1)
        acked = json.loads(acking.lines[0])
        assert set(acked) == {"event", "schema"}
        assert acked["event"]["payload"] == SAMPLE_EVENT["payload"]
        ext = json.loads(plain.lines[0])
        assert ext["event"]["payload"] is None and ext["event"]["aggregate_id"] == "p-001"


def test_tcp_receiver_rejecting_fails(dbx: DbxEnv) -> None:
    with socket_receiver("tcp", ack="reject not today") as receiver:
        dbx.ok(
            "plugin",
            "config",
            "tcp",
            "--name",
            "sink",
            "--host",
            "127.0.0.1",
            "--port",
            str(receiver.port),
            "--ack",
        )
        res = dbx.fail("plugin", "test")
        assert res.out.splitlines()[0] == (
            "tcp (sink) - FAILED (tcp plugin receiver rejected: not today)"
        )


def test_capnp_sample_frame(dbx: DbxEnv) -> None:
    with socket_receiver("capnp") as receiver:
        dbx.ok(
            "plugin",
            "config",
            "capnp",
            "--name",
            "cap",
            "--host",
            "127.0.0.1",
            "--port",
            str(receiver.port),
        )
        assert dbx.ok("plugin", "test", "cap").out == (
            "capnp (cap) - ok\nTested 1 plugin(s): 1 succeeded, 0 failed\n"
        )
        wait_for(lambda: len(receiver.frames) == 1)
        which, body = receiver.frames[0]
        assert which == "event"
        assert body["aggregateType"] == "patient" and body["aggregateId"] == "p-001"
        assert body["eventType"] == "patient-updated" and body["eventVersion"] == 5
        assert body["eventId"] == "1234567890"
        assert json.loads(body["payloadJson"]) == SAMPLE_EVENT["payload"]
        assert json.loads(body["schemaJson"])["aggregate"] == "patient"
        assert body["stateVersion"] == 5


def test_process_plugin_needs_the_daemon(dbx: DbxEnv, tmp_path: Path) -> None:
    script = tmp_path / "search.sh"
    script.write_text("#!/bin/sh\ncat >/dev/null\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    dbx.ok("plugin", "install", "search", "1.2.3", "-s", str(script))
    dbx.ok("plugin", "config", "process", "search")
    dbx.ok("plugin", "config", "log", "--name", "audit")
    res = dbx.fail("plugin", "test")
    assert res.out == (
        "process (search) - FAILED (the daemon is not running)\n"
        "log (audit) - ok\n"
        "Tested 2 plugin(s): 1 succeeded, 1 failed\n"
    )
    dbx.ok("plugin", "config", "process", "search", "--emit-events", "false")
    err = dbx.fail("plugin", "test", "search").err.strip()
    assert err == (
        "Error: plugin 'search' has event delivery disabled; "
        "reconfigure with --emit-events=true to test"
    )
