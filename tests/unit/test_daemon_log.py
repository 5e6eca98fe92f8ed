"""Daemon log rotation: names, -n suffixes, 14 kept, leftovers gzipped at start, writer locks, the line format."""

from __future__ import annotations

import fcntl
import gzip
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventdbx.daemon_log import KEEP, DailyGzipHandler, SharedFileHandler, configure_logging

STAMP = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def _restore_eventdbx_logger() -> Iterator[None]:
    root = logging.getLogger("eventdbx")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    root.propagate = saved[2]


def _emit(handler: logging.Handler, message: str) -> None:
    handler.handle(logging.makeLogRecord({"name": "eventdbx.test", "msg": message, "levelno": logging.INFO,
                                          "levelname": "INFO"}))


def _gunzip(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as src:
        return src.read()


def _rotated(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("eventdbx_"))


def test_rollover_gzips_the_old_lines_under_the_clock_stamp_and_suffixes_clashes(tmp_path: Path) -> None:
    handler = DailyGzipHandler(tmp_path, clock=lambda: STAMP)
    try:
        _emit(handler, "first")
        handler.doRollover()
        _emit(handler, "second")
        handler.doRollover()
        _emit(handler, "third")
        handler.doRollover()
        _emit(handler, "current")
        assert handler.wait_idle(10)
    finally:
        handler.close()
    assert _rotated(tmp_path) == ["eventdbx_2026-03-04_05-06-07-1.log.gz", "eventdbx_2026-03-04_05-06-07-2.log.gz",
                                  "eventdbx_2026-03-04_05-06-07.log.gz"]
    assert _gunzip(tmp_path / "eventdbx_2026-03-04_05-06-07.log.gz") == "first\n"
    assert _gunzip(tmp_path / "eventdbx_2026-03-04_05-06-07-1.log.gz") == "second\n"
    assert _gunzip(tmp_path / "eventdbx_2026-03-04_05-06-07-2.log.gz") == "third\n"
    assert (tmp_path / "eventdbx.log").read_text() == "current\n"


def test_a_line_after_midnight_utc_rotates_first(tmp_path: Path) -> None:
    now = [datetime(2026, 3, 4, 23, 59, 59, 500_000, tzinfo=UTC).timestamp()]
    handler = DailyGzipHandler(tmp_path, clock=lambda: now[0])
    try:
        _emit(handler, "before midnight")
        assert _rotated(tmp_path) == []
        now[0] = datetime(2026, 3, 5, 0, 0, 0, 200_000, tzinfo=UTC).timestamp()
        _emit(handler, "after midnight")
        assert handler.wait_idle(10)
    finally:
        handler.close()
    assert _rotated(tmp_path) == ["eventdbx_2026-03-05_00-00-00.log.gz"]
    assert _gunzip(tmp_path / "eventdbx_2026-03-05_00-00-00.log.gz") == "before midnight\n"
    assert (tmp_path / "eventdbx.log").read_text() == "after midnight\n"


def test_only_the_newest_14_archives_are_kept(tmp_path: Path) -> None:
    old = [f"eventdbx_2020-01-{day:02d}_00-00-00.log.gz" for day in range(1, 21)]
    old.insert(19, "eventdbx_2020-01-19_00-00-00-1.log.gz")  # after its unsuffixed twin, before the 20th
    for name in old:
        with gzip.open(tmp_path / name, "wb") as dst:
            dst.write(name.encode())
    (tmp_path / "notes.txt").write_text("not an archive")
    handler = DailyGzipHandler(tmp_path, clock=lambda: STAMP)
    try:
        _emit(handler, "newest")
        handler.doRollover()
        assert handler.wait_idle(10)
    finally:
        handler.close()
    kept = [*old, "eventdbx_2026-03-04_05-06-07.log.gz"][-KEEP:]
    assert KEEP == 14
    assert _rotated(tmp_path) == sorted(kept)
    assert "eventdbx_2020-01-19_00-00-00-1.log.gz" in kept and "eventdbx_2020-01-07_00-00-00.log.gz" not in kept
    assert (tmp_path / "notes.txt").exists()


def test_a_leftover_plain_rotated_file_is_gzipped_at_start(tmp_path: Path) -> None:
    (tmp_path / "eventdbx_2026-01-02_03-04-05.log").write_text("left by a killed daemon\n")
    (tmp_path / "eventdbx_2026-01-02_03-04-05.log.gz.tmp").write_bytes(b"half a gzip")
    (tmp_path / "eventdbx_notes.log").write_text("not ours\n")
    configure_logging(tmp_path, also_stderr=False)
    [handler] = logging.getLogger("eventdbx").handlers
    assert isinstance(handler, DailyGzipHandler)
    assert handler.wait_idle(10)
    assert _rotated(tmp_path) == ["eventdbx_2026-01-02_03-04-05.log.gz", "eventdbx_notes.log"]
    assert _gunzip(tmp_path / "eventdbx_2026-01-02_03-04-05.log.gz") == "left by a killed daemon\n"


def test_compression_waits_for_a_writer_holding_the_old_file(tmp_path: Path) -> None:
    handler = DailyGzipHandler(tmp_path, clock=lambda: STAMP)
    try:
        _emit(handler, "daemon line")
        with (tmp_path / "eventdbx.log").open("a", encoding="utf-8") as writer:
            fcntl.flock(writer.fileno(), fcntl.LOCK_SH)  # a child between its name check and its write
            handler.doRollover()
            assert not handler.wait_idle(0.2)
            assert _rotated(tmp_path) == ["eventdbx_2026-03-04_05-06-07.log"]
            writer.write("late child line\n")
            writer.flush()
            fcntl.flock(writer.fileno(), fcntl.LOCK_UN)
            assert handler.wait_idle(10)
    finally:
        handler.close()
    assert _gunzip(tmp_path / "eventdbx_2026-03-04_05-06-07.log.gz") == "daemon line\nlate child line\n"
    assert _rotated(tmp_path) == ["eventdbx_2026-03-04_05-06-07.log.gz"]


def test_a_compression_that_cannot_lock_leaves_the_file_for_the_next_start(tmp_path: Path) -> None:
    handler = DailyGzipHandler(tmp_path, clock=lambda: STAMP, lock_wait_secs=0.05)
    try:
        _emit(handler, "kept")
        with (tmp_path / "eventdbx.log").open("a", encoding="utf-8") as writer:
            fcntl.flock(writer.fileno(), fcntl.LOCK_SH)
            handler.doRollover()
            assert handler.wait_idle(10)
    finally:
        handler.close()
    assert _rotated(tmp_path) == ["eventdbx_2026-03-04_05-06-07.log"]
    again = DailyGzipHandler(tmp_path)
    try:
        assert again.wait_idle(10)
    finally:
        again.close()
    assert _gunzip(tmp_path / "eventdbx_2026-03-04_05-06-07.log.gz") == "kept\n"


def test_the_shared_writer_follows_the_name_and_skips_a_file_being_compressed(tmp_path: Path) -> None:
    log = tmp_path / "eventdbx.log"
    writer = SharedFileHandler(log, encoding="utf-8")
    try:
        _emit(writer, "one")
        log.rename(tmp_path / "rotated.log")
        with (tmp_path / "rotated.log").open("rb") as compressor:
            fcntl.flock(compressor.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            _emit(writer, "two")
        log.rename(tmp_path / "rotated-again.log")
        _emit(writer, "three")
    finally:
        writer.close()
    assert (tmp_path / "rotated.log").read_text() == "one\n"
    assert (tmp_path / "rotated-again.log").read_text() == "two\n"
    assert log.read_text() == "three\n"


@pytest.mark.parametrize("rotate", [True, False])
def test_the_line_format_is_unchanged(tmp_path: Path, rotate: bool, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(tmp_path, also_stderr=False, rotate=rotate)
    log = logging.getLogger("eventdbx.format")
    log.warning("careful %s", "now")
    log.info("plain")
    log.debug("hidden at info")
    for handler in logging.getLogger("eventdbx").handlers:
        handler.flush()
    lines = (tmp_path / "eventdbx.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert len(lines) == 2
    assert re.fullmatch(stamp + r" WARN eventdbx\.format: careful now", lines[0])
    assert re.fullmatch(stamp + r" INFO eventdbx\.format: plain", lines[1])
    assert capsys.readouterr() == ("", "")
