"""`dbx aggregate …` (cli.md §6): the group, the writes (apply, commit, snapshot, archive, restore, remove).

Click definitions only: the apply logic (flag conflicts, `--field` pairs, the token, the append) lives in
aggregate_apply.py, which main() also runs without click for plain command lines. Reads live in
aggregate_read.py.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import click

from eventdbx.cli.aggregate_apply import enqueue_plugins, field_pair, report_outcome, run_apply
from eventdbx.cli.aggregate_apply import open_service as open_service_for
from eventdbx.cli.context import cli_context
from eventdbx.cli.render import echo_json

if TYPE_CHECKING:
    from eventdbx.service import EventService


# Read commands live in aggregate_read.py and load only when used (keeps `aggregate apply` start-up small).
READ_COMMANDS: dict[str, str] = {
    "list": "list_",
    "get": "get",
    "replay": "replay",
    "verify": "verify",
    "export": "export",
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


def open_service(*, create: bool) -> AbstractContextManager[EventService]:
    """The event service on this config's data dir; reads pass create=False (no store → storage error)."""
    return open_service_for(cli_context(), create=create)


def _parse_field(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        pair = field_pair(value)
        if pair is None:
            reason = "missing value" if "=" not in value else "field key cannot be empty"
            raise click.UsageError(
                f"invalid value '{value}' for '--field <KEY=VALUE>': {reason}", ctx
            )
        pairs.append(pair)
    return tuple(pairs)


# -- commands ------------------------------------------------------------------------------------------------


@aggregate.command(
    help="Apply an event to an aggregate instance",
    short_help="Apply an event to an aggregate instance",
)
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.argument("event")
@click.option(
    "--field",
    "fields",
    multiple=True,
    callback=_parse_field,
    metavar="KEY=VALUE",
    help="Payload field (repeatable; string values).",
)
@click.option("--payload", default=None, help="Payload as a JSON document.")
@click.option("--patch", default=None, help="RFC 6902 JSON Patch applied to the current state.")
@click.option("--metadata", default=None, help="Metadata object with '@'-prefixed keys.")
@click.option("--note", default=None, help="Note stored with the event (≤ 128 characters).")
@click.option("--stage", is_flag=True, help="Stage the event for a later `aggregate commit`.")
@click.option("--token", default=None, help="Token authorising the write [env: EVENTDBX_TOKEN].")
@click.option(
    "--expected-version",
    type=click.IntRange(min=0),
    default=None,
    help="Fail unless the aggregate is at this version (0 = must not exist).",
)
def apply(
    aggregate_type: str,
    aggregate_id: str,
    event: str,
    fields: tuple[tuple[str, str], ...],
    payload: str | None,
    patch: str | None,
    metadata: str | None,
    note: str | None,
    stage: bool,
    token: str | None,
    expected_version: int | None,
) -> None:
    """Apply an event to an aggregate instance"""
    run_apply(
        cli_context(),
        aggregate_type,
        aggregate_id,
        event,
        fields=fields,
        payload=payload,
        patch=patch,
        metadata=metadata,
        note=note,
        stage=stage,
        token=token,
        expected_version=expected_version,
    )


@aggregate.command(
    help="Commit events previously staged with `aggregate apply --stage`",
    short_help="Commit events previously staged with `aggregate apply --stage`",
)
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


@aggregate.command(
    help="Create a snapshot of the aggregate state",
    short_help="Create a snapshot of the aggregate state",
)
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--comment", default=None, help="Comment stored with the snapshot.")
def snapshot(aggregate_type: str, aggregate_id: str, comment: str | None) -> None:
    """Create a snapshot of the aggregate state"""
    with open_service(create=True) as service:
        created = service.snapshot(aggregate_type, aggregate_id, comment=comment)
    echo_json(created.to_dict())


def _archive_line(
    aggregate_type: str, aggregate_id: str, archived: bool, comment: str | None
) -> str:
    flag = "true" if archived else "false"
    return (
        f"aggregate_type={aggregate_type} aggregate_id={aggregate_id} archived={flag} "
        f"comment={comment or ''}"
    )


@aggregate.command(help="Archive an aggregate instance", short_help="Archive an aggregate instance")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--comment", default=None, help="Why the aggregate is archived.")
def archive(aggregate_type: str, aggregate_id: str, comment: str | None) -> None:
    """Archive an aggregate instance"""
    with open_service(create=True) as service:
        service.archive(aggregate_type, aggregate_id, comment=comment)
    click.echo(_archive_line(aggregate_type, aggregate_id, True, comment))


@aggregate.command(
    help="Restore an archived aggregate instance",
    short_help="Restore an archived aggregate instance",
)
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--comment", default=None, help="Echoed comment.")
def restore(aggregate_type: str, aggregate_id: str, comment: str | None) -> None:
    """Restore an archived aggregate instance"""
    with open_service(create=True) as service:
        service.restore(aggregate_type, aggregate_id, comment=comment)
    click.echo(_archive_line(aggregate_type, aggregate_id, False, comment))


@aggregate.command(
    help="Remove an aggregate that has no events",
    short_help="Remove an aggregate that has no events",
)
@click.argument("aggregate_type")
@click.argument("aggregate_id")
def remove(aggregate_type: str, aggregate_id: str) -> None:
    """Remove an aggregate that has no events"""
    with open_service(create=True) as service:
        service.remove(aggregate_type, aggregate_id)
    click.echo(f"aggregate_type={aggregate_type} aggregate_id={aggregate_id} removed")
