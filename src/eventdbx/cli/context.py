"""The CLI's per-invocation context: where the config lives, loaded once on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventdbx.config import Settings


class CliContext:
    """Global options and lazily loaded settings shared by every command of one invocation."""

    # A plain slotted class, not a dataclass: building one at import costs `dbx` start-up time.
    __slots__ = ("_settings", "config_arg", "verbose")

    def __init__(self, config_arg: str | None, verbose: bool = False) -> None:
        self.config_arg = config_arg
        self.verbose = verbose
        self._settings: Settings | None = None

    def __repr__(self) -> str:
        return f"CliContext(config_arg={self.config_arg!r}, verbose={self.verbose!r})"

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
    """The CliContext of the running click command."""
    import click

    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    if obj is None:  # invoked without the root group (tests)
        obj = CliContext(config_arg=None)
        ctx.obj = obj
    return obj
