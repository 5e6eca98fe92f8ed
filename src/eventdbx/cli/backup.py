"""`dbx backup` and `dbx restore` (cli.md §7): options and the one-line results; the work is in eventdbx.backup."""

from __future__ import annotations

from pathlib import Path

import click

from eventdbx.cli.context import cli_context


@click.command(
    help="Create a backup archive containing all EventDBX data",
    short_help="Create a backup archive containing all EventDBX data",
)
@click.option("--output", "output", required=True, type=click.Path(path_type=Path),
              help="Archive to write (gzip tar).")
@click.option("--force", is_flag=True, help="Overwrite an existing archive.")
def backup(output: Path, force: bool) -> None:
    """Create a backup archive containing all EventDBX data"""
    from eventdbx.backup import create_backup

    settings = cli_context().settings()
    written = create_backup(settings, output, force=force)
    click.echo(f"Backup created at {written} (captured data directory {settings.data_dir})")


@click.command(
    help="Restore EventDBX data from a backup archive",
    short_help="Restore EventDBX data from a backup archive",
)
@click.option("--input", "archive", required=True, type=click.Path(path_type=Path),
              help="Backup archive to restore.")
@click.option("--data-dir", "data_dir", type=click.Path(path_type=Path), default=None,
              help="Data directory to restore into (default: the one recorded in the backup).")
@click.option("--force", is_flag=True, help="Overwrite a non-empty data directory.")
def restore(archive: Path, data_dir: Path | None, force: bool) -> None:
    """Restore EventDBX data from a backup archive"""
    from eventdbx.backup import restore_backup
    from eventdbx.config import default_config_path

    config_arg = cli_context().config_arg
    config_path = Path(config_arg).expanduser() if config_arg else default_config_path()
    config_path = config_path.absolute()
    result = restore_backup(archive, config_path=config_path, data_dir=data_dir, force=force)
    click.echo(
        f"Restored backup from {archive} into {result.data_dir} "
        f"(config written to {result.config_path})"
    )
