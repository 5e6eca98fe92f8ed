"""Clap-style usage error text (`error: …` plus a usage line), as the reference CLI printed it."""

from __future__ import annotations

import click


def _usage_line(ctx: click.Context | None) -> str:
    if ctx is None:
        return "Usage: dbx [OPTIONS] COMMAND"
    return ctx.get_usage()


def _missing_text(exc: click.MissingParameter) -> str:
    param = exc.param
    if param is None:
        return "the following required arguments were not provided"
    if isinstance(param, click.Argument):
        name = f"<{(param.name or 'ARG').upper()}>"
    else:
        name = param.opts[0] if param.opts else str(param.name)
        if not getattr(param, "is_flag", False):
            name = f"{name} <{(param.name or 'VALUE').upper()}>"
    return f"the following required arguments were not provided:\n  {name}"


def format_usage_error(exc: click.UsageError) -> str:
    """`error: <text>` followed by the usage line."""
    if isinstance(exc, click.MissingParameter):
        text = _missing_text(exc)
    elif isinstance(exc, click.NoSuchOption):
        text = f"unexpected argument '{exc.option_name}' found"
    elif isinstance(exc, click.BadParameter):
        param = exc.param
        name = (param.opts[0] if isinstance(param, click.Option) and param.opts else
                f"<{(param.name or 'ARG').upper()}>") if param is not None else "value"
        text = f"invalid value for '{name}': {exc.message}"
    else:
        text = exc.message
        if text.startswith("No such command"):
            bad = text.split("'")[1] if "'" in text else text
            text = f"unrecognized subcommand '{bad}'"
        elif text.startswith("Got unexpected extra argument"):
            bad = text.split("(")[-1].rstrip(")").split()[0] if "(" in text else text
            text = f"unexpected argument '{bad}' found"
    return f"error: {text}\n\n{_usage_line(exc.ctx)}\n\nFor more information, try '--help'."
