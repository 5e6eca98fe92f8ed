"""The `dbx` entry point: the click-free fast path for `aggregate apply`, click for the rest, one-line errors.

Nothing heavy is imported at module level: `dbx aggregate apply` start-up is a product target (≤ 60 ms).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

from eventdbx.errors import EventDBXError

DEBUG_ENV = "EVENTDBX_DEBUG"


def _print_error(exc: BaseException, verbose: bool) -> None:
    message = exc.message if isinstance(exc, EventDBXError) else _one_line(exc)
    line = f"Error: {message}"
    if verbose:
        cause = exc.__cause__
        while cause is not None:
            line += f": {_one_line(cause)}"
            cause = cause.__cause__
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _one_line(exc: BaseException) -> str:
    """str(exc) on one line; the class name when the exception says nothing (e.g. a bare MemoryError)."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _click_exit_code(exc: BaseException, args: list[str]) -> int | None:
    """The exit code of a click exception after reporting it; None when `exc` is not click's."""
    if "click" not in sys.modules:
        return None
    import click

    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        sys.stderr.write("Aborted!\n")
        return 1
    if isinstance(exc, click.UsageError):
        from eventdbx.cli.usage import format_usage_error

        sys.stderr.write(format_usage_error(exc, args) + "\n")
        return 2
    if isinstance(exc, click.ClickException):
        sys.stderr.write(f"Error: {exc.format_message()}\n")
        return exc.exit_code
    return None


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _exit_code(exc: BaseException, args: list[str], verbose: bool) -> int:
    """Report any failure as one line on stderr (a traceback only with EVENTDBX_DEBUG=1); the exit code."""
    code = _click_exit_code(exc, args)
    if code is not None:
        return code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return 1
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        import traceback

        traceback.print_exception(exc)
    _print_error(exc, verbose)
    return exc.exit_code if isinstance(exc, EventDBXError) else 1


def _dispatch(args: list[str]) -> int:
    if "apply" in args:
        from eventdbx.cli.aggregate_apply import fast_apply

        if fast_apply(args):
            return 0
    from eventdbx.cli.root import run_click

    return run_click(args)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: never shows a traceback, whatever goes wrong."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    # Start-up imports allocate many long-lived objects: cyclic GC passes over them are wasted time (~5% of
    # `aggregate apply`). The click root group turns it back on before a command runs (the daemon, too).
    gc.disable()
    try:
        code = _dispatch(args)
    except SystemExit:
        raise
    except BaseException as exc:  # the one place that turns every failure into `Error: …`
        code = _exit_code(exc, args, verbose)
    finally:
        gc.enable()
    # From the process entry point (console script, `python -m eventdbx`; not an in-process call): the
    # interpreter's final cyclic collection would walk every object ever loaded (~4 ms of a CLI run) only to
    # free memory the process is about to give back; stores are closed by now.
    if argv is None:
        gc.freeze()
    sys.exit(code)


def run(args: list[str]) -> Any:
    """Invoke the CLI in-process through click (tests): returns click's result."""
    from eventdbx.cli.root import cli

    return cli.main(args=args, prog_name="dbx", standalone_mode=False)
