"""The daemon's side of the plugin pipeline process: spawn it, wake it after commits, restart it, stop it.

Plugin work (enqueue passes, deliveries, retries, process-worker supervision) runs in a child process so it never
competes with the control socket for the daemon's GIL. The two talk over one AF_UNIX SOCK_SEQPACKET socketpair (see
`pipeline_child` for the messages). This module holds no plugin logic and imports none, so the daemon stays lean.
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
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventdbx.config import Settings

log = logging.getLogger("eventdbx.plugin")
WAKE = b"w"
SETTINGS = b"s"
READY = b"r"
READY_SECS = 30.0
# At most one wake per this many seconds (the enqueuer's own gap between passes, so no pass comes later for it):
# under a stream of commits the daemon makes ~250 sends a second instead of one per group commit.
WAKE_GAP_SECS = 0.004
RESTART_DELAYS = (1, 2, 4, 8, 16, 30)
HEALTHY_SECS = 60.0
# Beyond the dispatcher's grace: process workers get 1.5 s + 1.5 s to stop (process_worker.WorkerTiming).
STOP_MARGIN_SECS = 5.0
_SEND_FLAGS = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)
# `-P`: the daemon's working directory must not shadow a module; the package root comes first instead.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from eventdbx.pipeline_child import main; sys.exit(main(sys.argv[2:]))"
)


class PipelineProcess:
    """Runs PluginPipeline in a supervised child process; `wake()` is the daemon's `on_commit` hook."""

    def __init__(self, settings: Settings, *, log_to_stderr: bool = False) -> None:
        self.settings = settings
        self.log_to_stderr = log_to_stderr
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._closing = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._last_wake = 0.0
        self._wake_timer: asyncio.TimerHandle | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The current child's pid (None between a crash and its restart)."""
        return self._proc.pid if self._proc is not None else None

    def wake(self) -> None:
        """A socket append committed: ask the child for an enqueue pass (coalesced, one non-blocking send)."""
        if self._wake_timer is not None:
            return  # a wake is already scheduled
        loop = asyncio.get_running_loop()
        due = self._last_wake + WAKE_GAP_SECS
        if loop.time() < due:
            self._wake_timer = loop.call_at(due, self._send_wake)
        else:
            self._send_wake()

    def _send_wake(self) -> None:
        self._wake_timer = None
        self._last_wake = asyncio.get_running_loop().time()
        sock = self._sock
        if sock is None:
            return
        # A full buffer means unread wakes are queued already; a dead child is restarted and runs a pass on start.
        with contextlib.suppress(OSError):
            sock.send(WAKE, _SEND_FLAGS)

    def refresh_settings(self, settings: Settings) -> None:
        """Forward live keys (attempts, prune policy, grace) to the child."""
        self.settings = settings
        self._send_settings()

    def _send_settings(self) -> None:
        sock = self._sock
        if sock is None:
            return  # the next child starts with self.settings
        try:
            sock.send(SETTINGS + pickle.dumps(self.settings), _SEND_FLAGS)
        except BlockingIOError:
            asyncio.get_running_loop().call_later(0.05, self._send_settings)
        except OSError:
            pass  # the child is gone; the watcher restarts it with self.settings

    async def start(self) -> None:
        """Spawn the child and wait until its pipeline runs; then supervise it (a failed start is retried)."""
        try:
            await self._spawn()
        except Exception as exc:
            if self._closing.is_set():
                return  # stopped while starting
            log.error("plugin pipeline process failed to start: %s", exc)
        if self._closing.is_set():
            return
        self._watcher = asyncio.create_task(self._watch(), name="plugin-pipeline-watcher")

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            root = str(Path(__file__).resolve().parents[1])
            args = [root, str(theirs.fileno()), str(os.getpid())]
            if self.log_to_stderr:
                args.append("--stderr")
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",
                "-c",
                _BOOT,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        ours.send(SETTINGS + pickle.dumps(self.settings), _SEND_FLAGS)
        try:
            reply = await asyncio.wait_for(
                asyncio.get_running_loop().sock_recv(ours, 16), READY_SECS
            )
        except (TimeoutError, OSError):
            reply = b""
        except BaseException:  # cancelled by aclose(), which stops the child itself
            ours.close()
            raise
        if reply != READY:
            ours.close()
            await self._kill()
            raise RuntimeError("the plugin pipeline process did not start")
        self._sock = ours

    async def _watch(self) -> None:
        """Restart the child with backoff whenever it exits unasked."""
        failures = 0
        started = time.monotonic()
        while not self._closing.is_set():
            proc = self._proc
            status = await proc.wait() if proc is not None else None
            if self._closing.is_set():
                return
            self._drop_socket()
            if time.monotonic() - started >= HEALTHY_SECS:
                failures = 0
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            failures += 1
            log.error(
                "plugin pipeline process exited (status %s); restarting in %ss", status, delay
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            if self._closing.is_set():
                return
            started = time.monotonic()
            try:
                await self._spawn()
            except Exception as exc:  # counted as another exit; the loop backs off and retries
                log.error("plugin pipeline process failed to start: %s", exc)
                continue
            self.restarts += 1
            log.info("plugin pipeline process restarted (pid %s)", self.pid)

    def _drop_socket(self) -> None:
        if self._wake_timer is not None:
            self._wake_timer.cancel()
            self._wake_timer = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def aclose(self) -> None:
        """Graceful stop: SIGTERM the child and wait for its pipeline's own shutdown, SIGKILL past the deadline."""
        self._closing.set()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            deadline = self.settings.plugin_queue.shutdown_grace_secs + STOP_MARGIN_SECS
            try:
                await asyncio.wait_for(proc.wait(), deadline)
            except TimeoutError:
                log.error("plugin pipeline process did not stop in %ss; killing it", deadline)
                await self._kill()
        self._drop_socket()
