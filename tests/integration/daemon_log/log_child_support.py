"""A real child process logging numbered lines beside a rotating daemon handler, and a forced rollover."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from eventdbx.daemon_log import DailyGzipHandler

CHILD_LINES = 20_000
CHILD_LINE = re.compile(r"eventdbx\.child: child line (\d+)$")
_CHILD = """
import logging, sys
from pathlib import Path
from eventdbx.daemon_log import configure_logging

configure_logging(Path(sys.argv[1]), also_stderr=False, rotate=False)
log = logging.getLogger("eventdbx.child")
for i in range(int(sys.argv[2])):
    log.info("child line %d", i)
"""


def start_child(logs_dir: Path, lines: int = CHILD_LINES) -> subprocess.Popen[str]:
    """Start the child (the pipeline process's logging setup) writing `lines` numbered lines as fast as it can."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDBX_")}
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(logs_dir), str(lines)], env=env,
                            stderr=subprocess.PIPE, text=True)


def daemon_handler(logs_dir: Path, name: str) -> tuple[DailyGzipHandler, logging.Logger]:
    """The daemon's rotating handler on `logs_dir`, attached to a logger of its own."""
    handler = DailyGzipHandler(logs_dir)
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler, logger


def force_rollover(handler: DailyGzipHandler) -> None:
    """Roll over now, under the handler's lock as a midnight rollover would be."""
    handler.acquire()
    try:
        handler.doRollover()
    finally:
        handler.release()
