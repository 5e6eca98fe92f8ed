"""`dbx aggregate …` (cli.md §6): the group, the writes (apply, commit, snapshot, archive, restore, remove).

Parses flags (conflicts, `--field` pairs, the token), calls EventService (which parses the JSON with the CLI's
error prefixes) and renders records. Reads live in aggregate_read.py. Light at import: `apply` must start fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.render import auto_snapshot_note, echo_json, echo_record, warn
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.service import AppendOutcome, EventService


# Read commands live in aggregate_read.py and load only when used (keeps `aggregate apply` start-up small).
READ_COMMANDS: dict[str, str] = {
    "list": "list_", "get": "get", "replay": "replay", "verify": "verify", "export": "export",
}


class AggregateGroup(click.Group):
    """`dbx aggregate`: write commands defined here, read commands imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *READ_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        attr = READ_COMMANDS.get(cmd_name)
        if attr is None:
            return super().get_command(ctx, cmd_name)
        from eventdbx.cli import aggregate_read

        command: click.Command = getattr(aggregate_read, attr)
        return command


@click.group(cls=AggregateGroup, help="Manage aggregates", short_help="Manage aggregates")
def aggregate() -> None:
    """Manage aggregates"""


# -- shared helpers ------------------------------------------------------------------------------------------


@contextmanager
def open_service(*, create: bool) -> Iterator[EventService]:
    """The event service on this config's data dir; reads pass create=False (no store → storage error)."""
    from eventdbx.service import EventService

    settings = cli_context().settings()
    service = EventService.open(settings, create=create)
    try:
        yield service
    finally:
        service.close()


def _plugins_configured(settings: Settings) -> bool:
    """Cheap check (no plugin imports) whether any plugin could want jobs."""
    if settings.legacy_plugins:
        return True
    try:
        text = settings.paths.plugins_json.read_bytes()
    except OSError:
        return False
    import orjson

    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return True  # let the enqueuer report the broken file
    if not isinstance(doc, list):
        return True
    return any(not isinstance(item, dict) or item.get("enabled", True) is not False for item in doc)


def enqueue_plugins(settings: Settings) -> None:
    """After a direct write: one enqueuer pass so plugins get their jobs without a daemon."""
    if not _plugins_configured(settings):
        return
    try:
        from eventdbx.plugins.enqueuer import enqueue_once
    except ImportError:
        return
    try:
        enqueue_once(settings)
    except Exception as exc:  # the daemon catches up anyway; the CLI only warns
        warn(f"warning: could not enqueue plugin jobs: {exc}")


def report_outcome(outcome: AppendOutcome) -> None:
    """Print the appended record; the auto-snapshot note goes to stderr."""
    record = outcome.record
    echo_record(record)
    if outcome.auto_snapshot:
        auto_snapshot_note(record.aggregate_type, record.aggregate_id, record.version)


def _parse_field(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise click.UsageError(
                f"invalid value '{value}' for '--field <KEY=VALUE>': missing value", ctx
            )
        if not key.strip():
            raise click.UsageError(
                f"invalid value '{value}' for '--field <KEY=VALUE>': field key cannot be empty", ctx
            )
        pairs.append((key.strip(), rest.strip()))
    return tuple(pairs)


def _env_token(token: str | None) -> str | None:
    """`--token`, else `$EVENTDBX_TOKEN`; trimmed, blank = none."""
    value = token if token is not None else os.environ.get("EVENTDBX_TOKEN")
    if value is None or not value.strip():
        return None
    return value.strip()


def _payload_json(
    payload: str | None, fields: tuple[tuple[str, str], ...], patch: str | None
) -> str | None:
    """The payload text after the flag-conflict checks (JSON parsing and its messages: the service)."""
    if payload is not None and fields:
        raise CommandError("--payload cannot be used together with --field")
    if patch is not None and (payload is not None or fields):
        raise CommandError("--patch cannot be combined with --payload or --field")
    if not fields:
        return payload
    from eventdbx.domain.jsontext import dumps_canonical

    return dumps_canonical(dict(fields))


# -- commands ------------------------------------------------------------------------------------------------


@aggregate.command(help="Apply an event to an aggregate instance",
                   short_help="Apply an event to an aggregate instance")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.argument("event")
@click.option("--field", "fields", multiple=True, callback=_parse_field, metavar="KEY=VALUE",
              help="Payload field (repeatable; string values).")
@click.option("--payload", default=None, help="Payload as a JSON document.")
@click.option("--patch", default=None, help="RFC 6902 JSON Patch applied to the current state.")
@click.option("--metadata", default=None, help="Metadata object with '@'-prefixed keys.")
@click.option("--note", default=None, help="Note stored with the event (≤ 128 characters).")
@click.option("--stage", is_flag=True, help="Stage the event for a later `aggregate commit`.")
@click.option("--token", default=None, help="Token authorising the write [env: EVENTDBX_TOKEN].")
@click.option("--expected-version", type=click.IntRange(min=0), default=None,
              help="Fail unless the aggregate is at this version (0 = must not exist).")
def apply(
    aggregate_type: str, aggregate_id: str, event: str, fields: tuple[tuple[str, str], ...],
    payload: str | None, patch: str | None, metadata: str | None, note: str | None,
    stage: bool, token: str | None, expected_version: int | None,
) -> None:
    """Apply an event to an aggregate instance"""
    from eventdbx.service import AppendRequest

    request = AppendRequest(
        aggregate_type=aggregate_type, aggregate_id=aggregate_id, event_type=event,
        payload_json=_payload_json(payload, fields, patch), patch_json=patch,
        metadata_json=metadata, note=note,
        token=_env_token(token), expected_version=expected_version, surface="cli",
    )
    with open_service(create=True) as service:
        if stage:
            service.stage(request)
            click.echo("event staged for later commit")
            return
        outcome = service.append(request)
    report_outcome(outcome)
    enqueue_plugins(cli_context().settings())


@aggregate.command(help="Commit events previously staged with `aggregate apply --stage`",
                   short_help="Commit events previously staged with `aggregate apply --stage`")
def commit() -> None:
    """Commit events previously staged with `aggregate apply --stage`"""
    with open_service(create=True) as service:
        if not service.staged():
            click.echo("no staged events to commit")
            return
        outcomes = service.commit_staged()
    if not outcomes:
        click.echo("no staged events to commit")
        return
    for outcome in outcomes:
        report_outcome(outcome)
    click.echo(f"committed {len(outcomes)} event(s)")
    enqueue_plugins(cli_context().settings())


@aggregate.command(help="Create a snapshot of the aggregate state",
                   short_help="Create a snapshot of the aggregate state")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--comment", default=None, help="Comment stored with the snapshot.")
def snapshot(aggregate_type: str, aggregate_id: str, comment: str | None) -> None:
    """Create a snapshot of the aggregate state"""
    with open_service(create=True) as service:
        created = service.snapshot(aggregate_type, aggregate_id, comment=comment)
    echo_json(created.to_dict())


def _archive_line(aggregate_type: str, aggregate_id: str, archived: bool, comment: str | None) -> str:
    flag = "true" if archived else "false"
    return (f"aggregate_type={aggregate_type} aggregate_id={aggregate_id} archived={flag} "
            f"comment={comment or ''}")


@aggregate.command(help="Archive an aggregate instance", short_help="Archive an aggregate instance")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--comment", default=None, help="Why the aggregate is archived.")
def archive(aggregate_type: str, aggregate_id: str, comment: str | None) -> None:
    """Archive an aggregate instance"""
    with open_service(create=True) as service:
        service.archive(aggregate_type, aggregate_id, comment=comment)
    click.echo(_archive_line(aggregate_type, aggregate_id, True, comment))


@aggregate.command(help="Restore an archived aggregate instance",
                   short_help="Restore an archived aggregate instance")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--comment", default=None, help="Echoed comment.")
def restore(aggregate_type: str, aggregate_id: str, comment: str | None) -> None:
    """Restore an archived aggregate instance"""
    with open_service(create=True) as service:
        service.restore(aggregate_type, aggregate_id, comment=comment)
    click.echo(_archive_line(aggregate_type, aggregate_id, False, comment))


@aggregate.command(help="Remove an aggregate that has no events",
                   short_help="Remove an aggregate that has no events")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
def remove(aggregate_type: str, aggregate_id: str) -> None:
    """Remove an aggregate that has no events"""
    with open_service(create=True) as service:
        service.remove(aggregate_type, aggregate_id)
    click.echo(f"aggregate_type={aggregate_type} aggregate_id={aggregate_id} removed")
