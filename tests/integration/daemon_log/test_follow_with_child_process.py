"""The `plugin start --foreground` follower sees every line of a real child process once, in order, across rollovers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from log_child_support import CHILD_LINE, CHILD_LINES, daemon_handler, force_rollover, start_child

from eventdbx.cli.log_follower import LogFollower, follow_log

ROLLOVER_BYTES = 60_000


def _wait_for_line(lines: list[str], wanted: str, start: int, timeout: float) -> int:
    """The index of the first line from `start` on that ends with `wanted`, or -1 once `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        end = len(lines)
        found = next((i for i in range(start, end) if lines[i].endswith(wanted)), -1)
        if found >= 0 or time.monotonic() >= deadline:
            return found
        start = end
        time.sleep(0.001)


def test_the_follower_loses_and_doubles_no_line_of_a_child_across_rollovers(tmp_path: Path) -> None:
    handler, daemon = daemon_handler(tmp_path, "follow_test.daemon")
    seen: list[str] = []
    stop = threading.Event()
    follower = threading.Thread(
        target=follow_log, args=(LogFollower(tmp_path / "eventdbx.log"), seen.append, stop, 0.001)
    )
    follower.start()
    child = start_child(tmp_path)
    rollovers = position = 0
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            if (tmp_path / "eventdbx.log").stat().st_size < ROLLOVER_BYTES:
                time.sleep(0.001)
                continue
            force_rollover(handler)
            rollovers += 1
            daemon.info("after rollover %d", rollovers)
            # One rollover at a time: two between polls would hide the file in the middle, as with `tail -F`.
            position = _wait_for_line(seen, f"after rollover {rollovers}", position, 10)
            assert position >= 0, f"the follower did not reach the file of rollover {rollovers}"
        _, errors = child.communicate(timeout=60)
        assert (child.returncode, errors) == (0, "")
        assert _wait_for_line(seen, f"child line {CHILD_LINES - 1}", position, 10) >= 0
    finally:
        child.kill()
        stop.set()
        follower.join(10)
        daemon.removeHandler(handler)
        handler.close()
    assert not follower.is_alive()
    assert rollovers >= 3, f"only {rollovers} rollovers happened while the child wrote"
    child_seen = [int(m[1]) for line in seen if (m := CHILD_LINE.search(line))]
    missing = sorted(set(range(CHILD_LINES)) - set(child_seen))
    assert (len(missing), missing[:10]) == (0, []), f"after {rollovers} rollovers"
    assert child_seen == list(range(CHILD_LINES))
    assert [line for line in seen if line.startswith("after rollover")] == [
        f"after rollover {n}" for n in range(1, rollovers + 1)
    ]
