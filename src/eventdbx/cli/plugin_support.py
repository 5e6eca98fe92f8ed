"""What the `plugin` and `queue` commands share: opening the queue and registry, daemon liveness, echo helpers."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from eventdbx.pidfile import process_alive, read_pid_file

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.store.plugin_queue import PluginQueue


@contextmanager
def open_queue(settings: Settings) -> Iterator[PluginQueue]:
    """The plugin queue of this data dir (created on first use)."""
    from eventdbx.store.plugin_queue import PluginQueue

    queue = PluginQueue.open(
        settings.paths.plugin_queue,
        durability=settings.durability,
        create=True,
        dek=settings.data_encryption_key,
    )
    try:
        yield queue
    finally:
        queue.close()


def load_definitions(settings: Settings) -> list[PluginDefinition]:
    """plugins.json (legacy `[[plugins]]` imported first), warnings on stderr."""
    from eventdbx.plugins.registry import import_legacy_plugins, load_plugins

    import_legacy_plugins(settings.config_path, settings.paths.plugins_json)
    return load_plugins(settings.paths.plugins_json, warn=warn)


def daemon_pid(settings: Settings) -> int | None:
    """The running daemon's pid, or None."""
    info = read_pid_file(settings.paths.pid_file)
    if info is None or not process_alive(info.pid):
        return None
    return info.pid


def head_seq(settings: Settings) -> int:
    """The global sequence of the newest event (0 without an event store)."""
    if not settings.paths.event_store.exists():
        return 0
    from eventdbx.store.database import Database
    from eventdbx.store.events import head_seq as read_head

    db = Database.open(settings.paths.event_store, settings.durability, create=False)
    try:
        with db.read() as conn:
            return read_head(conn)
    finally:
        db.close()


def resolve_plugin_name(settings: Settings, name_or_label: str | None) -> str | None:
    """Map a `--plugin` name or `<kind> (<name>)` label to the plugin name."""
    if name_or_label is None:
        return None
    from eventdbx.plugins.registry import find_plugin

    found = find_plugin(load_definitions(settings), name_or_label)
    return found.name if found is not None else name_or_label.strip()


def warn(message: str) -> None:
    """A warning line on stderr."""
    click.echo(message, err=True)


def confirm(prompt: str, word: str) -> bool:
    """Print the prompt (no newline), read one stdin line, accept only `word` (trimmed, any case)."""
    click.echo(prompt, nl=False)
    sys.stdout.flush()
    answer = sys.stdin.readline()
    click.echo("")
    return answer.strip().lower() == word


def now() -> float:
    """Wall-clock seconds."""
    return time.time()
