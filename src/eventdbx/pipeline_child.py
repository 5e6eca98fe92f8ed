"""The plugin pipeline process's entry point: run PluginPipeline until the daemon says stop or goes away.

Messages on the SOCK_SEQPACKET socket from the daemon: `w` (a group commit: run an enqueue pass) and `s<pickle>`
(Settings: the first message, then live-key refreshes). To the daemon: `r` once the pipeline runs. SIGTERM or SIGINT
stop it gracefully (plugins.md §4). It dies with the daemon: PR_SET_PDEATHSIG(SIGKILL) where Linux offers it, which
leaves the queue exactly as a SIGKILLed daemon did before the split; EOF on the socket otherwise (a graceful stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from eventdbx.pipeline_process import READY, SETTINGS, WAKE

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.pipeline import PluginPipeline

log = logging.getLogger("eventdbx.plugin")
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the daemon dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the daemon died before prctl took effect
        os._exit(0)


def background_thread() -> None:
    """Run the calling worker thread under SCHED_IDLE (Linux: per thread; elsewhere a no-op).

    Enqueue passes and queue I/O are background work: on contended cores (2 here, clients on the same machine) a
    normal-priority thread still takes whole time slices from the daemon's socket loop and writer, which showed up in
    the append p99 with a dead sink (plugins.md §4: ≤ 110 % of no plugins); nice 10 or 19 and SCHED_BATCH did not
    help, SCHED_IDLE did. The loop thread stays normal, so process plugin workers (forked from it) are unaffected.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _first_settings(sock: socket.socket) -> Settings:
    message = sock.recv(1 << 20)
    if not message.startswith(SETTINGS):
        os._exit(0)  # the daemon died before sending anything
    settings: Settings = pickle.loads(message[1:])
    return settings


def main(argv: Sequence[str]) -> int:
    """`<socket fd> <daemon pid> [--stderr]`: serve until stopped; returns the exit status."""
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    sock = socket.socket(fileno=fd)
    settings = _first_settings(sock)
    from eventdbx.daemon_log import configure_logging

    configure_logging(settings.paths.logs_dir, also_stderr="--stderr" in argv, rotate=False)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(settings, sock))
    return 0


class _Link:
    """Reads the daemon's messages on the loop and turns them into pipeline calls."""

    def __init__(self, sock: socket.socket, pipeline: PluginPipeline, stop: asyncio.Event) -> None:
        self.sock = sock
        self.pipeline = pipeline
        self.stop = stop

    def on_readable(self) -> None:
        woke = False
        while True:
            try:
                message = self.sock.recv(1 << 20)
            except BlockingIOError:
                break
            except OSError:
                message = b""
            if not message:
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
                if not self.stop.is_set():
                    log.warning("the daemon went away; stopping the plugin pipeline")
                    self.stop.set()
                break
            if message == WAKE:
                woke = True
            elif message.startswith(SETTINGS):
                self.pipeline.refresh_settings(pickle.loads(message[1:]))
        if woke:
            self.pipeline.wake()


async def _serve(settings: Settings, sock: socket.socket) -> None:
    from eventdbx.plugins.pipeline import PluginPipeline

    loop = asyncio.get_running_loop()
    loop.set_default_executor(
        ThreadPoolExecutor(thread_name_prefix="pipeline", initializer=background_thread)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pipeline = PluginPipeline(settings, thread_setup=background_thread)
    try:
        await pipeline.start()
        sock.setblocking(False)
        link = _Link(sock, pipeline, stop)
        loop.add_reader(sock.fileno(), link.on_readable)
        with contextlib.suppress(OSError):
            sock.send(READY)
        await stop.wait()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(sock.fileno())
    finally:
        await pipeline.aclose()
        sock.close()
