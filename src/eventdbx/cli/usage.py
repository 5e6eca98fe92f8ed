"""Clap-style usage error text (`error: …` plus a usage line), as the reference CLI printed it (cli.md §1)."""

from __future__ import annotations

import sys

import click


def _usage_line(ctx: click.Context | None) -> str:
    if ctx is None:
        return "Usage: dbx [OPTIONS] COMMAND"
    return ctx.get_usage()


def param_display(param: click.Parameter) -> str:
    """How clap names a parameter: `<NAME>` for an argument, `--opt <NAME>` for an option with a value."""
    if isinstance(param, click.Argument):
        return f"<{(param.name or 'ARG').upper()}>"
    name = param.opts[0] if param.opts else str(param.name)
    if getattr(param, "is_flag", False):
        return name
    metavar = (getattr(param, "metavar", None) or (param.name or "VALUE").upper()).strip("[]")
    return f"{name} <{metavar}>"


def _missing_text(exc: click.MissingParameter) -> str:
    if exc.param is None:
        return "the following required arguments were not provided"
    return f"the following required arguments were not provided:\n  {param_display(exc.param)}"


def _mentions(message: str, value: str) -> bool:
    """Whether click's message names `value` (quoted anywhere, or bare at its start, e.g. `-3 is not in …`)."""
    return repr(value) in message or message.startswith(f"{value} ")


def _given_values(param: click.Parameter | None, args: list[str]) -> list[str]:
    """The values given on the command line for `param` (all words when it is an argument or unknown)."""
    opts = [*param.opts, *param.secondary_opts] if isinstance(param, click.Option) else []
    if not opts:
        return list(args)
    values: list[str] = []
    for i, arg in enumerate(args):
        if arg in opts and i + 1 < len(args):
            values.append(args[i + 1])
        else:
            name, eq, value = arg.partition("=")
            if eq and name in opts:
                values.append(value)
    return values


def _bad_value(exc: click.BadParameter, args: list[str]) -> str | None:
    """The rejected value as typed: the last given value that click's message names."""
    named = [v for v in _given_values(exc.param, args) if v and _mentions(exc.message, v)]
    return named[-1] if named else None


def _reason(message: str, value: str | None) -> str:
    """Click's message without the value it repeats: `'x' is not a valid integer.` → `not a valid integer`."""
    text = message.strip().rstrip(".")
    if value is not None:
        for shown in (repr(value), value):
            head, found, tail = text.partition(shown)
            if found and (not head or head.endswith(" ")):
                text = tail.strip()
                break
        if text.startswith("is not "):
            text = text[len("is ") :]
    return text.replace("valid integer range", "valid integer") or "invalid value"


def bad_parameter_text(exc: click.BadParameter, args: list[str]) -> str:
    """`invalid value '<v>' for '<arg>': <reason>` (cli.md §1); without the value when it cannot be found."""
    name = param_display(exc.param) if exc.param is not None else (exc.param_hint or "value")
    value = _bad_value(exc, args)
    reason = _reason(exc.message, value)
    if value is None:
        return f"invalid value for '{name}': {reason}"
    return f"invalid value '{value}' for '{name}': {reason}"


def format_usage_error(exc: click.UsageError, args: list[str] | None = None) -> str:
    """`error: <text>` followed by the usage line; `args` is the command line (default: sys.argv)."""
    words = list(sys.argv[1:] if args is None else args)
    if isinstance(exc, click.MissingParameter):
        text = _missing_text(exc)
    elif isinstance(exc, click.NoSuchOption):
        text = f"unexpected argument '{exc.option_name}' found"
    elif isinstance(exc, click.BadParameter):
        text = bad_parameter_text(exc, words)
    else:
        text = exc.message
        if text.startswith("No such command"):
            bad = text.split("'")[1] if "'" in text else text
            text = f"unrecognized subcommand '{bad}'"
        elif text.startswith("Got unexpected extra argument"):
            bad = text.split("(")[-1].rstrip(")").split()[0] if "(" in text else text
            text = f"unexpected argument '{bad}' found"
    return f"error: {text}\n\n{_usage_line(exc.ctx)}\n\nFor more information, try '--help'."
