"""The click root group of `dbx`: lazy sub-command loading and the global options.

Imported only when a command line needs click (main() runs plain `aggregate apply` lines without it).
"""

from __future__ import annotations

import gc
import importlib

import click

from eventdbx import __version__
from eventdbx.cli.context import CliContext
from eventdbx.errors import EventDBXError

# name -> "module:attribute"; modules load only when their command runs (keeps `dbx` start fast).
COMMANDS: dict[str, str] = {
    "start": "eventdbx.cli.server:start",
    "stop": "eventdbx.cli.server:stop",
    "status": "eventdbx.cli.server:status",
    "restart": "eventdbx.cli.server:restart",
    "destroy": "eventdbx.cli.server:destroy",
    "__internal:server": "eventdbx.cli.server:internal_server",
    "config": "eventdbx.cli.config_cmd:config",
    "token": "eventdbx.cli.token:token",
    "schema": "eventdbx.cli.schema:schema",
    "aggregate": "eventdbx.cli.aggregate:aggregate",
    "plugin": "eventdbx.cli.plugin:plugin",
    "queue": "eventdbx.cli.queue:queue",
    "backup": "eventdbx.cli.backup:backup",
    "restore": "eventdbx.cli.backup:restore",
}

# Summaries for `dbx --help` without importing every module.
SUMMARIES: dict[str, str] = {
    "start": "Start the EventDBX server",
    "stop": "Stop the EventDBX server",
    "status": "Display EventDBX server status",
    "restart": "Restart the EventDBX server",
    "destroy": "Destroy all EventDBX data and configuration",
    "config": "Update system configuration",
    "token": "Manage access tokens",
    "schema": "Manage schemas",
    "aggregate": "Manage aggregates",
    "plugin": "Manage plugins",
    "queue": "Show or manage the plugin retry queue",
    "backup": "Create a backup archive containing all EventDBX data",
    "restore": "Restore EventDBX data from a backup archive",
}

REMOVED = {"upgrade", "remote", "push", "pull"}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if not name.startswith("__")]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _not_built(cmd_name)
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in REMOVED or name.startswith("upgrade@"):
            raise click.UsageError(f"unrecognized subcommand '{name}'")
        return super().resolve_command(ctx, args)


def _not_built(name: str) -> click.Command:
    @click.command(
        name=name, help=SUMMARIES.get(name, ""), context_settings={"ignore_unknown_options": True}
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def placeholder(args: tuple[str, ...]) -> None:
        raise EventDBXError(f"'{name}' is not available in this build")

    return placeholder


@click.group(
    cls=LazyGroup,
    help="EventDBX server CLI",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Path to config.toml (default ~/.eventdbx/config.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show the cause chain of errors.")
@click.version_option(__version__, "--version", prog_name="dbx", message="dbx %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """EventDBX server CLI"""
    gc.enable()  # main() disables it for start-up imports only
    ctx.obj = CliContext(config_arg=config_path, verbose=verbose)


def run_click(args: list[str]) -> int:
    """Run one command line through click (exceptions propagate to main); the exit code."""
    code = cli.main(args=args, prog_name="dbx", standalone_mode=False)
    return code if isinstance(code, int) else 0
