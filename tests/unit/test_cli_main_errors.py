"""main(): any exception becomes one `Error:` line (exit 1); Ctrl-C exits 130 quietly; a broken pipe exits 1."""

from __future__ import annotations

import pytest

from eventdbx.cli import main as cli_main


def _run(monkeypatch: pytest.MonkeyPatch, exc: BaseException, *args: str) -> int:
    def boom(argv: list[str]) -> int:
        raise exc

    monkeypatch.setattr(cli_main, "_dispatch", boom)
    with pytest.raises(SystemExit) as info:
        cli_main.main(list(args))
    code = info.value.code
    assert isinstance(code, int)
    return code


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (MemoryError(), "Error: out of memory"),
        (
            OverflowError("Python int too large\nto convert"),
            "Error: Python int too large to convert",
        ),
        (RuntimeError(), "Error: RuntimeError"),
        (
            PermissionError(13, "Permission denied", "/data"),
            "Error: [Errno 13] Permission denied: '/data'",
        ),
    ],
)
def test_foreign_exceptions_print_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    line: str,
) -> None:
    monkeypatch.delenv("EVENTDBX_DEBUG", raising=False)
    assert _run(monkeypatch, exc) == 1
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


def test_verbose_appends_the_cause_chain(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exc = ValueError("outer")
    exc.__cause__ = KeyError("inner")
    assert _run(monkeypatch, exc, "-v") == 1
    assert capsys.readouterr().err == "Error: outer: 'inner'\n"


def test_keyboard_interrupt_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == ""
