"""Enqueuer on real SQLite files: every row of the plugins.md §2 rules table, envelopes, batches, replay, daemon loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from enqueuer_support import append, make_settings, plugin, write_plugins

from eventdbx.clock import FakeClock
from eventdbx.config import Settings
from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.state import payload_map, stored_payload_map
from eventdbx.plugins import enqueuer as enq
from eventdbx.plugins.registry import load_plugins
from eventdbx.schema.model import new_schema
from eventdbx.store.database import Database
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import JobStatus, Resolution
from eventdbx.store.schemas import save_schema


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Settings, Database, PluginQueue]]:
    settings = make_settings(tmp_path / "data")
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    queue = PluginQueue.open(settings.paths.plugin_queue)
    yield settings, db, queue
    queue.close()
    db.close()


def cursor(queue: PluginQueue, name: str) -> int | None:
    state = queue.get_state(name)
    return None if state is None else state.cursor


def live_jobs(queue: PluginQueue, name: str) -> list[tuple[str, int]]:
    return [(j.aggregate_id, j.version) for j in queue.list_jobs(plugin=name) if not j.replay]


def test_enabled_plugin_gets_one_job_per_event_with_state_as_of_the_event(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook"))
    assert enq.init_cursor(settings, "hook") == 0
    append(db, "order", "o1", '{"status":"created","total":15}')
    append(db, "order", "o1", '{"status":"shipped"}')
    append(db, "order", "o2", '{"x":1.50}')
    assert enq.enqueue_once(settings, clock=FakeClock()) == 3
    assert enq.enqueue_once(settings) == 0
    jobs = queue.list_jobs(plugin="hook")
    assert [(j.aggregate_id, j.version, j.status) for j in jobs] == [
        ("o1", 1, JobStatus.PENDING),
        ("o1", 2, JobStatus.PENDING),
        ("o2", 1, JobStatus.PENDING),
    ]
    first = orjson.loads(jobs[0].envelope)
    assert first["state"] == {
        "aggregate_id": "o1",
        "aggregate_type": "order",
        "archived": False,
        "merkle_root": "r1",
        "state": {"status": "created", "total": "15"},
        "version": 1,
    }
    assert orjson.loads(jobs[1].envelope)["state"]["state"] == {"status": "shipped", "total": "15"}
    assert '"payload":{"x":1.50}' in jobs[2].envelope and "schema" not in first
    assert jobs[0].label == "log (hook)" and jobs[0].created_at == FakeClock().now
    assert cursor(queue, "hook") == 3


# Canonical (shortest round-trip) texts that the §4 parser would read back 1 ulp off.
DRIFTING = ("7.864443854425285e-10", "6.4715616531930254e-21")


def test_envelope_state_and_payload_carry_the_stored_number_text_exactly(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    for text in DRIFTING:  # the premise: re-parsing with parse_json would change these
        assert (
            payload_map(parse_json(f'{{"x":{text}}}'))
            != {"x": text}
            == stored_payload_map(f'{{"x":{text}}}')
        )
    write_plugins(settings, plugin("hook"))
    enq.init_cursor(settings, "hook")
    append(db, "order", "o1", f'{{"x":{DRIFTING[0]}}}')  # v1: folded from the log (not current)
    append(db, "order", "o1", f'{{"y":{DRIFTING[1]}}}')  # v2: folded from the cached v1 state
    append(db, "order", "o1", '{"z":0.1}')  # v3: the stored aggregate row
    assert enq.enqueue_once(settings) == 3
    envelopes = [j.envelope for j in queue.list_jobs(plugin="hook")]
    assert f'"payload":{{"x":{DRIFTING[0]}}}' in envelopes[0]
    assert f'"payload":{{"y":{DRIFTING[1]}}}' in envelopes[1]
    states = [orjson.loads(e)["state"]["state"] for e in envelopes]
    assert states == [
        {"x": DRIFTING[0]},
        {"x": DRIFTING[0], "y": DRIFTING[1]},
        {"x": DRIFTING[0], "y": DRIFTING[1], "z": "0.1"},
    ]


def test_emit_events_false_follows_the_head(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("rest", emit_events=False))
    enq.init_cursor(settings, "rest")
    append(db, "order", "o1")
    append(db, "order", "o1")
    assert enq.enqueue_once(settings) == 0
    assert cursor(queue, "rest") == 2 and queue.counts().pending == 0


def test_disabled_pauses_and_enable_enqueues_or_skips_the_backlog(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("a", enabled=False), plugin("b", enabled=False))
    enq.init_cursor(settings, "a")
    enq.init_cursor(settings, "b")
    for _ in range(3):
        append(db, "order", "o1")
    assert enq.enqueue_once(settings) == 0
    assert (cursor(queue, "a"), enq.backlog(settings, "a")) == (0, 3)
    assert enq.skip_backlog(settings, "b") == 3
    write_plugins(settings, plugin("a"), plugin("b"))
    assert enq.enqueue_once(settings) == 3
    assert (
        live_jobs(queue, "a") == [("o1", 1), ("o1", 2), ("o1", 3)] and live_jobs(queue, "b") == []
    )


def test_newly_configured_starts_at_the_head(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    append(db, "order", "o1")
    enq.init_cursor(settings, "late")
    write_plugins(settings, plugin("late"))
    append(db, "order", "o1")
    assert enq.enqueue_once(settings) == 1
    assert live_jobs(queue, "late") == [("o1", 2)]


def test_removed_plugin_loses_cursor_and_open_jobs(env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("gone"), plugin("stay"))
    enq.init_cursor(settings, "gone")
    enq.init_cursor(settings, "stay")
    append(db, "order", "o1")
    append(db, "order", "o2")
    enq.enqueue_once(settings)
    [job] = queue.claim(
        "gone",
        now=time.time(),
        limit=1,
        lease_secs=35,
        ordering=load_plugins(settings.paths.plugins_json)[0].ordering,
    )
    queue.mark_delivered(job.id, job.claim_token or "", started_at=0, now=time.time())
    write_plugins(settings, plugin("stay"))
    enq.enqueue_once(settings)
    # a row this young may be a `plugin config` in flight
    assert queue.get_state("gone") is not None
    monkeypatch.setattr(enq, "REMOVAL_GRACE_SECS", 0.0)
    enq.enqueue_once(settings)
    assert queue.get_state("gone") is None
    assert [j.status for j in queue.list_jobs(plugin="gone")] == [JobStatus.DONE]
    assert len(live_jobs(queue, "stay")) == 2


def test_missing_cursor_is_created_at_the_head_with_info(
    env, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    append(db, "order", "o1")
    append(db, "order", "o1")
    write_plugins(settings, plugin("hand"))
    with caplog.at_level(logging.INFO, logger="eventdbx.plugin"):
        assert enq.enqueue_once(settings) == 0
    assert "plugin 'hand' has no cursor; starting at the log head (seq 2)" in caplog.messages
    assert cursor(queue, "hand") == 2


def test_broken_plugins_json_removes_nothing(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook"))
    enq.init_cursor(settings, "hook")
    settings.paths.plugins_json.write_text("[{")
    append(db, "order", "o1")
    assert enq.enqueue_once(settings) == 0
    assert cursor(queue, "hook") == 0


def test_cursor_ahead_of_head_is_clamped(env, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook"))
    enq.init_cursor(settings, "hook")
    append(db, "order", "o1")
    append(db, "order", "o1")
    enq.enqueue_once(settings)
    with db.write() as conn:  # simulate a power loss that kept the queue but lost the last event
        conn.execute("DELETE FROM events WHERE seq = 2")
    with caplog.at_level(logging.ERROR, logger="eventdbx.plugin"):
        enq.enqueue_once(settings)
    assert cursor(queue, "hook") == 1 and any("clamped, 1 job(s)" in m for m in caplog.messages)
    first, lost = queue.list_jobs(plugin="hook")
    assert first.status is JobStatus.PENDING
    assert (lost.status, lost.last_error) == (
        JobStatus.DEAD,
        "event no longer exists in the event store",
    )


def test_concurrent_enqueuer_progress_is_never_clamped(
    env, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Issue 4 race: another enqueuer moves the cursor past the head this pass read; that is no power loss.

    Before the fix the pass clamped the cursor back to its stale head and the next batch re-inserted those events
    (the unique (plugin, event_id) index refused them and the pass failed).
    """
    settings, db, queue = env
    write_plugins(settings, plugin("hook", payload_mode="event-only"))
    enq.init_cursor(settings, "hook")
    for _ in range(3):
        append(db, "order", "o1")
    slow, fast = enq.Enqueuer(settings), enq.Enqueuer(settings)
    real_list_states, real_head = slow.queue.list_states, enq._head
    slow_heads: list[int] = []

    def raced_list_states():  # type: ignore[no-untyped-def]
        for _ in range(
            2
        ):  # meanwhile another enqueuer catches up past the head `slow` may have read
            append(db, "order", "o2")
        assert fast.run_pass() == 5
        return real_list_states()

    def head(
        database: Database,
    ) -> int:  # the pass's own head read is stale (3), later reads are real
        if database is not slow.db:
            return real_head(database)
        slow_heads.append(real_head(database))
        return 3 if len(slow_heads) == 1 else slow_heads[-1]

    monkeypatch.setattr(slow.queue, "list_states", raced_list_states)
    monkeypatch.setattr(enq, "_head", head)
    try:
        with caplog.at_level(logging.ERROR, logger="eventdbx.plugin"):
            assert slow.run_pass() == 0
            monkeypatch.undo()
            append(db, "order", "o3")
            assert slow.run_pass() == 1 and fast.run_pass() == 0
    finally:
        slow.close()
        fast.close()
    assert len(slow_heads) == 2  # the pass's head, then the clamp's re-read under the write lock
    assert not [m for m in caplog.messages if "clamped" in m]
    assert cursor(queue, "hook") == 6
    jobs = queue.list_jobs(plugin="hook")
    assert [j.status for j in jobs] == [JobStatus.PENDING] * 6
    assert len({j.event_id for j in jobs}) == 6


def test_schema_only_without_schema_is_done_empty(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("reg", payload_mode="schema-only"))
    enq.init_cursor(settings, "reg")
    append(db, "order", "o1")
    with db.write() as conn:
        save_schema(conn, new_schema("invoice", ["thing_changed"], None, "2025-10-20T09:00:00Z"))
    append(db, "invoice", "i1")
    enq.enqueue_once(settings)
    bare, with_schema = queue.list_jobs(plugin="reg")
    assert (bare.status, bare.resolution) == (JobStatus.DONE, Resolution.EMPTY)
    assert with_schema.status is JobStatus.PENDING
    assert orjson.loads(with_schema.envelope)["schema"]["aggregate"] == "invoice"


def test_backlog_is_enqueued_in_batches_in_order(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook", payload_mode="event-only"), plugin("other"))
    enq.init_cursor(settings, "hook")
    for i in range(1203):
        append(db, "order", f"o{i % 7}")
    enq.init_cursor(settings, "other")
    append(db, "order", "o1")
    assert enq.enqueue_once(settings) == 1205
    jobs = queue.list_jobs()
    assert [j.version for j in jobs if j.aggregate_id == "o0"] == list(range(1, 173))
    order = [j.plugin_name for j in jobs]
    # round-robin: not starved by the backlog
    assert order.index("other") < order.index("hook") + 1000
    assert len({j.id for j in jobs}) == 1205


def test_replay_marks_jobs_and_uses_the_current_mode(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook", payload_mode="state-only"))
    enq.init_cursor(settings, "hook")
    for agg in ("o1", "o1", "o2", "o1"):
        append(db, "order", agg, f'{{"last":"{agg}"}}')
    append(db, "invoice", "i1")
    [definition] = load_plugins(settings.paths.plugins_json)
    assert enq.count_replay(settings, "order", None) == (4, 2)
    assert enq.count_replay(settings, "order", "o1") == (3, 1)
    progress: list[int] = []
    assert enq.enqueue_replay(settings, definition, "order", None, progress=progress.append) == (
        4,
        2,
    )
    jobs = queue.list_jobs(plugin="hook")
    assert [(j.aggregate_id, j.version, j.replay) for j in jobs] == [
        ("o1", 1, True),
        ("o1", 2, True),
        ("o1", 3, True),
        ("o2", 1, True),
    ]
    assert [orjson.loads(j.envelope)["state"]["version"] for j in jobs] == [1, 2, 3, 1]
    assert sum(progress) == 4
    assert enq.enqueue_once(settings) == 5  # live jobs are still owed, replay or not


async def test_daemon_loop_wakes_and_polls(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook"))
    enq.init_cursor(settings, "hook")
    woken: list[set[str]] = []
    enqueuer = enq.Enqueuer(settings, queue=queue, db=db, on_jobs=woken.append)
    stop = asyncio.Event()
    task = asyncio.create_task(enqueuer.run(stop))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(append, db, "order", "o1")
    enqueuer.wake()
    deadline = time.monotonic() + 5
    while not woken and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert woken == [{"hook"}]
    other = Database.open(settings.paths.event_store, settings.durability, create=False)
    await asyncio.to_thread(append, other, "order", "o2")  # another writer: found by polling
    other.close()
    while len(woken) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(woken) == 2
    stop.set()
    await asyncio.wait_for(task, 5)
    assert queue.counts().pending == 2


def test_state_cache_never_mixes_plugins_at_different_positions(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("early"), plugin("late", enabled=False))
    enq.init_cursor(settings, "early")
    enq.init_cursor(settings, "late")
    for n in range(1, 1101):
        append(db, "order", "hot", f'{{"n":{n}}}')
    enq.enqueue_once(settings)
    write_plugins(settings, plugin("early"), plugin("late"))
    for n in range(1101, 1201):
        append(db, "order", "hot", f'{{"n":{n}}}')
    enq.enqueue_once(settings)
    for name in ("early", "late"):
        states = [orjson.loads(j.envelope)["state"] for j in queue.list_jobs(plugin=name)]
        assert all(s["state"]["n"] == str(s["version"]) for s in states), name
    assert len(queue.list_jobs(plugin="late")) == 1200


def test_large_replay_commits_batches_of_500_across_aggregates(env) -> None:  # type: ignore[no-untyped-def]
    settings, db, queue = env
    write_plugins(settings, plugin("hook", payload_mode="event-only"))
    for n in range(1, 1203):
        append(db, "order", "big" if n <= 1100 else f"small{n}", f'{{"n":{n}}}')
    [definition] = load_plugins(settings.paths.plugins_json)
    progress: list[int] = []
    assert enq.enqueue_replay(settings, definition, "order", None, progress=progress.append) == (
        1202,
        103,
    )
    assert progress == [500, 500, 202]
    versions = [j.version for j in queue.list_jobs(plugin="hook") if j.aggregate_id == "big"]
    assert versions == list(range(1, 1101))


def test_encrypted_event_store_and_queue(env) -> None:  # type: ignore[no-untyped-def]
    import base64
    import dataclasses
    import sqlite3

    settings, db, _queue = env
    dek = base64.b64encode(bytes(range(32))).decode()
    settings = dataclasses.replace(settings, data_encryption_key=dek)
    write_plugins(settings, plugin("hook"))
    enq.init_cursor(settings, "hook")
    append(db, "order", "o1", '{"secret":"s3-cret"}', dek=dek)
    append(db, "order", "o1", '{"more":"m4"}', dek=dek)
    assert enq.enqueue_once(settings) == 2
    queue = PluginQueue.open(settings.paths.plugin_queue, dek=dek)
    first, second = queue.list_jobs(plugin="hook")
    queue.close()
    assert orjson.loads(first.envelope)["event"]["payload"] == {"secret": "s3-cret"}
    # folded from sealed events
    assert orjson.loads(first.envelope)["state"]["state"] == {"secret": "s3-cret"}
    assert orjson.loads(second.envelope)["state"]["state"] == {"more": "m4", "secret": "s3-cret"}
    conn = sqlite3.connect(settings.paths.plugin_queue)
    stored = [r[0] for r in conn.execute("SELECT envelope FROM jobs")]
    conn.close()
    assert all(e.startswith("ENCv1:") and "s3-cret" not in e for e in stored)
    [definition] = load_plugins(settings.paths.plugins_json)
    assert enq.enqueue_replay(settings, definition, "order", None) == (2, 1)
