"""Invariant I1 under kill -9: an enqueuer process killed at random moments while a writer appends.

Every event must end with exactly one non-replay job per emitting plugin, and no pass may ever hit the unique index.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from enqueuer_support import append, make_settings, plugin, write_plugins

from eventdbx.plugins import enqueuer as enq
from eventdbx.store import events as store_events
from eventdbx.store.database import Database
from eventdbx.store.plugin_queue import PluginQueue

CHILD = """
import sys
from eventdbx.config import load_settings
from eventdbx.plugins.enqueuer import enqueue_once
settings = load_settings(sys.argv[1], create=False)
print("ready", flush=True)
while True:
    enqueue_once(settings)
"""
KILLS = 24


def _writer(db: Database, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        append(db, "order", f"o{rng.randrange(25)}", f'{{"n":{rng.randrange(1000)}}}')


@pytest.mark.slow
def test_exactly_one_job_per_event_across_sigkills(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    write_plugins(settings, plugin("a"), plugin("b", payload_mode="event-only", ordering="none"))
    enq.init_cursor(settings, "a")
    enq.init_cursor(settings, "b")
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    for i in range(600):  # a backlog so the first passes run long transactions
        append(db, "order", f"o{i % 25}")
    rng = random.Random(1234)
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(db, stop, rng), daemon=True)
    writer.start()
    errors = tmp_path / "child.err"
    try:
        for _ in range(KILLS):
            with errors.open("a") as err:
                child = subprocess.Popen(
                    [sys.executable, "-c", CHILD, str(settings.config_path)],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0.0, 0.4))
            child.send_signal(signal.SIGKILL)
            assert child.wait(10) == -signal.SIGKILL, errors.read_text()
            child.stdout.close()
    finally:
        stop.set()
        writer.join(10)
    assert "Traceback" not in errors.read_text()
    probe = PluginQueue.open(settings.paths.plugin_queue)
    # the killed children did (part of) the enqueueing, not only the catch-up
    assert probe.counts().pending > 0
    probe.close()
    while enq.enqueue_once(settings):
        pass
    with db.read() as conn:
        head = store_events.head_seq(conn)
        expected = Counter(r.event_id for _, r in store_events.events_after(conn, 0, head + 1))
    db.close()
    queue = PluginQueue.open(settings.paths.plugin_queue)
    for name in ("a", "b"):
        jobs = Counter(j.event_id for j in queue.list_jobs(plugin=name) if not j.replay)
        assert jobs == expected, name
        state = queue.get_state(name)
        assert state is not None and state.cursor == head
    queue.close()
    assert head > 700


@pytest.mark.slow
def test_concurrent_enqueuers_never_duplicate(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    write_plugins(settings, plugin("a", payload_mode="event-only"))
    enq.init_cursor(settings, "a")
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(db, stop, random.Random(7)), daemon=True)
    errors = tmp_path / "child.err"
    with errors.open("a") as err:
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(settings.config_path)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            for _ in range(3)
        ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    writer.start()
    deadline = time.monotonic() + 3
    queue = PluginQueue.open(settings.paths.plugin_queue)
    while time.monotonic() < deadline and queue.counts().pending < 300:
        time.sleep(0.05)
    stop.set()
    writer.join(10)
    time.sleep(0.3)  # let the children race over the tail of the log
    for child in children:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
    assert "Traceback" not in errors.read_text()
    while enq.enqueue_once(settings):
        pass
    with db.read() as conn:
        head = store_events.head_seq(conn)
        expected = Counter(r.event_id for _, r in store_events.events_after(conn, 0, head + 1))
    db.close()
    assert Counter(j.event_id for j in queue.list_jobs(plugin="a")) == expected
    queue.close()
