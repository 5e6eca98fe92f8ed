"""Readiness checks for `plugin enable` and `plugin test` (plugins.md §8)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition


def check_ready(settings: Settings, definition: PluginDefinition) -> None:
    """Raise `failed to establish connection for '<n>'` with the cause when the sink is not ready."""
    from eventdbx.plugins.sinks import build_sink

    async def probe() -> None:
        sink = build_sink(definition, settings)
        try:
            await sink.check_ready()
        finally:
            await sink.aclose()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any readiness failure becomes the pinned one-line error
        cause = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise CommandError(
            f"failed to establish connection for '{definition.name}': {cause}"
        ) from exc
