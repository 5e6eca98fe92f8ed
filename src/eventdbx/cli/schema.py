"""`dbx schema …` (cli.md §5): create, add, remove, annotate, list, show, hide, validate, alter.

Parses options, applies the pure edits of `eventdbx.schema.edit` inside one store write, and renders the
pinned text or JSON. `dbx schema <aggregate>` is `show`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.render import bool_text, debug_str, echo_json, option_text
from eventdbx.errors import (
    CommandError,
    InvalidSchemaError,
    SchemaExistsError,
    SchemaNotFoundError,
)

if TYPE_CHECKING:
    from eventdbx.schema.alter import SchemaAlteration
    from eventdbx.schema.model import Schema
    from eventdbx.store.database import Database

SUBCOMMANDS = "create, add, remove, annotate, list, show, hide, validate, alter"
UNSUPPORTED = f"unsupported schema command; available subcommands are {SUBCOMMANDS}"
T = TypeVar("T")
MISSING_NAME = "missing aggregate name; try `dbx schema <aggregate>`"


class SchemaGroup(click.Group):
    """`dbx schema A` shows schema A; more unknown words are an error."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            if len(args) > 1:
                raise CommandError(UNSUPPORTED)
            return "show", self.get_command(ctx, "show"), args
        return super().resolve_command(ctx, args)


@click.group(
    cls=SchemaGroup, invoke_without_command=True, help="Manage schemas", short_help="Manage schemas"
)
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Manage schemas"""
    if ctx.invoked_subcommand is None:
        raise CommandError(MISSING_NAME)


# -- store access --------------------------------------------------------------------------------------


def _now() -> str:
    import time

    from eventdbx.domain.timefmt import format_epoch

    return format_epoch(time.time())


@contextmanager
def _store() -> Iterator[Database]:
    """The event store (created on first use: schema commands touch schemas)."""
    from eventdbx.store.database import Database

    settings = cli_context().settings()
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    try:
        yield db
    finally:
        db.close()


def _load(name: str) -> Schema:
    from eventdbx.store.schemas import load_schema

    with _store() as db, db.read() as conn:
        found = load_schema(conn, name)
    if found is None:
        raise SchemaNotFoundError()
    return found


def _update(name: str, edit: Callable[[Schema], Schema]) -> Schema:
    """Load schema `name`, apply `edit` and save the result in one write transaction."""
    from eventdbx.store.schemas import load_schema, save_schema

    with _store() as db, db.write() as conn:
        current = load_schema(conn, name)
        if current is None:
            raise SchemaNotFoundError()
        updated = edit(current)
        save_schema(conn, updated)
    return updated


def _split_names(values: tuple[str, ...]) -> list[str]:
    """Comma lists and/or repeated values → names (trimmed, in order)."""
    names: list[str] = []
    for value in values:
        if not value.strip():
            continue
        names.extend(part.strip() for part in value.split(","))
    return names


def _summary(found: Schema) -> str:
    return f"schema={found.aggregate} events={len(found.events)}"


# -- commands ------------------------------------------------------------------------------------------


@schema.command(help="Create a new schema definition", short_help="Create a new schema definition")
@click.argument("aggregate")
@click.option("-e", "--events", "events", multiple=True, help="Event names (comma separated).")
@click.option("-s", "--snapshot-threshold", type=click.IntRange(min=0), default=None,
              help="Auto-snapshot every N versions (default: config snapshot_threshold).")
@click.option("--json", "as_json", is_flag=True, help="Print the schema as JSON.")
def create(
    aggregate: str, events: tuple[str, ...], snapshot_threshold: int | None, as_json: bool
) -> None:
    """Create a new schema definition"""
    from eventdbx.schema.model import new_schema
    from eventdbx.store.schemas import load_schema, save_schema

    settings = cli_context().settings()
    threshold = settings.snapshot_threshold if snapshot_threshold is None else snapshot_threshold
    created = new_schema(aggregate, _split_names(events), threshold, _now())
    with _store() as db, db.write() as conn:
        if load_schema(conn, aggregate) is not None:
            raise SchemaExistsError()
        save_schema(conn, created)
    if as_json:
        echo_json(created.to_dict())
    else:
        click.echo(f"{_summary(created)} snapshot_threshold={option_text(created.snapshot_threshold)}")


@schema.command(help="Add events to an existing schema definition",
                short_help="Add events to an existing schema definition")
@click.argument("aggregate")
@click.argument("events", nargs=-1, required=True)
def add(aggregate: str, events: tuple[str, ...]) -> None:
    """Add events to an existing schema definition"""
    from eventdbx.schema.edit import add_events

    names = _split_names(events)
    if not names:
        raise InvalidSchemaError("at least one event must be provided")
    now = _now()
    updated = _update(aggregate, lambda s: add_events(s, names, now))
    click.echo(
        f"schema={aggregate} added_events={','.join(names)} total_events={len(updated.events)}"
    )


@schema.command(help="Remove an event definition from an aggregate",
                short_help="Remove an event definition from an aggregate")
@click.argument("aggregate")
@click.argument("event")
def remove(aggregate: str, event: str) -> None:
    """Remove an event definition from an aggregate"""
    from eventdbx.schema.edit import remove_event

    now = _now()
    updated = _update(aggregate, lambda s: remove_event(s, event, now))
    click.echo(f"schema={aggregate} removed_event={event} remaining_events={len(updated.events)}")


@schema.command(help="Set or clear the default note for an event",
                short_help="Set or clear the default note for an event")
@click.argument("aggregate")
@click.argument("event")
@click.option("--note", default=None, help="Default note for the event.")
@click.option("--clear", is_flag=True, help="Remove the default note.")
def annotate(aggregate: str, event: str, note: str | None, clear: bool) -> None:
    """Set or clear the default note for an event"""
    from eventdbx.schema.edit import MAX_NOTE_LENGTH, annotate_event

    if not aggregate.strip():
        raise CommandError("aggregate name cannot be empty")
    if not event.strip():
        raise CommandError("event name cannot be empty")
    if note is not None and clear:
        raise CommandError("--note cannot be combined with --clear")
    if note is None and not clear:
        raise CommandError("either --note must be provided or use --clear")
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise CommandError(f"note cannot exceed {MAX_NOTE_LENGTH} characters")
    now = _now()
    _update(aggregate, lambda s: annotate_event(s, event, note, now))
    if note is None:
        click.echo(f"aggregate={aggregate} event={event} note_cleared")
    else:
        click.echo(f"aggregate={aggregate} event={event} note_set={debug_str(note)}")


@schema.command(name="list", help="List available schemas", short_help="List available schemas")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(as_json: bool) -> None:
    """List available schemas"""
    from eventdbx.store.schemas import list_schemas

    with _store() as db, db.read() as conn:
        schemas = list_schemas(conn)
    if as_json:
        echo_json([s.to_dict() for s in schemas])
        return
    for found in schemas:
        click.echo(
            f"{_summary(found)} locked={bool_text(found.locked)} "
            f"snapshot_threshold={option_text(found.snapshot_threshold)}"
        )


@schema.command(help="Show a schema definition as JSON", short_help="Show a schema definition")
@click.argument("aggregate", required=False)
@click.argument("extra", nargs=-1)
def show(aggregate: str | None, extra: tuple[str, ...]) -> None:
    """Show a schema definition as JSON"""
    if extra:
        raise CommandError(UNSUPPORTED)
    if aggregate is None or not aggregate.strip():
        raise CommandError(MISSING_NAME)
    echo_json(_load(aggregate).to_dict())


@schema.command(help="Hide a field from aggregate detail responses",
                short_help="Hide a field from aggregate detail responses")
@click.option("--aggregate", "aggregate", required=True, help="Aggregate (schema) name.")
@click.option("--field", "field", required=True, help="Field to hide.")
def hide(aggregate: str, field: str) -> None:
    """Hide a field from aggregate detail responses"""
    from eventdbx.schema.edit import hide_field

    if not aggregate.strip():
        raise CommandError("aggregate name cannot be empty")
    if not field.strip():
        raise CommandError("field name cannot be empty")
    now = _now()
    _update(aggregate, lambda s: hide_field(s, field, now))
    click.echo(f"aggregate={aggregate} field={field} hidden")


@schema.command(help="Validate payload against a schema definition",
                short_help="Validate payload against a schema definition")
@click.option("--aggregate", "aggregate", required=True, help="Aggregate (schema) name.")
@click.option("--event", "event", required=True, help="Event name.")
@click.option("--payload", "payload", required=True, help="Payload JSON.")
def validate(aggregate: str, event: str, payload: str) -> None:
    """Validate payload against a schema definition"""
    from eventdbx.domain.jsontext import parse_json
    from eventdbx.schema.validate import validate_payload

    value = parse_json(payload)
    validate_payload(_load(aggregate), event, value)
    click.echo(f"aggregate={aggregate} event={event} validation=ok")


def _altered(schema: Schema, change: SchemaAlteration, now: str) -> Schema:
    """schema.alter, except that `--unlock`/`--unhide` alone also count as changes."""
    from dataclasses import replace

    from eventdbx.schema.alter import alter

    if change.is_empty() and (change.locked is not None or change.hidden is not None):
        # SchemaAlteration.is_empty() reads False as "not given"; here it means unlock/unhide.
        return replace(
            schema,
            locked=schema.locked if change.locked is None else change.locked,
            hidden=schema.hidden if change.hidden is None else change.hidden,
            updated_at=now,
        )
    return alter(schema, change, now)


def _exclusive(first: tuple[str, bool], second: tuple[str, bool]) -> None:
    """Clap-style usage error when two mutually exclusive flags are both given."""
    if first[1] and second[1]:
        raise click.UsageError(f"the argument '{first[0]}' cannot be used with '{second[0]}'")


def _pairs(values: tuple[str, ...], parse: Callable[[str], T]) -> tuple[T, ...]:
    return tuple(parse(value) for value in values)


@schema.command(help="Change schema settings, event fields, column types and rules",
                short_help="Change schema settings, event fields, column types and rules")
@click.argument("aggregate")
@click.option("--snapshot-threshold", type=click.IntRange(min=0), default=None,
              help="Auto-snapshot every N versions.")
@click.option("--clear-snapshot-threshold", is_flag=True, help="Remove the snapshot threshold.")
@click.option("--lock", is_flag=True, help="Lock the whole aggregate against updates.")
@click.option("--unlock", is_flag=True, help="Unlock the aggregate.")
@click.option("--lock-field", multiple=True, help="Lock a field (repeatable).")
@click.option("--unlock-field", multiple=True, help="Unlock a field (repeatable).")
@click.option("--hide", is_flag=True, help="Hide the aggregate type from socket reads.")
@click.option("--unhide", is_flag=True, help="Unhide the aggregate type.")
@click.option("--unhide-field", multiple=True, help="Unhide a field (repeatable).")
@click.option("--add-fields", multiple=True, metavar="E=f1,f2", help="Add fields to an event.")
@click.option("--remove-fields", multiple=True, metavar="E=f1,f2", help="Remove event fields.")
@click.option("--column", multiple=True, metavar="F=TYPE", help="Set a column type.")
@click.option("--drop-column", multiple=True, metavar="F", help="Drop a column type.")
@click.option("--rules", multiple=True, metavar="F=JSON", help="Set a column's rules object.")
@click.option("--clear-rules", multiple=True, metavar="F", help="Clear a column's rules.")
@click.option("--json", "as_json", is_flag=True, help="Print the schema as JSON.")
def alter(
    aggregate: str, snapshot_threshold: int | None, clear_snapshot_threshold: bool,
    lock: bool, unlock: bool, lock_field: tuple[str, ...], unlock_field: tuple[str, ...],
    hide: bool, unhide: bool, unhide_field: tuple[str, ...], add_fields: tuple[str, ...],
    remove_fields: tuple[str, ...], column: tuple[str, ...], drop_column: tuple[str, ...],
    rules: tuple[str, ...], clear_rules: tuple[str, ...], as_json: bool,
) -> None:
    """Change schema settings, event fields, column types and rules"""
    from eventdbx.schema.alter import (
        SchemaAlteration,
        parse_column,
        parse_event_fields,
        parse_rules,
    )

    _exclusive(("--snapshot-threshold <N>", snapshot_threshold is not None),
               ("--clear-snapshot-threshold", clear_snapshot_threshold))
    _exclusive(("--lock", lock), ("--unlock", unlock))
    _exclusive(("--hide", hide), ("--unhide", unhide))
    change = SchemaAlteration(
        snapshot_threshold=snapshot_threshold,
        clear_snapshot_threshold=clear_snapshot_threshold,
        locked=True if lock else False if unlock else None,
        lock_fields=lock_field, unlock_fields=unlock_field,
        hidden=True if hide else False if unhide else None, unhide_fields=unhide_field,
        add_fields=_pairs(add_fields, parse_event_fields),
        remove_fields=_pairs(
            remove_fields, lambda t: parse_event_fields(t, option="--remove-fields")
        ),
        columns=_pairs(column, parse_column),
        drop_columns=drop_column,
        rules=_pairs(rules, parse_rules),
        clear_rules=clear_rules,
    )
    now = _now()
    updated = _update(aggregate, lambda s: _altered(s, change, now))
    if as_json:
        echo_json(updated.to_dict())
    else:
        click.echo(f"schema={aggregate} updated")
