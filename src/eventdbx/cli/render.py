"""Output rendering shared by the aggregate, schema and backup commands: pretty JSON, records, Rust-style text.

Only formats and echoes; it never opens a store or decides an exit code. Click-free, so the write path
(`aggregate apply`) can print without importing click.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventdbx.domain.records import EventRecord


def echo(text: str, *, err: bool = False) -> None:
    """Print one line on stdout (stderr with `err`) and flush, like click.echo for plain text."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    stream.write(text + "\n")
    stream.flush()


def echo_json(obj: Any, *, sort_keys: bool = False) -> None:
    """Print one pretty JSON document (2-space indent, §4 numbers) on stdout."""
    from eventdbx.domain.jsontext import to_pretty

    echo(to_pretty(obj, sort_keys=sort_keys))


def echo_record(record: EventRecord) -> None:
    """Print an EventRecord as pretty JSON in record key order."""
    echo_json(record.to_dict())


def warn(text: str) -> None:
    """Print a warning or note on stderr."""
    echo(text, err=True)


def bool_text(value: bool) -> str:
    """`true` / `false` (Rust Display of bool)."""
    return "true" if value else "false"


def option_text(value: int | None) -> str:
    """`Some(N)` / `None` (Rust Debug of Option<u64>)."""
    return "None" if value is None else f"Some({value})"


_DEBUG_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def debug_str(text: str) -> str:
    """A string quoted like Rust's `{:?}`: double quotes, backslash escapes, other controls as `\\u{x}`."""
    out = []
    for ch in text:
        escaped = _DEBUG_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def auto_snapshot_note(aggregate_type: str, aggregate_id: str, version: int) -> None:
    """The stderr note printed when an append created an automatic snapshot."""
    warn(
        f"auto snapshot created: aggregate={aggregate_type} aggregate_id={aggregate_id} "
        f"version={version}"
    )
