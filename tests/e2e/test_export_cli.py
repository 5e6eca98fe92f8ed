"""`dbx aggregate export` through the real CLI (cli.md §6): formats, file vs directory rules, zip, messages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from tests.conftest import DbxEnv


@pytest.fixture
def seeded(dbx: DbxEnv) -> DbxEnv:
    """Two order aggregates (different keys), one account; a hidden field on order."""
    dbx.ok("aggregate", "apply", "order", "o2", "order_created", "--payload",
           '{"status":"new","note":"a,b \\"q\\""}')
    dbx.ok("aggregate", "apply", "order", "o1", "order_created", "--field", "status=paid",
           "--field", "total=5")
    dbx.ok("aggregate", "apply", "account", "a1", "account_created", "--field", "name=Ann")
    dbx.ok("schema", "create", "order", "-e", "order_created")
    dbx.ok("schema", "hide", "--aggregate", "order", "--field", "total")
    return dbx


def test_csv_to_named_file(seeded: DbxEnv) -> None:
    out = seeded.home / "orders.CSV"
    res = seeded.ok("aggregate", "export", "order", "--output", str(out))
    assert res.out == f"wrote {out}\nExported 1 aggregate type(s) in CSV format\n"
    assert out.read_text() == (
        "__aggregate_id,note,status,total\n"
        "o1,,paid,5\n"
        'o2,"a,b ""q""",new,\n'
    )


def test_csv_into_directory(seeded: DbxEnv) -> None:
    out = seeded.home / "exports"
    res = seeded.ok("aggregate", "export", "account", "--output", str(out))
    target = out / "account.csv"
    assert res.out == f"wrote {target}\nExported 1 aggregate type(s) in CSV format\n"
    assert target.read_text() == "__aggregate_id,name\na1,Ann\n"


def test_existing_file_without_extension_is_overwritten(seeded: DbxEnv) -> None:
    out = seeded.home / "dump"
    out.write_text("old")
    seeded.ok("aggregate", "export", "account", "--output", str(out), "--format", "json")
    assert json.loads(out.read_text()) == [{"__aggregate_id": "a1", "name": "Ann"}]


def test_json_compact_and_pretty(seeded: DbxEnv) -> None:
    out = seeded.home / "o.json"
    res = seeded.ok("aggregate", "export", "order", "--output", str(out), "--format", "json")
    assert "Exported 1 aggregate type(s) in JSON format" in res.out
    text = out.read_text()
    assert text.endswith("]\n") and "\n" not in text[:-1]
    assert text.startswith('[{"__aggregate_id":"o1","status":"paid","total":"5"}')
    seeded.ok("aggregate", "export", "order", "--output", str(out), "--format", "json", "--pretty")
    text = out.read_text()
    assert text.startswith('[\n  {\n    "__aggregate_id": "o1",\n')
    assert json.loads(text)[1] == {"__aggregate_id": "o2", "note": 'a,b "q"', "status": "new"}


def test_all_types_into_directory(seeded: DbxEnv) -> None:
    out = seeded.home / "all"
    res = seeded.ok("aggregate", "export", "--all", "--output", str(out), "--format", "json")
    assert res.out == (f"wrote {out / 'account.json'}\nwrote {out / 'order.json'}\n"
                       "Exported 2 aggregate type(s) in JSON format\n")
    assert json.loads((out / "order.json").read_text())[0]["__aggregate_id"] == "o1"
    file_out = seeded.home / "x.csv"
    file_out.write_text("")
    err = seeded.fail("aggregate", "export", "--all", "--output", str(file_out)).err
    assert "output path must be a directory when exporting multiple aggregate types" in err


def test_zip_outputs(seeded: DbxEnv) -> None:
    folder = seeded.home / "zips"
    folder.mkdir()
    res = seeded.ok("aggregate", "export", "order", "--output", str(folder), "--zip")
    archive = folder / "order_csv.zip"
    assert res.out == f"Exported 1 aggregate type(s) to {archive} (zip archive)\n"
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["order.csv"]
        assert zf.getinfo("order.csv").compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("order.csv").decode().startswith("__aggregate_id,note,status,total\n")
    res = seeded.ok("aggregate", "export", "--all", "--output", str(folder), "--zip",
                    "--format", "json")
    archive = folder / "aggregates_json.zip"
    assert res.out == f"Exported 2 aggregate type(s) to {archive} (zip archive)\n"
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == ["account.json", "order.json"]
    res = seeded.ok("aggregate", "export", "order", "--output", str(seeded.home / "bundle.csv"),
                    "--zip")
    assert f"to {seeded.home / 'bundle.zip'} (zip archive)" in res.out
    assert (seeded.home / "bundle.zip").is_file()


def test_nothing_found_and_argument_rules(seeded: DbxEnv) -> None:
    out = str(seeded.home / "none.csv")
    assert seeded.ok("aggregate", "export", "invoice", "--output", out).out == \
        "no aggregates found for 'invoice'\n"
    assert not Path(out).exists()
    err = seeded.fail("aggregate", "export", "order", "--all", "--output", out).err
    assert "Error: aggregate name cannot be provided when using --all" in err
    err = seeded.fail("aggregate", "export", "--output", out).err
    assert "Error: aggregate name must be provided unless --all is specified" in err
    seeded.fail("aggregate", "export", "order", code=2)
    seeded.fail("aggregate", "export", "order", "--output", out, "--format", "xml", code=2)


def test_empty_store_all(dbx: DbxEnv) -> None:
    dbx.ok("schema", "list")
    assert dbx.ok("aggregate", "export", "--all", "--output", str(dbx.home / "o")).out == \
        "no aggregates found\n"


def test_no_progress_bar_when_not_a_tty(seeded: DbxEnv) -> None:
    res = seeded.ok("aggregate", "export", "--all", "--output", str(seeded.home / "p"))
    assert res.err == ""
