"""`dbx start|stop|status|restart|destroy` and the hidden `__internal:server` daemon entry point."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.errors import CommandError
from eventdbx.pidfile import PidInfo, process_alive, read_pid_file, remove_pid_file
from eventdbx.uptime import format_uptime

if TYPE_CHECKING:
    from eventdbx.config import Settings

READY_TIMEOUT = 10.0


def socket_port(settings: Settings) -> int:
    """The port of `[socket] bind_addr`."""
    return int(settings.socket.bind_addr.rsplit(":", 1)[1])


def _started_epoch(info: PidInfo) -> float | None:
    if info.started_at is None:
        return None
    from eventdbx.domain.timefmt import parse_ts

    try:
        return parse_ts(info.started_at).timestamp()
    except Exception:
        return None


def _apply_start_flags(port: int | None, data_dir: str | None, restrict: str | None) -> Settings:
    ctx = cli_context()
    settings = ctx.settings()
    changes: dict[str, Any] = {}
    if port is not None:
        changes["port"] = port
    if data_dir is not None:
        changes["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if restrict is not None:
        from eventdbx.domain.restrict import parse_restrict

        changes["restrict"] = str(parse_restrict(restrict))
    if changes:
        from eventdbx.config import save_config_changes

        save_config_changes(settings.config_path, changes)
        settings = ctx.reload()
    return settings


def _check_not_running(settings: Settings) -> None:
    info = read_pid_file(settings.paths.pid_file)
    if info is None:
        return
    if process_alive(info.pid):
        raise CommandError(f"EventDBX server already running (pid {info.pid})")
    remove_pid_file(settings.paths.pid_file)


def _prepare(settings: Settings) -> None:
    from eventdbx.bootstrap import prepare_data_dir

    prepare_data_dir(settings)


def _spawn_daemon(settings: Settings) -> int:
    cmd = [sys.executable, "-m", "eventdbx", "--config", str(settings.config_path), "__internal:server"]
    child = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = child.poll()
        if status is not None:
            raise CommandError(
                f"EventDBX server failed to start (process exited with status {status}). "
                "Re-run with `dbx start --foreground` for details."
            )
        info = read_pid_file(settings.paths.pid_file)
        if info is not None and info.pid == child.pid:
            return child.pid
        time.sleep(0.02)
    child.kill()
    child.wait()
    raise CommandError(
        "EventDBX server failed to start (no readiness within 10s). "
        "Re-run with `dbx start --foreground` for details."
    )


def _start(port: int | None, data_dir: str | None, foreground: bool, restrict: str | None) -> None:
    settings = _apply_start_flags(port, data_dir, restrict)
    _check_not_running(settings)
    _prepare(settings)
    if foreground:
        click.echo(f"configuration loaded; starting server (pid={os.getpid()})", err=True)
        _run_daemon(settings, foreground=True)
        return
    pid = _spawn_daemon(settings)
    info = read_pid_file(settings.paths.pid_file)
    since = info.started_at if info and info.started_at else "-"
    click.echo(
        f"EventDBX server is running on port {socket_port(settings)} (pid {pid}) since {since} "
        f"(restrict={settings.restrict})"
    )


def _run_daemon(settings: Settings, *, foreground: bool) -> None:
    from eventdbx.daemon import run_daemon

    code = run_daemon(settings, foreground=foreground)
    if code:
        raise SystemExit(code)


def _restrict_option() -> Any:
    return click.option(
        "--restrict", "restrict", is_flag=False, flag_value="default", default=None, metavar="[MODE]",
        help="Restrict mode (off|default|strict); bare flag = default; omitted keeps the configured mode.",
    )


def _start_options(func: Any) -> Any:
    func = _restrict_option()(func)
    func = click.option("--foreground", is_flag=True, help="Run in the foreground until SIGINT/SIGTERM.")(func)
    func = click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Data directory.")(func)
    func = click.option("--port", type=int, default=None, help="Port of the (reserved) HTTP listener.")(func)
    return func


@click.command(help="Start the EventDBX server")
@_start_options
def start(port: int | None, data_dir: str | None, foreground: bool, restrict: str | None) -> None:
    """Start the EventDBX server"""
    _start(port, data_dir, foreground, restrict)


def _stop(settings: Settings) -> None:
    path = settings.paths.pid_file
    info = read_pid_file(path)
    if info is None:
        click.echo("No running EventDBX server found.")
        return
    if not process_alive(info.pid):
        remove_pid_file(path)
        click.echo("Removed stale EventDBX server pid file.")
        return
    started = _started_epoch(info)
    os.kill(info.pid, signal.SIGTERM)
    if not _wait_exit(info.pid, 5.0):
        os.kill(info.pid, signal.SIGKILL)
        if not _wait_exit(info.pid, 2.0):
            raise CommandError(f"failed to stop EventDBX server (pid {info.pid}); process is still running")
    remove_pid_file(path)
    if started is None:
        click.echo(f"EventDBX server stopped (pid {info.pid})")
    else:
        uptime = format_uptime(time.time() - started)
        click.echo(f"EventDBX server stopped (pid {info.pid}) after {uptime} (started {info.started_at})")


def _wait_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.02)
    return not process_alive(pid)


@click.command(help="Stop the EventDBX server")
def stop() -> None:
    """Stop the EventDBX server"""
    _stop(cli_context().settings())


@click.command(help="Display EventDBX server status")
def status() -> None:
    """Display EventDBX server status"""
    settings = cli_context().settings()
    info = read_pid_file(settings.paths.pid_file)
    if info is None:
        click.echo("EventDBX server is not running.")
        return
    if not process_alive(info.pid):
        remove_pid_file(settings.paths.pid_file)
        click.echo("EventDBX server is not running (removed stale pid file).")
        return
    line = (f"EventDBX server is running on port {socket_port(settings)} (pid {info.pid}) "
            f"— restrict={settings.restrict}")
    started = _started_epoch(info)
    if started is not None:
        line += f" — up for {format_uptime(time.time() - started)} (since {info.started_at})"
    click.echo(line)


@click.command(help="Restart the EventDBX server")
@_start_options
def restart(port: int | None, data_dir: str | None, foreground: bool, restrict: str | None) -> None:
    """Restart the EventDBX server"""
    try:
        _stop(cli_context().settings())
    except CommandError as exc:
        click.echo(f"warning: failed to stop EventDBX server before restart: {exc}", err=True)
    _start(port, data_dir, foreground, restrict)


@click.command(help="Destroy all EventDBX data and configuration")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def destroy(yes: bool) -> None:
    """Destroy all EventDBX data and configuration"""
    settings = cli_context().settings()
    data_dir, config = settings.data_dir, settings.config_path
    if not yes:
        click.echo(
            f"This will permanently delete all EventDBX data under {data_dir} and remove the config file "
            f'at {config}.\nType "destroy" to continue: ', err=True, nl=False,
        )
        answer = sys.stdin.readline()
        if answer.strip() != "destroy":
            click.echo("Destroy command cancelled.")
            return
    info = read_pid_file(settings.paths.pid_file)
    if info is not None and process_alive(info.pid):
        _stop(settings)
    shutil.rmtree(data_dir, ignore_errors=True)
    config.unlink(missing_ok=True)
    click.echo(f"All EventDBX data and configuration removed from {data_dir}")


@click.command(name="__internal:server", hidden=True)
def internal_server() -> None:
    """Run the daemon (spawned by `dbx start`)."""
    _run_daemon(cli_context().settings(), foreground=False)
