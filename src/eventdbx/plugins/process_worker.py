"""Supervises one process plugin: spawn, init frame, deliveries with optional acks, restarts, clean stop.

It never decides retries or dead-lettering (the dispatcher does); it only reports how a delivery ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from eventdbx.control.plugin_codec import (
    InitFields,
    Reply,
    decode_reply,
    encode_init,
    take_frames,
)
from eventdbx.errors import DeliveryError, SerializationError
from eventdbx.plugins.sinks.coalescing_writer import CoalescingWriter

log = logging.getLogger("eventdbx.plugin")
MAX_REPLY_BYTES = 1 << 20
READERS_DRAIN_SECS = 2.0
# Writing to a child that already exited: asyncio raises a ConnectionError, uvloop a RuntimeError
# ("the handler is closed").
PIPE_CLOSED = (ConnectionError, OSError, RuntimeError)


class WorkerState(StrEnum):
    """What `dbx plugin status` shows."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    CRASH_LOOPING = "crash-looping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerTiming:
    """Supervision delays; the defaults are the spec's (plugins.md §8.5)."""

    restart_delays: Sequence[float] = (1, 2, 4, 8, 16, 32, 60)
    healthy_after: float = 60.0
    crash_loop_exits: int = 5
    stop_eof_wait: float = 5.0
    stop_term_wait: float = 5.0
    # Daemon shutdown must end within `dbx stop`'s 5 s before it SIGKILLs the daemon (cli.md), or
    # the plugins would be orphaned: the same sequence, shorter waits.
    shutdown_eof_wait: float = 1.5
    shutdown_term_wait: float = 1.5
    poison_exits: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSpec:
    """How to launch one process plugin instance."""

    name: str
    plugin_id: str
    version: str
    target: str
    binary_path: str
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    ack: bool = False
    payload_mode: str = "all"
    timeout_secs: float = 5.0
    control_addr: str = "127.0.0.1:6363"
    run_dir: Path | None = None


@dataclass(slots=True)
class WorkerStatus:
    """A snapshot of a worker for status displays and plugin_queue.db."""

    state: WorkerState = WorkerState.STOPPED
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    restart_at: float | None = None


def pid_file_name(name: str) -> str:
    """`<name>` with characters outside [A-Za-z0-9_-] mapped to `_`, plus `.pid`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) + ".pid"


class ProcessWorker:
    """One supervised child process speaking PluginEnvelope frames on stdin/stdout."""

    def __init__(self, spec: WorkerSpec, timing: WorkerTiming | None = None) -> None:
        self.spec = spec
        self.timing = timing or WorkerTiming()
        self.status = WorkerStatus()
        self._proc: asyncio.subprocess.Process | None = None
        self._sequence = 0
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._out: CoalescingWriter | None = None
        self._running = asyncio.Event()
        self._stop = asyncio.Event()
        self._resume = asyncio.Event()
        self._exits_without_health = 0
        self._inflight_job: str | None = None
        self._poison: tuple[str | None, int] = (None, 0)

    @property
    def running(self) -> asyncio.Event:
        """Set while a child is up and initialised."""
        return self._running

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "EVENTDBX_PLUGIN_NAME": self.spec.plugin_id,
                "EVENTDBX_PLUGIN_ACK": "1" if self.spec.ack else "0",
                "EVENTDBX_PAYLOAD_MODE": self.spec.payload_mode,
                "EVENTDBX_CONTROL_ADDR": self.spec.control_addr,
            }
        )
        env.update(self.spec.env)
        return env

    def _pid_path(self) -> Path | None:
        if self.spec.run_dir is None:
            return None
        return self.spec.run_dir / pid_file_name(self.spec.name)

    async def _spawn(self) -> asyncio.subprocess.Process:
        cwd = self.spec.working_dir or str(Path(self.spec.binary_path).parent)
        proc = await asyncio.create_subprocess_exec(
            self.spec.binary_path,
            *self.spec.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=self._env(),
            start_new_session=True,
        )
        pid_path = self._pid_path()
        if pid_path is not None:
            pid_path.parent.mkdir(parents=True, exist_ok=True)
            pid_path.write_text(f"{proc.pid}\n")
        return proc

    async def run(self) -> None:
        """Supervise until `stop()`: restart with backoff, park in crash-loop until `start()`."""
        while not self._stop.is_set():
            self.status.state = WorkerState.STARTING
            try:
                proc = await self._spawn()
            except OSError as exc:
                log.error("process plugin '%s' failed to start: %s", self.spec.name, exc)
                status = -1
                started = time.monotonic()
            else:
                started = time.monotonic()
                status = await self._serve(proc)
            if self._stop.is_set():
                break
            if time.monotonic() - started >= self.timing.healthy_after:
                self._exits_without_health = 0
            self._exits_without_health += 1
            self.status.last_exit = status
            self.status.restarts += 1
            if self._exits_without_health >= self.timing.crash_loop_exits:
                await self._park_crash_loop()
                continue
            delays = self.timing.restart_delays
            delay = delays[min(self._exits_without_health - 1, len(delays) - 1)]
            log.warning(
                "process plugin '%s' exited (status %s); restarting in %ss",
                self.spec.name,
                status,
                _fmt(delay),
            )
            self.status.state = WorkerState.RESTARTING
            self.status.restart_at = time.time() + delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        self.status.state = WorkerState.STOPPED
        self.status.pid = None

    async def _park_crash_loop(self) -> None:
        log.error(
            "process plugin '%s' is crash-looping (%d exits without a healthy run); not restarting "
            "until 'dbx plugin start %s'",
            self.spec.name,
            self._exits_without_health,
            self.spec.name,
        )
        self.status.state = WorkerState.CRASH_LOOPING
        self._resume.clear()
        stop_task = asyncio.ensure_future(self._stop.wait())
        resume_task = asyncio.ensure_future(self._resume.wait())
        await asyncio.wait({stop_task, resume_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        resume_task.cancel()
        self._exits_without_health = 0

    def start(self) -> None:
        """Leave a crash loop and try again now."""
        self._exits_without_health = 0
        self._resume.set()

    async def _serve(self, proc: asyncio.subprocess.Process) -> int:
        self._proc = proc
        self._sequence = 0
        self.status.pid = proc.pid
        readers = [asyncio.ensure_future(self._pump_stderr(proc))]
        readers.append(
            asyncio.ensure_future(
                self._read_acks(proc) if self.spec.ack else self._pump_stdout(proc)
            )
        )
        try:
            init = encode_init(
                InitFields(
                    plugin_name=self.spec.plugin_id,
                    version=self.spec.version,
                    target=self.spec.target,
                )
            )
            assert proc.stdin is not None
            proc.stdin.write(init)
            await proc.stdin.drain()
            self._out = CoalescingWriter(proc.stdin)
            self.status.state = WorkerState.RUNNING
            self._running.set()
        except PIPE_CLOSED:
            pass  # it exited before reading its init: proc.wait() below reports the exit
        status = await proc.wait()
        self._running.clear()
        self._out = None
        # Whatever the plugin started in its group dies with it: such helpers would be orphans, and they
        # hold the pipes open so the readers would never see EOF.
        _kill_group(proc, signal.SIGKILL)
        _, stuck = await asyncio.wait(readers, timeout=READERS_DRAIN_SECS)
        for reader in stuck:  # a helper that left the group still holds the pipes
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        self._fail_pending(
            f"process plugin '{self.spec.name}' exited (status {status})", exited=True
        )
        self._proc = None
        self.status.pid = None
        pid_path = self._pid_path()
        if pid_path is not None:
            pid_path.unlink(missing_ok=True)
        return status

    def _fail_pending(self, message: str, *, exited: bool) -> None:
        error = DeliveryError(message, retryable=True)
        if exited and self._inflight_job is not None:
            job, count = self._poison
            count = count + 1 if job == self._inflight_job else 1
            self._poison = (self._inflight_job, count)
            if count >= self.timing.poison_exits:
                self._poison = (None, 0)
                self._exits_without_health = 0
                error = DeliveryError(
                    f"process plugin '{self.spec.name}' exited {count} times while "
                    "handling this job",
                    retryable=False,
                )
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def _pump_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            log.info("%s stderr: %s", self.spec.name, line.decode(errors="replace").rstrip())

    async def _pump_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            log.info("%s stdout: %s", self.spec.name, line.decode(errors="replace").rstrip())

    async def _read_acks(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        buffer = bytearray()
        try:
            # whatever arrived is split into frames at once: acks come in bursts, one read serves many
            while chunk := await proc.stdout.read(1 << 16):
                buffer += chunk
                for frame in take_frames(buffer, max_bytes=MAX_REPLY_BYTES):
                    self._settle(decode_reply(frame))
        except SerializationError:
            self._fail_pending(
                f"process plugin '{self.spec.name}' wrote invalid data on stdout in ack mode",
                exited=False,
            )
            _kill_group(proc, signal.SIGKILL)

    def _settle(self, reply: Reply) -> None:
        future = self._pending.pop(reply.sequence, None)
        if future is None:
            raise SerializationError(f"unknown sequence {reply.sequence}")
        if not future.done():
            if reply.message is None:
                future.set_result(None)
            else:
                permanent = reply.message.startswith("permanent:")
                future.set_exception(DeliveryError(reply.message, retryable=not permanent))

    async def deliver(self, job_id: str, frame_for: Callable[[int], bytes]) -> None:
        """Send one event frame (built by `frame_for(sequence)`) and wait for its outcome."""
        out = self._out
        if out is None or not self._running.is_set():
            raise DeliveryError(f"process plugin '{self.spec.name}' is not running", retryable=True)
        # Every delivery is a pending future, so an exit mid-delivery is reported in one place
        # (_fail_pending), which also counts poison jobs.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timeout = self.spec.timeout_secs
        sequence = self._sequence
        self._sequence += 1
        self._pending[sequence] = future
        self._inflight_job = job_id
        acking = False  # one deadline covers the write and the ack
        try:
            async with asyncio.timeout(timeout) as deadline:
                try:
                    await out.write(frame_for(sequence))
                except PIPE_CLOSED:  # the exit is being observed: wait for its report
                    deadline.reschedule(
                        asyncio.get_running_loop().time() + self.timing.stop_eof_wait
                    )
                else:
                    if not self.spec.ack:
                        self._pending.pop(sequence, None)
                        if not future.done():
                            future.set_result(None)
                acking = True
                await future
        except TimeoutError as exc:
            self._pending.pop(sequence, None)
            what = "ack" if acking else "write"
            raise DeliveryError(
                f"process plugin '{self.spec.name}' {what} timed out after {_fmt(timeout)}s",
                retryable=True,
            ) from exc
        self._done(job_id)

    def _done(self, job_id: str) -> None:
        if self._inflight_job == job_id:
            self._inflight_job = None
        if self._poison[0] == job_id:
            self._poison = (None, 0)

    async def stop(self, *, shutdown: bool = False) -> None:
        """Stop for good: stdin EOF, wait, SIGTERM the group, wait, SIGKILL the group (shorter waits on shutdown)."""
        self._stop.set()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(*PIPE_CLOSED):
                proc.stdin.close()
        timing = self.timing
        for sig, wait in (
            (None, timing.shutdown_eof_wait if shutdown else timing.stop_eof_wait),
            (signal.SIGTERM, timing.shutdown_term_wait if shutdown else timing.stop_term_wait),
            (signal.SIGKILL, 5.0),
        ):
            if sig is not None:
                _kill_group(proc, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), wait)
            if proc.returncode is not None:
                break
        _kill_group(proc, signal.SIGKILL)  # leftovers of the group (grandchildren)


def _kill_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
