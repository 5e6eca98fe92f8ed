"""The real `dbx` never shows a traceback: exceptions outside EventDBX's tree, usage-error wording, the apply fast path."""

from __future__ import annotations

import json

import pytest
from tests.conftest import DbxEnv

HUGE = "9" * 30  # past SQLite's 64-bit INTEGER: the driver raises OverflowError
NOT_UTF8 = "\udcff"  # an argv byte 0xff that is not UTF-8 (surrogate-escaped by Python)


def _one_error_line(err: str) -> None:
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ("aggregate", "list", "--take", HUGE),
        ("aggregate", "list", "--skip", HUGE),
        ("aggregate", "replay", "order", "o1", "--skip", HUGE),
        ("aggregate", "apply", "order", "o2", "order_created", "--field", f"a={NOT_UTF8}"),
        ("aggregate", "apply", "order", "o2", "order_created", "--note", NOT_UTF8),
    ],
)
def test_foreign_exceptions_are_one_line(dbx: DbxEnv, args: tuple[str, ...]) -> None:
    dbx.ok("aggregate", "apply", "order", "o1", "order_created")
    res = dbx.fail(*args, code=1)
    _one_error_line(res.err)
    assert res.out == ""


def test_debug_env_shows_the_traceback(dbx: DbxEnv) -> None:
    dbx.ok("aggregate", "apply", "order", "o1", "order_created")
    res = dbx.run("aggregate", "list", "--take", HUGE, EVENTDBX_DEBUG="1")
    assert res.code == 1
    assert "Traceback" in res.err and "OverflowError" in res.err
    assert res.err.splitlines()[-1].startswith("Error: ")


def test_unusable_data_dir_is_one_line(dbx: DbxEnv) -> None:
    config = dbx.home / "elsewhere" / "config.toml"
    config.parent.mkdir()
    config.write_text('data_dir = "/dev/null/data"\n')
    res = dbx.fail(
        "--config", str(config), "aggregate", "apply", "order", "o1", "order_created", code=1
    )
    _one_error_line(res.err)
    blocked = dbx.home / "blocked"
    (blocked / "event_store.db").mkdir(parents=True)  # a directory where the database file belongs
    config.write_text(f'data_dir = "{blocked}"\n')
    res = dbx.fail(
        "--config", str(config), "aggregate", "apply", "order", "o1", "order_created", code=1
    )
    _one_error_line(res.err)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            ("aggregate", "list", "--take", "x"),
            "error: invalid value 'x' for '--take <TAKE>': not a valid integer",
        ),
        (
            ("aggregate", "list", "--skip=-1"),
            "error: invalid value '-1' for '--skip <SKIP>': not in the range x>=0",
        ),
        (
            ("aggregate", "apply", "order", "o1", "order_created", "--expected-version", "v1"),
            "error: invalid value 'v1' for '--expected-version <EXPECTED_VERSION>': not a valid integer",
        ),
        (
            ("aggregate", "apply", "order", "o1", "order_created", "--field", "novalue"),
            "error: invalid value 'novalue' for '--field <KEY=VALUE>': missing value",
        ),
        (
            ("aggregate", "export", "order", "--format", "xml"),
            "error: invalid value 'xml' for '--format <FMT>': not one of 'csv', 'json'",
        ),
        (
            ("queue", "--status", "late"),
            "error: invalid value 'late' for '--status <STATUS>': not one of",
        ),
    ],
)
def test_bad_option_values_name_value_and_option(
    dbx: DbxEnv, args: tuple[str, ...], text: str
) -> None:
    res = dbx.fail(*args, code=2)
    assert res.err.startswith(text), res.err
    assert "Usage: dbx " in res.err
    assert res.out == ""


def test_fast_path_and_click_path_write_the_same(dbx: DbxEnv) -> None:
    # `--` makes the fast path hand the line to click; both must store and print the same thing.
    options = (
        "--field",
        "status=new ",
        "--field",
        " total=15",
        "--note",
        "first",
        "--expected-version",
        "0",
    )
    fast = json.loads(dbx.ok("aggregate", "apply", "order", "fast", "order_created", *options).out)
    slow = json.loads(
        dbx.ok("aggregate", "apply", *options, "--", "order", "slow", "order_created").out
    )
    assert fast.keys() == slow.keys()
    assert fast["payload"] == slow["payload"] == {"status": "new", "total": "15"}
    assert fast["version"] == slow["version"] == 1
    staged = dbx.ok(
        "--config",
        str(dbx.data_dir / "config.toml"),
        "-v",
        "aggregate",
        "apply",
        "order",
        "fast",
        "order_updated",
        '--payload={"a":1}',
        "--stage",
    )
    assert staged.out == "event staged for later commit\n"
    conflict = dbx.fail(
        "aggregate", "apply", "order", "fast", "order_updated", "--expected-version=0"
    )
    _one_error_line(conflict.err)
    assert conflict.err.startswith("Error: version conflict")
