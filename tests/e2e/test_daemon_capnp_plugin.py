"""capnp sink through the real daemon: a receiver in its own process gets a frame per job for every payload
mode, with and without acks, and each frame's fields follow the spec's mapping (plugins.md §7, §8.3)."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import DbxEnv
from tests.e2e.process_table import ProcessWatch, no_leftover_processes

RECEIVER = Path(__file__).with_name("capnp_ports_receiver.py")
MODES = ["all", "event-only", "state-only", "schema-only", "event-and-schema", "extensions-only"]
WITH_EVENT = {"all", "event-only", "event-and-schema", "extensions-only"}
WITH_STATE = {"all", "state-only"}
WITH_SCHEMA = {"all", "schema-only", "event-and-schema"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(predicate: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached in time"
        time.sleep(0.05)


class Receiver:
    """The receiver subprocess: its ports, and the frames it has printed so far."""

    def __init__(self, policies: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RECEIVER), *policies],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        self._pump_thread = threading.Thread(
            target=self._pump, args=(self.proc.stdout,), daemon=True
        )
        self._pump_thread.start()
        self.ports: list[int] = json.loads(self.lines.get(timeout=30))
        self.frames: list[dict[str, Any]] = []

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)

    def received(self, listener: int) -> list[dict[str, Any]]:
        """Frames that arrived on one listener, in arrival order."""
        while not self.lines.empty():
            self.frames.append(json.loads(self.lines.get()))
        return [f for f in self.frames if f["listener"] == listener]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._pump_thread.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def daemon(dbx: DbxEnv) -> Iterator[tuple[DbxEnv, ProcessWatch]]:
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{_free_port()}")
    with no_leftover_processes(dbx.home, lambda: dbx.run("stop")) as watch:
        yield dbx, watch


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _micros(created_at: str) -> int:
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def expected_frame(
    mode: str, event: dict[str, Any], state: dict[str, str], schema: dict[str, Any] | None
) -> dict[str, Any]:
    """The PluginEvent fields the spec's mapping table gives for one appended event (all but sequence)."""
    meta = event["metadata"]
    ordered_meta = {
        k: meta[k] for k in ("event_id", "created_at", "issued_by", "note") if k in meta
    }
    has_event = mode in WITH_EVENT
    has_state = mode in WITH_STATE
    extensions = event.get("extensions")
    return {
        "aggregateType": event["aggregate_type"],
        "aggregateId": event["aggregate_id"],
        "eventType": event["event_type"],
        "eventVersion": event["version"],
        "eventId": meta["event_id"],
        "createdAtEpochMicros": _micros(meta["created_at"]),
        "payloadJson": _compact(event["payload"])
        if has_event and mode != "extensions-only"
        else "null",
        "metadataJson": _compact(ordered_meta) if has_event else "null",
        "hash": event["hash"] if has_event else "",
        "merkleRoot": event["merkle_root"] if has_event else "",
        "extensionsJson": _compact(extensions) if has_event and extensions else "null",
        "stateVersion": event["version"] if has_state else 0,
        "stateArchived": False,
        "stateMerkleRoot": event["merkle_root"] if has_state else "",
        "stateEntries": [{"key": k, "value": v} for k, v in sorted(state.items())]
        if has_state
        else [],
        "schemaJson": "schema" if mode in WITH_SCHEMA and schema is not None else "null",
    }


def _comparable(frame: dict[str, Any]) -> dict[str, Any]:
    """A received frame, with schemaJson reduced to `schema` after checking it separately."""
    fields = {
        k: v for k, v in frame.items() if k not in ("sequence", "variant", "listener", "connection")
    }
    fields.setdefault("stateEntries", [])
    if fields.get("schemaJson", "null") != "null":
        fields["schemaJson"] = "schema"
    return fields


def _append_events(dbx: DbxEnv) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Three events (one with extensions and a note, one on a schema-less aggregate) and their states."""
    created = dbx.ok(
        "aggregate",
        "apply",
        "order",
        "o-1",
        "order_created",
        "--field",
        "status=new",
        "--field",
        "total=15",
        "--metadata",
        '{"@trace_id":"abc123"}',
        "--note",
        "import",
    )
    updated = dbx.ok(
        "aggregate", "apply", "order", "o-1", "order_updated", "--field", "status=paid"
    )
    memo = dbx.ok(
        "aggregate", "apply", "memo", "m-1", "memo_created", "--payload", '{"text":"hi","n":2}'
    )
    return [
        (json.loads(created.out), {"status": "new", "total": "15"}),
        (json.loads(updated.out), {"status": "paid", "total": "15"}),
        (json.loads(memo.out), {"n": "2", "text": "hi"}),
    ]


def _jobs(dbx: DbxEnv, status: str) -> list[dict[str, Any]]:
    out = dbx.ok("queue", "--json", "--status", status, "--limit", "0").out
    jobs: list[dict[str, Any]] = json.loads(out)["jobs"]
    return jobs


def test_every_payload_mode_with_and_without_acks(daemon: tuple[DbxEnv, ProcessWatch]) -> None:
    dbx, watch = daemon
    plugins = [(mode, ack) for ack in (True, False) for mode in MODES]
    receiver = Receiver(["ack" if ack else "none" for _, ack in plugins] + ["none"])
    try:
        dbx.ok("schema", "create", "order", "--events", "order_created,order_updated")
        schema = json.loads(dbx.ok("schema", "show", "order").out)
        for listener, (mode, ack) in enumerate(plugins):
            name = f"c-{mode}-{'ack' if ack else 'noack'}"
            flags = ["--ack"] if ack else []
            out = dbx.ok(
                "plugin",
                "config",
                "capnp",
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--port",
                str(receiver.ports[listener]),
                "--payload",
                mode,
                *flags,
            ).out
            assert out == f"Cap'n Proto plugin '{name}' configured\n"
        # An ack-mode plugin whose receiver never answers: the daemon must wait for acks, not assume them.
        dbx.ok(
            "plugin",
            "config",
            "capnp",
            "--name",
            "silent",
            "--host",
            "127.0.0.1",
            "--port",
            str(receiver.ports[-1]),
            "--payload",
            "event-only",
            "--ack",
            "--timeout",
            "1",
        )
        dbx.ok("start")
        watch.scan()
        appended = _append_events(dbx)

        def delivered() -> bool:
            return len(_jobs(dbx, "done")) == 3 * len(plugins)

        try:
            _until(delivered, what="every capnp job done")
        except AssertionError:
            raise AssertionError(dbx.ok("queue").out) from None
        jobs = _jobs(dbx, "done")
        for listener, (mode, ack) in enumerate(plugins):
            name = f"c-{mode}-{'ack' if ack else 'noack'}"
            mine = {j["event_id"]: j for j in jobs if j["plugin_name"] == name}
            delivered_jobs = [j for j in mine.values() if j["resolution"] == "delivered"]
            assert all(j["attempts"] == 1 for j in delivered_jobs), mine
            sent = [
                (e, s)
                for e, s in appended
                if mode != "schema-only" or e["aggregate_type"] == "order"
            ]
            expected_count = len(sent)
            _until(
                lambda n=expected_count, at=listener: len(receiver.received(at)) >= n,  # type: ignore[misc]
                what=f"{name} frames",
            )
            frames = receiver.received(listener)
            assert len(frames) == len(sent), f"{name}: {frames}"
            by_event = {f["eventId"]: f for f in frames}
            for event, state in sent:
                frame = by_event[event["metadata"]["event_id"]]
                assert frame["variant"] == "event"
                has_schema = event["aggregate_type"] == "order"
                wanted = expected_frame(mode, event, state, schema if has_schema else None)
                assert _comparable(frame) == wanted, name
                if mode in WITH_SCHEMA and has_schema:
                    assert json.loads(frame["schemaJson"]) == schema
            for connection in {f["connection"] for f in frames}:
                sequences = [f["sequence"] for f in frames if f["connection"] == connection]
                assert sequences == list(range(len(sequences))), f"{name}: {sequences}"
            assert len(delivered_jobs) == len(sent), mine
            if mode == "schema-only":
                [memo_job] = [j for j in mine.values() if j["aggregate_type"] == "memo"]
                assert memo_job["resolution"] == "empty"
        # The silent receiver got its frames, but no ack: nothing is done, the error names the timeout.
        _until(lambda: len(receiver.received(len(plugins))) >= 1, what="silent frames")
        _until(
            lambda: (
                "capnp plugin ack timed out after 1s"
                in str(
                    [p["last_error"] for p in json.loads(dbx.ok("queue", "--json").out)["plugins"]]
                )
            ),
            what="ack timeout error",
        )
        assert not [j for j in _jobs(dbx, "done") if j["plugin_name"] == "silent"]
        watch.assert_no_zombies()
    finally:
        receiver.close()
