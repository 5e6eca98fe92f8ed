"""`dbx aggregate apply` without click: the append itself, and a fast path for plain command lines.

Start-up time of `dbx aggregate apply` is a product target (≤ 60 ms), and importing click costs a sixth of it.
main() offers every command line to `fast_apply` first: a line that uses only the global `--config`/`-v` and
apply's own options in their plain forms runs here directly. Anything else — help, `--`, an unknown, repeated or
value-less option, a value click would reject — returns None and goes through click, which owns every usage
error. Both paths end in `run_apply`, so they cannot differ in what they write or print.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from eventdbx.cli.context import CliContext
from eventdbx.cli.render import auto_snapshot_note, echo, echo_record, warn
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.service import AppendOutcome, EventService

# apply's options taking one value -> the run_apply keyword they fill (`--field` repeats).
VALUE_OPTIONS: dict[str, str] = {
    "--field": "fields",
    "--payload": "payload",
    "--patch": "patch",
    "--metadata": "metadata",
    "--note": "note",
    "--token": "token",
    "--expected-version": "expected_version",
}


@contextmanager
def open_service(context: CliContext, *, create: bool) -> Iterator[EventService]:
    """The event service on this config's data dir; reads pass create=False (no store → storage error)."""
    from eventdbx.service import EventService

    service = EventService.open(context.settings(), create=create)
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


def field_pair(value: str) -> tuple[str, str] | None:
    """`KEY=VALUE` split at the first `=` and trimmed; None when `=` or the key is missing (a usage error)."""
    key, sep, rest = value.partition("=")
    if not sep or not key.strip():
        return None
    return key.strip(), rest.strip()


def env_token(token: str | None) -> str | None:
    """`--token`, else `$EVENTDBX_TOKEN`; trimmed, blank = none."""
    value = token if token is not None else os.environ.get("EVENTDBX_TOKEN")
    if value is None or not value.strip():
        return None
    return value.strip()


def payload_json(
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


def run_apply(
    context: CliContext,
    aggregate_type: str,
    aggregate_id: str,
    event: str,
    *,
    fields: tuple[tuple[str, str], ...] = (),
    payload: str | None = None,
    patch: str | None = None,
    metadata: str | None = None,
    note: str | None = None,
    stage: bool = False,
    token: str | None = None,
    expected_version: int | None = None,
) -> None:
    """Append (or stage) one event and print the record, then let plugins enqueue it."""
    from eventdbx.service import AppendRequest

    request = AppendRequest(
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        event_type=event,
        payload_json=payload_json(payload, fields, patch),
        patch_json=patch,
        metadata_json=metadata,
        note=note,
        token=env_token(token),
        expected_version=expected_version,
        surface="cli",
    )
    with open_service(context, create=True) as service:
        if stage:
            service.stage(request)
            echo("event staged for later commit")
            return
        outcome = service.append(request)
    report_outcome(outcome)
    enqueue_plugins(context.settings())


def _config_value_ok(value: str) -> bool:
    """Whether click.Path(dir_okay=False) would accept `value` unchanged (else click reports it)."""
    if not value or value.startswith("-"):
        return False
    return not os.path.exists(value) or (not os.path.isdir(value) and os.access(value, os.R_OK))


def _global_options(args: list[str]) -> tuple[CliContext, int] | None:
    """`[--config P] [-v]` before the command: the context and the index of the command word."""
    config: str | None = None
    verbose, i = False, 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg in ("-v", "--verbose"):
            verbose = True
        elif (arg == "--config" or arg.startswith("--config=")) and config is None:
            if arg == "--config":
                i += 1
                if i == len(args):
                    return None
                config = args[i]
            else:
                config = arg[len("--config=") :]
            if not _config_value_ok(config):
                return None
        else:
            return None
        i += 1
    return CliContext(config_arg=config, verbose=verbose), i


class _ApplyLine:
    """apply's arguments as parsed by the fast path."""

    __slots__ = ("expected_version", "fields", "positionals", "stage", "values")

    def __init__(self) -> None:
        self.positionals: list[str] = []
        self.fields: list[tuple[str, str]] = []
        self.values: dict[str, str] = {}
        self.expected_version: int | None = None
        self.stage = False

    def add(self, key: str, value: str) -> bool:
        """Take one option value; False when click must judge it (bad pair, repeat, non-digits)."""
        if key == "fields":
            pair = field_pair(value)
            if pair is None:
                return False
            self.fields.append(pair)
            return True
        if key in self.values or (key == "expected_version" and self.expected_version is not None):
            return False
        if key == "expected_version":
            if not (value.isascii() and value.isdigit()):
                return False
            self.expected_version = int(value)
        else:
            self.values[key] = value
        return True


def _apply_line(args: list[str]) -> _ApplyLine | None:
    """apply's positionals and options, or None when click must parse the line."""
    line = _ApplyLine()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            line.positionals.append(arg)
            continue
        if arg == "--stage":
            line.stage = True
            continue
        name, eq, value = arg.partition("=")
        key = VALUE_OPTIONS.get(name)
        if key is None:
            return None
        if not eq:
            if i == len(args) or args[i].startswith("-"):
                return None
            value = args[i]
            i += 1
        if not line.add(key, value):
            return None
    return line if len(line.positionals) == 3 else None


def fast_apply(args: list[str]) -> bool:
    """Run `dbx … aggregate apply …` without click when the line is plain; False = not handled (use click)."""
    parsed = _global_options(args)
    if parsed is None:
        return False
    context, i = parsed
    if args[i : i + 2] != ["aggregate", "apply"]:
        return False
    line = _apply_line(args[i + 2 :])
    if line is None:
        return False
    aggregate_type, aggregate_id, event = line.positionals
    values = line.values
    run_apply(
        context,
        aggregate_type,
        aggregate_id,
        event,
        fields=tuple(line.fields),
        payload=values.get("payload"),
        patch=values.get("patch"),
        metadata=values.get("metadata"),
        note=values.get("note"),
        stage=line.stage,
        token=values.get("token"),
        expected_version=line.expected_version,
    )
    return True
