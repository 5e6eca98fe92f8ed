"""The click-free `aggregate apply` parser agrees with click on every line it accepts and hands the rest to click."""

from __future__ import annotations

import gc
from pathlib import Path

import click
import pytest

from eventdbx.cli.aggregate import apply
from eventdbx.cli.aggregate_apply import _apply_line, _global_options

ACCEPTED: list[list[str]] = [
    ["order", "o1", "order_created"],
    ["order", "o1", "order_created", "--field", "a=1", "--field", " b = two=2 "],
    ["--field=a=", "order", "--stage", "o1", "order_created"],
    [
        "order",
        "o1",
        "order_created",
        "--payload",
        '{"a":[1,2]}',
        "--note",
        "n",
        "--metadata",
        '{"@k":1}',
    ],
    ["order", "o1", "order_created", "--patch=[]", "--token", "t.k.n", "--expected-version", "007"],
    ["", "o1", "x", "--payload="],
    ["order", "o1", "order_created", "--stage", "--stage"],
]

FALLBACK: list[list[str]] = [
    ["order", "o1"],
    ["order", "o1", "order_created", "extra"],
    ["order", "o1", "order_created", "--help"],
    ["order", "o1", "order_created", "-h"],
    ["--", "order", "o1", "order_created"],
    ["order", "o1", "order_created", "--field", "novalue"],
    ["order", "o1", "order_created", "--field", " =x"],
    ["order", "o1", "order_created", "--payload"],
    ["order", "o1", "order_created", "--payload", "--stage"],
    ["order", "o1", "order_created", "--note", "a", "--note", "b"],
    ["order", "o1", "order_created", "--expected-version", "-1"],
    ["order", "o1", "order_created", "--expected-version", "1_0"],
    ["order", "o1", "order_created", "--expected-version", "²"],
    ["order", "o1", "order_created", "--stage=yes"],
    ["order", "o1", "order_created", "--pay", "{}"],
    ["-", "o1", "order_created"],
]


@pytest.mark.parametrize("argv", ACCEPTED)
def test_accepted_lines_parse_like_click(argv: list[str]) -> None:
    line = _apply_line(argv)
    assert line is not None
    params = apply.make_context("apply", list(argv)).params
    assert line.positionals == [params["aggregate_type"], params["aggregate_id"], params["event"]]
    assert tuple(line.fields) == params["fields"]
    assert line.stage == params["stage"]
    assert line.expected_version == params["expected_version"]
    for key in ("payload", "patch", "metadata", "note", "token"):
        assert line.values.get(key) == params[key], key


@pytest.mark.parametrize("argv", FALLBACK)
def test_other_lines_go_to_click(argv: list[str]) -> None:
    assert _apply_line(argv) is None


def test_global_options(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    parsed = _global_options(["--config", str(config), "-v", "aggregate", "apply"])
    assert parsed is not None and parsed[1] == 3
    assert parsed[0].config_arg == str(config) and parsed[0].verbose
    parsed = _global_options([f"--config={config}", "aggregate"])
    assert parsed is not None and parsed[0].config_arg == str(config) and not parsed[0].verbose
    for argv in (
        ["--config"],
        ["--config", str(tmp_path)],
        ["--config="],
        ["--version"],
        ["-h"],
        ["--config", "a", "--config", "b"],
        ["--verbose=1"],
    ):
        assert _global_options(argv) is None, argv


def test_click_rejects_what_the_fast_path_refuses() -> None:
    # The refusals above are not arbitrary: click itself rejects most of these lines.
    for argv in (
        FALLBACK[0],
        FALLBACK[1],
        FALLBACK[5],
        FALLBACK[7],
        FALLBACK[10],
        FALLBACK[13],
        FALLBACK[14],
    ):
        with pytest.raises(click.UsageError):
            apply.make_context("apply", list(argv))


def test_main_turns_gc_off_for_start_up_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from eventdbx.cli import root
    from eventdbx.cli.main import main

    seen: list[bool] = []
    probe = click.Command("probe", callback=lambda: seen.append(gc.isenabled()))
    monkeypatch.setattr(root.LazyGroup, "get_command", lambda self, ctx, name: probe)
    with pytest.raises(SystemExit) as exit_info:
        main(["probe"])
    assert exit_info.value.code == 0
    assert seen == [True]  # commands (the daemon among them) run with the cyclic GC on
    assert gc.isenabled()
