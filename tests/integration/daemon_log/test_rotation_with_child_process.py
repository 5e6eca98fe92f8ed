"""Rotation loses no line: a real child process logs beside the rotating daemon handler through several rollovers."""

from __future__ import annotations

import gzip
import re
import time
from collections import Counter
from pathlib import Path

from log_child_support import CHILD_LINE, CHILD_LINES, daemon_handler, force_rollover, start_child

from eventdbx.daemon_log import KEEP

ROLLOVER_BYTES = 90_000
MAX_ROLLOVERS = KEEP - 2  # below the pruning limit, so every archive is still there to count


def _all_lines(directory: Path) -> list[str]:
    text = (directory / "eventdbx.log").read_text(encoding="utf-8")
    for archive in sorted(directory.glob("eventdbx_*.log.gz")):
        with gzip.open(archive, "rt", encoding="utf-8") as src:
            text += src.read()
    return text.splitlines()


def _wait_for_no_plain_rotated_files(directory: Path, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        plain = [p.name for p in directory.glob("eventdbx_*.log")]
        if not plain or time.monotonic() >= deadline:
            return plain
        time.sleep(0.02)


def test_no_line_of_either_process_is_lost_or_doubled_across_rollovers(tmp_path: Path) -> None:
    handler, daemon = daemon_handler(tmp_path, "rotation_test.daemon")
    child = start_child(tmp_path)
    rollovers = daemon_lines = 0
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and rollovers < MAX_ROLLOVERS and time.monotonic() < deadline:
            if (tmp_path / "eventdbx.log").stat().st_size < ROLLOVER_BYTES:
                time.sleep(0.001)
                continue
            daemon.info("daemon line %d", daemon_lines)
            daemon_lines += 1
            force_rollover(handler)
            rollovers += 1
            daemon.info("daemon line %d", daemon_lines)
            daemon_lines += 1
        _, errors = child.communicate(timeout=60)
        assert child.returncode == 0, errors
        assert errors == ""
        assert _wait_for_no_plain_rotated_files(tmp_path, 30) == []
    finally:
        child.kill()
        daemon.removeHandler(handler)
        handler.close()
    assert rollovers >= 3, f"only {rollovers} rollovers happened while the child wrote"
    lines = _all_lines(tmp_path)
    child_seen = Counter(int(m[1]) for line in lines if (m := CHILD_LINE.search(line)))
    daemon_seen = Counter(int(m[1]) for line in lines if (m := re.fullmatch(r"daemon line (\d+)", line)))
    missing = sorted(set(range(CHILD_LINES)) - set(child_seen))
    doubled = sorted(n for n, count in child_seen.items() if count > 1)
    assert (len(missing), missing[:10], doubled[:10]) == (0, [], []), f"after {rollovers} rollovers"
    assert sorted(daemon_seen.elements()) == list(range(daemon_lines))
    assert len(lines) == CHILD_LINES + daemon_lines
