"""Readiness checks for `plugin enable` and `plugin test` (plugins.md §8), through the real sink code."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from eventdbx.errors import CommandError, EventDBXError, PluginError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.plugins.sink import Sink


def error_text(exc: BaseException) -> str:
    """One line for any failure: the EventDBX message, else the exception text or its type."""
    text = exc.message if isinstance(exc, EventDBXError) else str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def not_ready(name: str, cause: BaseException | str) -> CommandError:
    """`failed to establish connection for '<n>': <cause>` (the pinned readiness failure)."""
    text = cause if isinstance(cause, str) else error_text(cause)
    return CommandError(f"failed to establish connection for '{name}': {text}")


def check_process_ready(settings: Settings, definition: PluginDefinition) -> None:
    """A process plugin is ready when its binary is installed for this target, executable, not crash-looping."""
    from eventdbx.cli.plugin_support import open_queue
    from eventdbx.plugins.install import resolve_installed
    from eventdbx.plugins.registry import ProcessConfig

    config = definition.config
    if not isinstance(config, ProcessConfig):
        raise PluginError(f"plugin '{definition.name}' is not a process plugin")
    installed = resolve_installed(settings.paths.plugins_dir, config.name, config.version)
    binary = Path(installed.binary_path)
    if not binary.is_file():
        raise PluginError(f"plugin binary '{binary}' does not exist")
    if not os.access(binary, os.X_OK):
        raise PluginError(f"plugin binary '{binary}' is not executable")
    with open_queue(settings) as queue:
        state = queue.get_state(definition.name)
    if state is not None and state.worker_actual == "crash-looping":
        raise PluginError(
            f"process plugin '{definition.name}' is crash-looping; "
            f"run dbx plugin start {definition.name}"
        )


def build(settings: Settings, definition: PluginDefinition) -> Sink:
    """The sink the dispatcher would use for this definition (http, tcp, capnp, log)."""
    from eventdbx.plugins.sinks import build_sink

    return build_sink(definition, settings)


async def probe(sink: Sink, timeout_secs: float) -> None:
    """`sink.check_ready()`, bounded by a safety deadline above the sink's own timeout."""
    async with asyncio.timeout(timeout_secs + 5):
        await sink.check_ready()


def sink_timeout(definition: PluginDefinition) -> float:
    """The configured timeout of a definition (5 s for kinds without one)."""
    value = getattr(definition.config, "timeout_secs", 5)
    return float(value)


def check_ready(settings: Settings, definition: PluginDefinition) -> None:
    """Raise `failed to establish connection for '<n>': <cause>` when the plugin is not ready."""
    if str(definition.kind) == "process":
        try:
            check_process_ready(settings, definition)
        except EventDBXError as exc:
            raise not_ready(definition.name, exc) from exc
        return

    async def run() -> None:
        sink = build(settings, definition)
        try:
            await probe(sink, sink_timeout(definition))
        finally:
            await sink.aclose()

    try:
        asyncio.run(run())
    except TimeoutError as exc:
        raise not_ready(definition.name, "readiness check timed out") from exc
    except Exception as exc:  # any readiness failure becomes the pinned one-line error
        raise not_ready(definition.name, exc) from exc
