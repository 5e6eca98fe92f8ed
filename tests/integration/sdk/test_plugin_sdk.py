"""The process-plugin SDK driven through a real subprocess with real PluginEnvelope frames."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from eventdbx.control.plugin_codec import (
    EventFrameFields,
    InitFields,
    decode_reply,
    encode_event,
    encode_init,
)
from eventdbx.sdk.plugin import Plugin, Reject, Retry, read_frame

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _event(
    version: int, status: str, *, with_state: bool = True, agg: str = "o-1"
) -> EventFrameFields:
    return EventFrameFields(
        aggregate_type="order",
        aggregate_id=agg,
        event_type="order_created" if version == 1 else "order_updated",
        event_version=version,
        event_id=str(1000 + version),
        created_at_epoch_micros=1_761_480_000_123_456,
        payload_json=json.dumps({"status": status}),
        metadata_json='{"event_id":"1001","created_at":"x","issued_by":null}',
        hash="h" * 64,
        merkle_root="r" * 64,
        state_version=version if with_state else 0,
        state_merkle_root="r" * 64 if with_state else "",
        state_entries=(("status", status), ("total", "15")) if with_state else (),
    )


def _run_plugin(script: Path, frames: bytes, env: dict[str, str], tmp: Path) -> tuple[bytes, str]:
    proc = subprocess.run(
        [sys.executable, str(script)],
        input=frames,
        capture_output=True,
        timeout=30,
        env={**env, "PYTHONPATH": ""},
        cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout, proc.stderr.decode()


def _replies(data: bytes) -> list[tuple[int, str | None]]:
    stream = io.BytesIO(data)
    out = []
    while (frame := read_frame(stream)) is not None:
        reply = decode_reply(frame)
        out.append((reply.sequence, reply.message))
    return out


def test_sqlite_read_model_applies_redelivered_events_once(tmp_path: Path) -> None:
    import os

    frames = encode_init(InitFields(plugin_name="orders", version="0.1.0", target="linux-x86_64"))
    frames += encode_event(_event(1, "created"), 0)
    frames += encode_event(_event(2, "paid"), 1)
    frames += encode_event(_event(2, "paid"), 2)  # redelivery
    frames += encode_event(_event(3, "x", with_state=False), 3)  # needs state: rejected
    db = tmp_path / "orders.db"
    env = {
        **os.environ,
        "EVENTDBX_PLUGIN_ACK": "1",
        "EVENTDBX_PLUGIN_NAME": "orders",
        "READ_MODEL_DB": str(db),
    }
    out, err = _run_plugin(EXAMPLES / "sqlite_read_model.py", frames, env, tmp_path)
    assert _replies(out) == [
        (0, None),
        (1, None),
        (2, None),
        (3, "permanent: needs --payload all or state-only"),
    ]
    assert "started orders 0.1.0 on linux-x86_64" in err
    row = (
        sqlite3.connect(db)
        .execute("select version, status, total, applied from aggregates")
        .fetchone()
    )
    assert row == (2, "paid", "15", 2)


def test_jsonl_writer_without_acks_writes_nothing_on_stdout(tmp_path: Path) -> None:
    import os

    frames = encode_event(_event(1, "created"), 0) + encode_event(
        _event(1, "created", agg="o-2"), 1
    )
    target = tmp_path / "events.jsonl"
    env = {**os.environ, "EVENTDBX_PLUGIN_ACK": "0", "EVENTS_FILE": str(target)}
    out, _ = _run_plugin(EXAMPLES / "jsonl_writer.py", frames, env, tmp_path)
    assert out == b""
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["aggregate"] for line in lines] == ["order::o-1", "order::o-2"]
    assert lines[0]["payload"] == {"status": "created"}
    assert lines[0]["state"] == {"status": "created", "total": "15"}


def test_async_handlers_retry_and_stray_prints(monkeypatch: object) -> None:
    plugin = Plugin(name="t")
    plugin.ack = True
    seen: list[str] = []

    @plugin.on_event
    async def handle(event: object) -> None:
        seen.append(event.aggregate_id)  # type: ignore[attr-defined]
        if event.aggregate_id == "o-2":  # type: ignore[attr-defined]
            raise Retry("downstream busy")
        if event.aggregate_id == "o-3":  # type: ignore[attr-defined]
            raise Reject("bad event")

    frames = b"".join(encode_event(_event(1, "c", agg=f"o-{n}"), n) for n in (1, 2, 3))
    out = io.BytesIO()
    plugin.run(stdin=io.BytesIO(frames), stdout=out)
    assert seen == ["o-1", "o-2", "o-3"]
    assert _replies(out.getvalue()) == [
        (1, None),
        (2, "downstream busy"),
        (3, "permanent: bad event"),
    ]


def test_event_view_fields() -> None:
    from eventdbx.control.plugin_codec import decode_envelope
    from eventdbx.sdk.plugin_events import event_from_fields

    which, body = decode_envelope(encode_event(_event(2, "paid"), 7))
    event = event_from_fields(body)
    assert which == "event"
    assert (event.sequence, event.version, event.event_id) == (7, 2, "1002")
    assert event.created_at.isoformat() == "2025-10-26T12:00:00.123456+00:00"
    assert event.payload == {"status": "paid"}
    assert event.state is not None and event.state.entries == {"status": "paid", "total": "15"}
    assert event.schema is None and event.extensions is None


def test_decode_incoming_matches_the_dict_decoder() -> None:
    from eventdbx.control.plugin_codec import decode_envelope, decode_incoming
    from eventdbx.sdk.plugin_events import event_from_fields, event_from_frame

    for fields in (_event(2, "paid"), _event(3, "x", with_state=False)):
        frame = encode_event(fields, 9)
        incoming = decode_incoming(frame)
        assert incoming.event == fields and incoming.sequence == 9 and incoming.init is None
        assert event_from_frame(9, fields) == event_from_fields(decode_envelope(frame)[1])
    init = InitFields(plugin_name="p", version="1.0", target="linux-x86_64", transport="stdio")
    assert decode_incoming(encode_init(init)).init == init


def test_ack_fast_path_is_byte_identical_to_pycapnp() -> None:
    from eventdbx.control.plugin_codec import Reply, _schema, decode_reply, encode_reply

    for sequence in (0, 1, 255, 2**40 + 3, 2**64 - 1):
        message = _schema().PluginEnvelope.new_message()
        message.init("ack").sequence = sequence
        reference = message.to_bytes()
        assert encode_reply(Reply(sequence=sequence)) == reference
        assert decode_reply(reference) == Reply(sequence=sequence)
    error = encode_reply(Reply(sequence=4, message="boom"))
    assert decode_reply(error) == Reply(sequence=4, message="boom")


class _Trickle(io.RawIOBase):
    """A stdin that returns at most `step` bytes per read, so frames arrive split at every boundary."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        chunk = self.data[self.pos : self.pos + self.step]
        self.pos += len(chunk)
        view = memoryview(buffer)  # type: ignore[arg-type]
        view[: len(chunk)] = chunk
        return len(chunk)


def test_frames_split_across_reads_are_all_handled_and_acked_in_order() -> None:
    frames = encode_init(InitFields(plugin_name="t", version="1", target="x"))
    frames += b"".join(encode_event(_event(n, "s", agg=f"o-{n}"), n) for n in range(1, 41))
    for step in (1, 7, 100, 1 << 16):
        plugin = Plugin(name="t")
        plugin.ack = True
        inits: list[str] = []
        seen: list[int] = []
        plugin.on_init(lambda init, inits=inits: inits.append(init.plugin_name))
        plugin.on_event(lambda event, seen=seen: seen.append(event.sequence))
        out = io.BytesIO()
        plugin.run(stdin=_Trickle(frames, step), stdout=out)  # type: ignore[arg-type]
        assert inits == ["t"] and seen == list(range(1, 41))
        assert _replies(out.getvalue()) == [(n, None) for n in range(1, 41)]


def test_truncated_input_is_an_error() -> None:
    import pytest

    frame = encode_event(_event(1, "s"), 0)
    plugin = Plugin(name="t")
    with pytest.raises(EOFError):
        plugin.run(stdin=io.BytesIO(frame + frame[:10]), stdout=io.BytesIO())
