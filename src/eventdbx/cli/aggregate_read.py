"""`dbx aggregate list|get|replay|verify|export` (cli.md §6): reads, which never create the event store.

Rendering only: the store is read through EventService opened with create=False, files are written by
eventdbx.export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from eventdbx.cli.aggregate import open_service
from eventdbx.cli.context import cli_context
from eventdbx.cli.render import bool_text, echo_json, echo_record
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.export import ExportOptions, Row
    from eventdbx.service import EventService

PROGRESS_MIN_ROWS = 5000


def _service(*, create: bool = False) -> AbstractContextManager[EventService]:
    return open_service(create=create)


@click.command(name="list", help="List aggregates in the store", short_help="List aggregates in the store")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True,
              help="Aggregates to skip.")
@click.option("--take", type=click.IntRange(min=0), default=None,
              help="Aggregates to show (default: list_page_size).")
@click.option("--stage", is_flag=True, help="List staged events instead.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(skip: int, take: int | None, stage: bool, as_json: bool) -> None:
    """List aggregates in the store"""
    if stage:
        with _service(create=True) as service:
            entries = service.staged()
        if as_json:
            echo_json([entry.to_dict() for entry in entries])
        elif not entries:
            click.echo("no staged events")
        else:
            for entry in entries:
                echo_json(entry.to_dict())
        return
    if take is None:
        take = cli_context().settings().list_page_size
    with _service() as service:
        states = service.list_aggregates(skip=skip, take=take)
    if as_json:
        echo_json([state.to_dict() for state in states])
        return
    for state in states:
        click.echo(
            f"aggregate_type={state.aggregate_type} aggregate_id={state.aggregate_id} "
            f"version={state.version} merkle_root={state.merkle_root} "
            f"archived={bool_text(state.archived)}"
        )


@click.command(help="Retrieve the state of an aggregate", short_help="Retrieve the state of an aggregate")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--version", "version", type=click.IntRange(min=0), default=None,
              help="State as of this version.")
@click.option("--include-events", is_flag=True, help="Include the events up to that version.")
def get(aggregate_type: str, aggregate_id: str, version: int | None, include_events: bool) -> None:
    """Retrieve the state of an aggregate"""
    with _service() as service:
        state = service.get_aggregate(aggregate_type, aggregate_id, version=version)
        doc = state.to_dict()
        if include_events:
            events = service.list_events(aggregate_type, aggregate_id, up_to=state.version)
            doc["events"] = [record.to_dict() for record in events]
    echo_json(doc, sort_keys=True)


@click.command(help="Replay events for an aggregate instance",
               short_help="Replay events for an aggregate instance")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True,
              help="Events to skip.")
@click.option("--take", type=click.IntRange(min=0), default=None, help="Events to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
def replay(aggregate_type: str, aggregate_id: str, skip: int, take: int | None, as_json: bool) -> None:
    """Replay events for an aggregate instance"""
    with _service() as service:
        events = service.list_events(aggregate_type, aggregate_id, skip=skip, take=take)
    if as_json:
        echo_json([record.to_dict() for record in events])
        return
    for record in events:
        echo_record(record)


@click.command(help="Verify an aggregate's Merkle root", short_help="Verify an aggregate's Merkle root")
@click.argument("aggregate_type")
@click.argument("aggregate_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(aggregate_type: str, aggregate_id: str, as_json: bool) -> None:
    """Verify an aggregate's Merkle root"""
    with _service() as service:
        root = service.verify(aggregate_type, aggregate_id)
    if as_json:
        echo_json({"aggregate_id": aggregate_id, "aggregate_type": aggregate_type, "merkle_root": root})
    else:
        click.echo(f"aggregate_type={aggregate_type} aggregate_id={aggregate_id} merkle_root={root}")


# -- export --------------------------------------------------------------------------------------------------


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr for large exports to a terminal; otherwise nothing."""
    import sys

    if total < PROGRESS_MIN_ROWS or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("exporting", total=total)
        yield lambda rows: bar.advance(task, rows)


def _collect(aggregate_type: str | None) -> dict[str, list[Row]]:
    from eventdbx.export import group_rows

    with _service() as service:
        states = service.list_aggregates(skip=0, take=None)
    return group_rows(
        (s.aggregate_type, s.aggregate_id, s.state)
        for s in states
        if aggregate_type is None or s.aggregate_type == aggregate_type
    )


def _report(options: ExportOptions, files: list[Path], zip_path: Path | None, count: int) -> None:
    if zip_path is not None:
        click.echo(f"Exported {count} aggregate type(s) to {zip_path} (zip archive)")
        return
    for path in files:
        click.echo(f"wrote {path}")
    click.echo(f"Exported {count} aggregate type(s) in {options.format.value.upper()} format")


@click.command(help="Export aggregate state to CSV or JSON", short_help="Export aggregate state to CSV or JSON")
@click.argument("aggregate_type", required=False)
@click.option("--all", "all_types", is_flag=True, help="Export every aggregate type.")
@click.option("--output", required=True, type=click.Path(path_type=Path),
              help="Output file or directory.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"], case_sensitive=False),
              default="csv", show_default=True, help="Output format.")
@click.option("--zip", "as_zip", is_flag=True, help="Write a deflated zip archive.")
@click.option("--pretty", is_flag=True, help="Pretty-print JSON output.")
def export(
    aggregate_type: str | None, all_types: bool, output: Path, fmt: str, as_zip: bool, pretty: bool
) -> None:
    """Export aggregate state to CSV or JSON"""
    from eventdbx.export import ExportFormat, ExportOptions, write_export

    if aggregate_type is not None and all_types:
        raise CommandError("aggregate name cannot be provided when using --all")
    if aggregate_type is None and not all_types:
        raise CommandError("aggregate name must be provided unless --all is specified")
    options = ExportOptions(
        output=output, format=ExportFormat(fmt.lower()), zip=as_zip, pretty=pretty,
        all_types=all_types,
    )
    groups = _collect(aggregate_type)
    if not groups:
        click.echo("no aggregates found" if aggregate_type is None
                   else f"no aggregates found for '{aggregate_type}'")
        return
    with _progress(sum(len(rows) for rows in groups.values())) as progress:
        result = write_export(groups, options, progress)
    _report(options, result.files, result.zip_path, result.type_count)
