"""The daemon's composition root: open the stores, run the socket server and the plugin pipeline, stop cleanly.

It owns process-level concerns only (lock, pid file, logging, signals); every piece of behaviour lives in the
component it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eventdbx.daemon_log import configure_logging
from eventdbx.domain.timefmt import format_ts
from eventdbx.pidfile import InstanceLock, PidInfo, remove_pid_file, write_pid_file

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.pipeline_process import PipelineProcess

log = logging.getLogger("eventdbx.daemon")
SETTINGS_POLL_SECS = 1.0


def run_daemon(settings: Settings, *, foreground: bool) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    configure_logging(settings.paths.logs_dir, also_stderr=foreground)
    lock = InstanceLock(settings.data_dir / "eventdbx.lock")
    if not lock.acquire():
        message = "EventDBX server already running for this data directory"
        log.error(message)
        if foreground:
            print(f"Error: {message}", file=sys.stderr)
        return 1
    try:
        _install_uvloop()
        return asyncio.run(Daemon(settings, foreground=foreground).run())
    finally:
        lock.release()


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class Daemon:
    """Starts and stops the daemon's components in order."""

    def __init__(self, settings: Settings, *, foreground: bool = False) -> None:
        self.settings = settings
        self.foreground = foreground
        self.stop = asyncio.Event()

    async def run(self) -> int:
        """Serve until a signal asks to stop."""
        from eventdbx.pipeline_process import PipelineProcess

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        # The plugin pipeline runs in its own process (its GIL is not the socket's). It starts beside the socket
        # and is not waited for: appends never depend on it, and it catches up from its cursors.
        pipeline = PipelineProcess(self.settings, log_to_stderr=self.foreground)
        pipeline_started = asyncio.create_task(pipeline.start())
        try:
            await self._serve(pipeline)
        finally:
            pipeline_started.cancel()
            await asyncio.gather(pipeline_started, return_exceptions=True)
            await pipeline.aclose()
        return 0

    async def _serve(self, pipeline: PipelineProcess) -> None:
        from eventdbx.control.server import ControlServer
        from eventdbx.service import EventService

        service = EventService.open(self.settings, create=True)
        server = ControlServer(service, self.settings, on_commit=pipeline.wake)
        pid_path = self.settings.paths.pid_file
        try:
            await server.start()
            write_pid_file(
                pid_path,
                PidInfo(
                    pid=os.getpid(), started_at=format_ts(datetime.now(tz=UTC), suffix="+00:00")
                ),
            )
            log.info(
                "EventDBX server listening on %s (pid %d, restrict=%s)",
                self.settings.socket.bind_addr,
                os.getpid(),
                self.settings.restrict,
            )
            watcher = asyncio.create_task(self._watch_settings(service, pipeline, server))
            await self.stop.wait()
            log.info("shutting down")
            watcher.cancel()
            # The pipeline's graceful stop (plugins.md §4) runs beside the socket's drain.
            await asyncio.gather(server.close(grace=5.0), pipeline.aclose())
        finally:
            service.close()
            remove_pid_file(pid_path, only_pid=os.getpid())
            log.info("stopped")

    async def _watch_settings(self, *components: object) -> None:
        """Re-read config.toml when it changes so live keys apply within about a second."""
        from eventdbx.config import load_settings

        path = self.settings.config_path
        seen = _mtime(path)
        while True:
            await asyncio.sleep(SETTINGS_POLL_SECS)
            current = _mtime(path)
            if current == seen:
                continue
            seen = current
            try:
                fresh = await asyncio.to_thread(load_settings, path, create=False)
            except Exception as exc:  # a half-written or broken file must not stop the daemon
                log.warning("ignoring config change: %s", exc)
                continue
            self.settings = fresh
            for component in components:
                refresh = getattr(component, "refresh_settings", None)
                if refresh is not None:
                    refresh(fresh)
            log.info("configuration reloaded")


def _mtime(path: os.PathLike[str]) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
