"""The CLI's per-invocation context: where the config lives, loaded once on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from eventdbx.config import Settings


@dataclass(slots=True)
class CliContext:
    """Global options and lazily loaded settings shared by every command of one invocation."""

    config_arg: str | None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Load (and on first use create) the configuration."""
        if self._settings is None:
            from eventdbx.config import load_settings

            self._settings = load_settings(self.config_arg)
        return self._settings

    def reload(self) -> Settings:
        """Forget the cached settings and load them again (after a command saved changes)."""
        self._settings = None
        return self.settings()


def cli_context() -> CliContext:
    """The CliContext of the running command."""
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    if obj is None:  # invoked without the root group (tests)
        obj = CliContext(config_arg=None)
        ctx.obj = obj
    return obj
