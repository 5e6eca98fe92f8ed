"""`dbx plugin enable|disable|remove|list|install|replay`."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.plugin_support import confirm, load_definitions, open_queue, warn
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition

REPLAY_PROMPT_OVER = 1000


def _find(settings: Settings, name: str) -> tuple[list[PluginDefinition], PluginDefinition]:
    from eventdbx.plugins.registry import find_plugin

    definitions = load_definitions(settings)
    found = find_plugin(definitions, name)
    if found is None:
        raise CommandError(f"no plugin named '{name}' is configured")
    return definitions, found


def _store(
    settings: Settings, definitions: list[PluginDefinition], updated: PluginDefinition
) -> None:
    from eventdbx.plugins.registry import save_plugins

    save_plugins(
        settings.paths.plugins_json, [updated if d.name == updated.name else d for d in definitions]
    )


@click.command(help="Enable a configured plugin")
@click.argument("name")
@click.option(
    "--skip-backlog", is_flag=True, help="Skip events appended while the plugin was disabled."
)
@click.option("--no-check", is_flag=True, help="Do not run the readiness check.")
def enable(name: str, skip_backlog: bool, no_check: bool) -> None:
    """Enable a configured plugin"""
    from eventdbx.plugins.enqueuer import backlog
    from eventdbx.plugins.enqueuer import skip_backlog as move_to_head

    settings = cli_context().settings()
    definitions, found = _find(settings, name)
    if found.enabled:
        click.echo(f"Plugin '{found.name}' is already enabled")
        return
    if not no_check:
        from eventdbx.cli.plugin_checks import check_ready

        check_ready(settings, found)
    owed = move_to_head(settings, found.name) if skip_backlog else backlog(settings, found.name)
    _store(settings, definitions, replace(found, enabled=True))
    click.echo(f"Plugin '{found.name}' enabled")
    if owed > 0:
        verb = "skipped" if skip_backlog else "queued backlog:"
        click.echo(f"{verb} {owed} event(s) appended while '{found.name}' was disabled")
        if not skip_backlog:
            enqueue_now(settings)


def enqueue_now(settings: Settings) -> None:
    """One enqueue pass now, so `dbx queue` shows the jobs at once; failures only warn."""
    from eventdbx.plugins.enqueuer import enqueue_once

    try:
        enqueue_once(settings)
    except Exception as exc:  # the daemon catches up anyway; the CLI only warns
        warn(f"warning: could not enqueue plugin jobs now: {exc}")


@click.command(help="Disable a configured plugin")
@click.argument("name")
def disable(name: str) -> None:
    """Disable a configured plugin"""
    settings = cli_context().settings()
    definitions, found = _find(settings, name)
    if not found.enabled:
        click.echo(f"Plugin '{found.name}' is already disabled")
        return
    _store(settings, definitions, replace(found, enabled=False))
    click.echo(f"Plugin '{found.name}' disabled")


@click.command(help="Remove a configured plugin")
@click.argument("name")
@click.option(
    "--disable", "also_disable", is_flag=True, help="Disable the plugin first if it is enabled."
)
def remove(name: str, also_disable: bool) -> None:
    """Remove a configured plugin"""
    from eventdbx.plugins.enqueuer import purge_plugin
    from eventdbx.plugins.registry import save_plugins

    settings = cli_context().settings()
    definitions, found = _find(settings, name)
    if found.enabled:
        if not also_disable:
            raise CommandError(
                f"disable plugin '{found.name}' before removing it "
                f"(use plugin disable {found.name} or pass --disable)"
            )
        _store(settings, definitions, replace(found, enabled=False))
        click.echo(f"Plugin '{found.name}' disabled")
    purged = purge_plugin(settings, found.name)
    if purged:
        click.echo(f"purged {purged} queued job(s) for '{found.name}'")
    save_plugins(settings.paths.plugins_json, [d for d in definitions if d.name != found.name])
    click.echo(f"Plugin '{found.name}' removed")


def _runtime(
    settings: Settings, definition: PluginDefinition, daemon_alive: bool
) -> dict[str, Any]:
    with open_queue(settings) as queue:
        state = queue.get_state(definition.name)
    if not daemon_alive or state is None or state.worker_actual is None:
        return {"state": "unknown"} if daemon_alive else {"state": "stopped"}
    if state.worker_actual == "running" and state.worker_pid:
        return {"state": "running", "pid": state.worker_pid}
    if state.worker_actual == "crash-looping":
        return {"state": "crash-looping"}
    return {"state": "stopped"}


def _suffix(definition: PluginDefinition, runtime: dict[str, Any] | None) -> str:
    parts = []
    if runtime is not None:
        parts.append(
            {
                "running": f"process running (pid {runtime.get('pid')})",
                "crash-looping": "process crash-looping",
            }.get(
                runtime["state"], "process status unknown" if runtime["state"] == "unknown" else ""
            )
        )
    if not definition.emit_events:
        parts.append("event delivery disabled")
    return "".join(f"; {p}" for p in parts if p)


@click.command(name="list", help="List enabled plugins")
@click.option("--json", "as_json", is_flag=True, help="Print the definitions as JSON.")
def list_plugins(as_json: bool) -> None:
    """List enabled plugins"""
    from eventdbx.cli.plugin_support import daemon_pid
    from eventdbx.domain.jsontext import to_pretty
    from eventdbx.plugins.install import load_registry

    settings = cli_context().settings()
    definitions = load_definitions(settings)
    alive = daemon_pid(settings) is not None
    runtimes = {d.name: _runtime(settings, d, alive) for d in definitions if d.kind == "process"}
    if as_json:
        out = []
        for d in definitions:
            item = d.to_dict()
            if item.get("config", {}).get("secret") is not None:
                item["config"]["secret"] = "<redacted>"
            if d.name in runtimes:
                item["runtime"] = runtimes[d.name]
            out.append(item)
        click.echo(to_pretty(out))
        return
    installed = load_registry(settings.paths.plugins_dir)
    if not definitions and not installed:
        click.echo("(no plugins configured)")
        return
    if installed:
        click.echo("Installed plugins:")
        for entry in installed:
            click.echo(f"  - {entry.name} {entry.version} ({entry.target})")
        click.echo("")
    if not definitions:
        click.echo("(no plugins configured)")
        return
    click.echo("Configured plugins:")
    for d in definitions:
        state = (
            f"enabled (disable with plugin disable {d.name})"
            if d.enabled
            else f"disabled (enable with plugin enable {d.name})"
        )
        click.echo(f"  - {d.label} - {state}{_suffix(d, runtimes.get(d.name))}")


@click.command(help="Install a plugin binary into the local registry")
@click.argument("name")
@click.argument("version", required=False)
@click.option(
    "-s", "--source", default=None, help="Path or URL (file://, http(s)://) of a binary or bundle."
)
@click.option("--bin", "binary", default=None, help="The binary inside the bundle.")
@click.option("--checksum", default=None, help="Expected SHA-256 of the source.")
@click.option("--force", is_flag=True, help="Overwrite an existing install.")
def install(
    name: str,
    version: str | None,
    source: str | None,
    binary: str | None,
    checksum: str | None,
    force: bool,
) -> None:
    """Install a plugin binary into the local registry"""
    from eventdbx.plugins.install import InstallRequest, install_plugin

    settings = cli_context().settings()
    entry = install_plugin(
        settings.paths.plugins_dir,
        InstallRequest(
            name=name, version=version, source=source, binary=binary, checksum=checksum, force=force
        ),
    )
    click.echo(
        f"installed plugin '{entry.name}' v{entry.version} for {entry.target} at {entry.binary_path}"
    )


@click.command(help="Replay stored events through a plugin")
@click.argument("plugin_name")
@click.argument("aggregate")
@click.argument("aggregate_id", required=False)
@click.option("--dry-run", is_flag=True, help="Only count what would be queued.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def replay(
    plugin_name: str, aggregate: str, aggregate_id: str | None, dry_run: bool, yes: bool
) -> None:
    """Replay stored events through a plugin"""
    from eventdbx.plugins.enqueuer import count_replay, enqueue_replay
    from eventdbx.plugins.registry import find_plugin

    settings = cli_context().settings()
    found = find_plugin(
        [d for d in load_definitions(settings) if d.enabled and d.emit_events], plugin_name
    )
    if found is None:
        raise CommandError(f"no enabled plugin named '{plugin_name}' is configured")
    events, aggregates = count_replay(settings, aggregate, aggregate_id)
    if events == 0:
        click.echo(
            f"no events found for {aggregate}::{aggregate_id}"
            if aggregate_id
            else f"no aggregates found for '{aggregate}'"
        )
        return
    if dry_run:
        click.echo(
            f"would queue {events} replay job(s) for {aggregates} aggregate(s) of '{aggregate}' "
            f"to '{found.name}'"
        )
        return
    if (
        events > REPLAY_PROMPT_OVER
        and not yes
        and not confirm(
            f"This will enqueue {events} replay job(s) for '{found.name}'. Type 'replay' to confirm: ",
            "replay",
        )
    ):
        click.echo("replay cancelled")
        return
    jobs, aggregates = _replay_with_progress(
        settings, found, aggregate, aggregate_id, events, enqueue_replay
    )
    if aggregate_id:
        click.echo(f"queued {jobs} replay job(s) for {aggregate}::{aggregate_id}")
    else:
        click.echo(f"queued {jobs} replay job(s) for {aggregates} aggregate(s) of '{aggregate}'")


def _replay_with_progress(
    settings: Settings,
    found: PluginDefinition,
    aggregate: str,
    aggregate_id: str | None,
    total: int,
    enqueue: Any,
) -> tuple[int, int]:
    if not sys.stderr.isatty():
        result: tuple[int, int] = enqueue(settings, found, aggregate, aggregate_id)
        return result
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("replaying", total=total)
        result = enqueue(
            settings,
            found,
            aggregate,
            aggregate_id,
            progress=lambda n: progress.update(task, completed=n),
        )
    return result
