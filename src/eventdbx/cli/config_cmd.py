"""`dbx config`: print the effective configuration or validate and save changes (cli.md §3)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings

INVALID_DEK = "invalid data encryption key: expected base64 of 32 bytes"


def _dek_changes(settings: Settings, dek: str | None, generate: bool) -> dict[str, Any]:
    from eventdbx.config import is_valid_dek

    current = settings.data_encryption_key
    if generate:
        if current:
            raise CommandError("a data encryption key is already configured")
        import base64
        import secrets

        return {"data_encryption_key": base64.b64encode(secrets.token_bytes(32)).decode("ascii")}
    if dek is None or not dek.strip():
        return {}
    value = dek.strip()
    if not is_valid_dek(value):
        raise CommandError(INVALID_DEK)
    if current and current != value and _encrypted_data_exists(settings):
        raise CommandError("data encryption key cannot be changed once encrypted data exists")
    return {"data_encryption_key": value}


def _encrypted_data_exists(settings: Settings) -> bool:
    """True once anything was sealed with the current key (`meta.dek_check` is set with the first blob)."""
    store = settings.paths.event_store
    if not store.exists():
        return False
    from eventdbx.store.database import Database
    from eventdbx.store.meta import DEK_CHECK, get_meta

    with Database.open(store, settings.durability, create=False) as db, db.read() as conn:
        return get_meta(conn, DEK_CHECK) is not None


def _collect(settings: Settings, opts: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    simple = {
        "port": "port", "list_page_size": "list_page_size", "page_limit": "page_limit",
        "snowflake_worker_id": "snowflake_worker_id", "snapshot_threshold": "snapshot_threshold",
        "admin_port": "admin.port", "socket_bind": "socket.bind_addr", "durability": "durability",
    }
    for opt, key in simple.items():
        if opts[opt] is not None:
            changes[key] = opts[opt]
    if opts["data_dir"] is not None:
        changes["data_dir"] = str(Path(opts["data_dir"]).expanduser().resolve())
    if opts["plugin_max_attempts"] is not None:
        changes["plugin_max_attempts"] = max(opts["plugin_max_attempts"], 1)
    if opts["clear_snapshot_threshold"]:
        changes["snapshot_threshold"] = None
    if opts["admin_enabled"] is not None:
        changes["admin.enabled"] = opts["admin_enabled"] == "true"
    if opts["admin_bind"] is not None and opts["admin_bind"].strip():
        changes["admin.bind_addr"] = opts["admin_bind"].strip()
    if opts["restrict"] is not None:
        from eventdbx.domain.restrict import parse_restrict

        changes["restrict"] = str(parse_restrict(opts["restrict"]))
    changes.update(_dek_changes(settings, opts["dek"], opts["generate_dek"]))
    return changes


@click.command(name="config", help="Update system configuration")
@click.option("--port", type=int, help="Reserved HTTP port.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory.")
@click.option("--data-encryption-key", "--dek", "dek", help="Base64 of 32 bytes; enables encryption at rest.")
@click.option("--generate-dek", is_flag=True, help="Generate and store a data encryption key.")
@click.option("--list-page-size", type=int, help="Default page size for listings.")
@click.option("--page-limit", type=int, help="Maximum page size.")
@click.option("--plugin-max-attempts", type=int, help="Delivery attempts before a job is dead (min 1).")
@click.option("--snapshot-threshold", type=click.IntRange(min=1), help="Fallback auto-snapshot threshold.")
@click.option("--clear-snapshot-threshold", is_flag=True, help="Unset the snapshot threshold.")
@click.option("--admin-enabled", type=click.Choice(["true", "false"]), help="Enable the admin API.")
@click.option("--admin-bind", help="Admin API bind address.")
@click.option("--admin-port", type=click.IntRange(min=0), help="Admin API port (0 unsets).")
@click.option("--snowflake-worker-id", type=click.IntRange(min=0), help="Event id worker (0-1023).")
@click.option("--restrict", help="Schema enforcement: off, default or strict.")
@click.option("--socket-bind", help="Control socket HOST:PORT.")
@click.option("--durability", type=click.Choice(["normal", "fsync"]), help="SQLite durability.")
@click.option("--cache-threshold", type=int, help="No longer used.")
@click.option("--show-secrets", is_flag=True, help="Print secrets instead of <redacted>.")
def config(**opts: Any) -> None:
    """Update system configuration"""
    if opts["snapshot_threshold"] is not None and opts["clear_snapshot_threshold"]:
        raise click.UsageError(
            "the argument '--snapshot-threshold <SNAPSHOT_THRESHOLD>' cannot be used with '--clear-snapshot-threshold'"
        )
    ctx = cli_context()
    settings = ctx.settings()
    if opts["cache_threshold"] is not None:
        click.echo("warning: cache_threshold is no longer used", err=True)
    changes = _collect(settings, opts)
    if changes:
        from eventdbx.config_file import save_config_changes

        save_config_changes(settings.config_path, changes)
        click.echo(f"Configuration saved to {settings.config_path}")
        return
    if opts["cache_threshold"] is not None:
        return
    from eventdbx.config_file import render_settings

    click.echo(render_settings(settings, redact=not opts["show_secrets"]), nl=False)
