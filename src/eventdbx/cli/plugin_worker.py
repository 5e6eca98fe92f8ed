"""`dbx plugin start|stop|status`: ask the daemon (through plugin_queue.db) to run or stop a process worker."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.log_follower import LogFollower, follow_log
from eventdbx.cli.plugin_support import daemon_pid, load_definitions, open_queue
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.store.plugin_queue_model import PluginState

START_WAIT_SECS = 5.0
STOP_WAIT_SECS = 15.0
# worker_desired values written by the CLI and read by the daemon's supervisor.
DESIRED_START = "start"  # a one-off request: leave any crash loop and run
DESIRED_STOPPED = "stopped"  # persists across daemon restarts


def _process_plugin(settings: Settings, name: str) -> PluginDefinition:
    from eventdbx.plugins.registry import find_plugin

    found = find_plugin([d for d in load_definitions(settings) if d.kind == "process"], name)
    if found is None:
        raise CommandError(f"no process plugin named '{name}' is configured")
    return found


def _state(settings: Settings, name: str) -> PluginState | None:
    with open_queue(settings) as queue:
        return queue.get_state(name)


def _poll(settings: Settings, name: str, done: Any, seconds: float) -> PluginState | None:
    deadline = time.monotonic() + seconds
    state = _state(settings, name)
    while not done(state) and time.monotonic() < deadline:
        time.sleep(0.05)
        state = _state(settings, name)
    return state


def _running(state: PluginState | None) -> bool:
    return state is not None and state.worker_actual == "running" and bool(state.worker_pid)


@click.command(help="Start a managed process plugin worker")
@click.argument("name")
@click.option("--foreground", is_flag=True, help="Also stream the worker's log lines until Ctrl-C.")
def start(name: str, foreground: bool) -> None:
    """Start a managed process plugin worker"""
    settings = cli_context().settings()
    found = _process_plugin(settings, name)
    if not found.enabled:
        raise CommandError(
            f"process plugin '{found.name}' is disabled; enable it before starting the worker"
        )
    if daemon_pid(settings) is None:
        raise CommandError(
            "the daemon is not running; process plugins run under the daemon "
            "(start it with dbx start)"
        )
    before = _state(settings, found.name)
    if _running(before) and before is not None and before.worker_desired != DESIRED_STOPPED:
        click.echo(
            f"Process plugin '{found.name}' worker is already running (pid {before.worker_pid})"
        )
    else:
        with open_queue(settings) as queue:
            queue.set_worker_desired(found.name, DESIRED_START)
        state = _poll(settings, found.name, _running, START_WAIT_SECS)
        if not _running(state) or state is None:
            raise CommandError(
                f"plugin worker did not report readiness; check logs for '{found.name}'"
            )
        click.echo(f"Process plugin '{found.name}' worker started (pid {state.worker_pid})")
    if foreground:
        _follow_log(settings, found.name)


def _follow_log(settings: Settings, name: str) -> None:
    prefix = f"{name} "

    def show(line: str) -> None:
        if f": {prefix}" in line or f"'{name}'" in line:
            click.echo(line)

    try:
        follow_log(LogFollower(settings.paths.logs_dir / "eventdbx.log"), show, threading.Event())
    except KeyboardInterrupt:
        return


@click.command(help="Stop a managed process plugin worker")
@click.argument("name")
def stop(name: str) -> None:
    """Stop a managed process plugin worker"""
    settings = cli_context().settings()
    found = _process_plugin(settings, name)
    before = _state(settings, found.name)
    with open_queue(settings) as queue:
        queue.set_worker_desired(found.name, DESIRED_STOPPED)
    if daemon_pid(settings) is None or not _running(before) or before is None:
        click.echo(f"Process plugin '{found.name}' worker is not running")
        return
    _poll(settings, found.name, lambda s: not _running(s), STOP_WAIT_SECS)
    click.echo(f"Stopped process plugin '{found.name}' runtime (pid {before.worker_pid})")


def _status_text(state: PluginState | None, daemon: int | None, name: str) -> str:
    if daemon is None or state is None or state.worker_actual is None:
        return (
            "stopped by operator"
            if state and state.worker_desired == DESIRED_STOPPED
            else "stopped"
        )
    detail: dict[str, Any] = json.loads(state.worker_detail) if state.worker_detail else {}
    actual = state.worker_actual
    if actual == "running":
        return f"running (pid {state.worker_pid})"
    if actual == "restarting":
        return f"restarting in {detail.get('restart_in', 0)}s (exit status {detail.get('exit_status')})"
    if actual == "crash-looping":
        return f"crash-looping ({detail.get('exits', 5)} exits; run dbx plugin start {name})"
    if actual == "not-installed":
        return f"not installed ({detail.get('reason', 'unknown')})"
    if actual == "stopped" and state.worker_desired == DESIRED_STOPPED:
        return "stopped by operator"
    return str(actual)


@click.command(help="Show the status of a managed process plugin worker")
@click.argument("name", required=False)
def status(name: str | None) -> None:
    """Show the status of a managed process plugin worker"""
    from eventdbx.plugins.process_worker import pid_file_name

    settings = cli_context().settings()
    definitions = [d for d in load_definitions(settings) if d.kind == "process"]
    if name is not None:
        definitions = [_process_plugin(settings, name)]
    if not definitions:
        click.echo("(no process plugins configured)")
        return
    daemon = daemon_pid(settings)
    blocks = []
    for d in definitions:
        state = _state(settings, d.name)
        detail: dict[str, Any] = (
            json.loads(state.worker_detail) if state and state.worker_detail else {}
        )
        blocks.append(
            "\n".join(
                [
                    f"Process plugin: {d.name}",
                    f"  enabled: {str(d.enabled).lower()}",
                    f"  emit events: {str(d.emit_events).lower()}",
                    f"  status: {_status_text(state, daemon, d.name)}",
                    f"  restarts: {detail.get('restarts', 0) if daemon is not None else 0}",
                    f"  runtime pid file: {settings.paths.plugins_dir / 'run' / pid_file_name(d.name)}",
                    f"  supervisor: {f'daemon (pid {daemon})' if daemon is not None else 'daemon not running'}",
                ]
            )
        )
    click.echo("\n\n".join(blocks))
