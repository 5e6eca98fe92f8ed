"""`dbx schema …` through the real CLI: every pinned string of cli.md §5 and the key non-pinned outputs."""

from __future__ import annotations

import json

import pytest
from tests.conftest import DbxEnv

HELP = {
    ("schema",): "Manage schemas",
    ("schema", "create"): "Create a new schema definition",
    ("schema", "add"): "Add events to an existing schema definition",
    ("schema", "remove"): "Remove an event definition from an aggregate",
    ("schema", "annotate"): "Set or clear the default note for an event",
    ("schema", "list"): "List available schemas",
    ("schema", "hide"): "Hide a field from aggregate detail responses",
    ("schema", "validate"): "Validate payload against a schema definition",
    ("schema", "alter"): "Change schema settings, event fields, column types and rules",
}


@pytest.mark.parametrize(("command", "summary"), list(HELP.items()))
def test_help_summaries(dbx: DbxEnv, command: tuple[str, ...], summary: str) -> None:
    assert summary in dbx.ok(*command, "--help").out


def test_create_text_json_and_errors(dbx: DbxEnv) -> None:
    res = dbx.ok("schema", "create", "order", "--events", "order_created,order_updated", "-s", "3")
    assert res.out == "schema=order events=2 snapshot_threshold=Some(3)\n"
    res = dbx.ok("schema", "create", "person", "-e", "person_created")
    assert res.out == "schema=person events=1 snapshot_threshold=None\n"
    doc = json.loads(dbx.ok("schema", "create", "item", "-e", "item_created", "--json").out)
    assert doc["aggregate"] == "item"
    assert list(doc["events"]) == ["item_created"]
    assert list(doc) == ["aggregate", "snapshot_threshold", "locked", "field_locks", "hidden",
                         "hidden_fields", "column_types", "events", "created_at", "updated_at"]
    assert "schema already exists" in dbx.fail("schema", "create", "order", "-e", "x_created").err
    err = dbx.fail("schema", "create", "", "-e", "a_created").err
    assert "Error: invalid schema: aggregate name must be provided" in err
    err = dbx.fail("schema", "create", "thing").err
    assert "Error: invalid schema: at least one event must be provided" in err
    err = dbx.fail("schema", "create", "thing", "-e", "a,,b").err
    assert "Error: invalid schema: event names cannot be empty" in err
    err = dbx.fail("schema", "create", "Thing", "-e", "a").err
    assert "Error: invalid schema: aggregate_type must be lowercase snake_case" in err


def test_create_threshold_defaults_from_config(dbx: DbxEnv) -> None:
    dbx.ok("config", "--snapshot-threshold", "5")
    assert "snapshot_threshold=Some(5)" in dbx.ok("schema", "create", "a", "-e", "a_created").out


def test_add_remove(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    res = dbx.ok("schema", "add", "order", "order_paid,order_shipped", "order_closed")
    assert res.out == "schema=order added_events=order_paid,order_shipped,order_closed total_events=4\n"
    assert "schema not found" in dbx.fail("schema", "add", "nope", "x").err
    assert "at least one event must be provided" in dbx.fail("schema", "add", "order", "").err
    assert "event names cannot be empty" in dbx.fail("schema", "add", "order", "a,,b").err
    res = dbx.ok("schema", "remove", "order", "order_closed")
    assert res.out == "schema=order removed_event=order_closed remaining_events=3\n"
    err = dbx.fail("schema", "remove", "order", "order_closed").err
    assert "schema violation: event order_closed is not defined for aggregate order" in err
    dbx.ok("schema", "remove", "order", "order_paid")
    dbx.ok("schema", "remove", "order", "order_shipped")
    err = dbx.fail("schema", "remove", "order", "order_created").err
    assert "schema violation: aggregate order must define at least one event" in err


def test_annotate(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    res = dbx.ok("schema", "annotate", "order", "order_created", "--note", "Created by checkout")
    assert res.out == 'aggregate=order event=order_created note_set="Created by checkout"\n'
    doc = json.loads(dbx.ok("schema", "show", "order").out)
    assert doc["events"]["order_created"]["notes"] == "Created by checkout"
    res = dbx.ok("schema", "annotate", "order", "order_created", "--clear")
    assert res.out == "aggregate=order event=order_created note_cleared\n"
    doc = json.loads(dbx.ok("schema", "order").out)
    assert "notes" not in doc["events"]["order_created"]
    cases = [
        (("", "order_created", "--clear"), "aggregate name cannot be empty"),
        (("order", "", "--clear"), "event name cannot be empty"),
        (("order", "order_created", "--note", "x", "--clear"), "--note cannot be combined with --clear"),
        (("order", "order_created"), "either --note must be provided or use --clear"),
        (("order", "order_created", "--note", "n" * 129), "note cannot exceed 128 characters"),
        (("order", "nope", "--clear"), "event nope is not defined for aggregate order"),
        (("missing", "x", "--clear"), "schema not found"),
    ]
    for args, message in cases:
        assert message in dbx.fail("schema", "annotate", *args).err


def test_list_and_show(dbx: DbxEnv) -> None:
    assert dbx.ok("schema", "list").out == ""
    assert json.loads(dbx.ok("schema", "list", "--json").out) == []
    assert dbx.ok("schema", "list", "--json").out.strip() == "[]"
    dbx.ok("schema", "create", "order", "-e", "order_created,order_updated", "-s", "2")
    dbx.ok("schema", "create", "account", "-e", "account_created")
    res = dbx.ok("schema", "list")
    assert res.out.splitlines() == [
        "schema=account events=1 locked=false snapshot_threshold=None",
        "schema=order events=2 locked=false snapshot_threshold=Some(2)",
    ]
    docs = json.loads(dbx.ok("schema", "list", "--json").out)
    assert [d["aggregate"] for d in docs] == ["account", "order"]
    shown = json.loads(dbx.ok("schema", "show", "order").out)
    assert shown["aggregate"] == "order"
    assert shown["events"]["order_created"]["fields"] == []
    assert json.loads(dbx.ok("schema", "order").out) == shown
    assert "schema not found" in dbx.fail("schema", "nope").err
    assert "schema not found" in dbx.fail("schema", "show", "nope").err
    err = dbx.fail("schema").err
    assert "Error: missing aggregate name; try `dbx schema <aggregate>`" in err
    err = dbx.fail("schema", "order", "extra").err
    assert ("Error: unsupported schema command; available subcommands are create, add, remove, "
            "annotate, list, show, hide, validate, alter") in err


def test_hide(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "person", "-e", "person_created")
    res = dbx.ok("schema", "hide", "--aggregate", "person", "--field", "ssn")
    assert res.out == "aggregate=person field=ssn hidden\n"
    assert dbx.ok("schema", "hide", "--aggregate", "person", "--field", "ssn").out == res.out
    assert json.loads(dbx.ok("schema", "person").out)["hidden_fields"] == ["ssn"]
    assert "aggregate name cannot be empty" in dbx.fail(
        "schema", "hide", "--aggregate", "", "--field", "x").err
    assert "field name cannot be empty" in dbx.fail(
        "schema", "hide", "--aggregate", "person", "--field", " ").err
    assert "schema not found" in dbx.fail("schema", "hide", "--aggregate", "x", "--field", "y").err


def test_validate(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    dbx.ok("schema", "alter", "order", "--add-fields", "order_created=status")
    base = ("schema", "validate", "--aggregate", "order", "--event")
    res = dbx.ok(*base, "order_created", "--payload", '{"status":"new"}')
    assert res.out == "aggregate=order event=order_created validation=ok\n"
    err = dbx.fail(*base, "order_created", "--payload", "{1}").err
    assert err.startswith("Error: key must be a string at line 1 column 2")
    err = dbx.fail(*base, "order_shipped", "--payload", "{}").err
    assert "event order_shipped is not defined for aggregate order" in err
    err = dbx.fail(*base, "order_created", "--payload", '{"other":1}').err
    assert "schema violation:" in err
    assert "schema not found" in dbx.fail(
        "schema", "validate", "--aggregate", "x", "--event", "e", "--payload", "{}").err


def test_validate_ignores_restrict_off(dbx: DbxEnv) -> None:
    dbx.ok("config", "--restrict", "off")
    dbx.ok("schema", "create", "order", "-e", "order_created")
    err = dbx.fail("schema", "validate", "--aggregate", "order", "--event", "x",
                   "--payload", "{}").err
    assert "event x is not defined for aggregate order" in err


def test_alter(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    assert dbx.ok("schema", "alter", "order", "--lock").out == "schema=order updated\n"
    assert json.loads(dbx.ok("schema", "order").out)["locked"] is True
    doc = json.loads(dbx.ok("schema", "alter", "order", "--hide", "--json").out)
    assert doc["hidden"] is True and doc["locked"] is True
    assert json.loads(dbx.ok("schema", "alter", "order", "--unhide", "--json").out)["hidden"] is False
    assert json.loads(dbx.ok("schema", "alter", "order", "--unlock", "--json").out)["locked"] is False
    doc = json.loads(dbx.ok(
        "schema", "alter", "order", "--unlock", "--snapshot-threshold", "4", "--lock-field", "id",
        "--add-fields", "order_shipped=carrier,tracking", "--column", "total=INT",
        "--column", "when=timestamp", "--rules", 'total={"required":true}', "--json",
    ).out)
    assert doc["locked"] is False
    assert doc["snapshot_threshold"] == 4
    assert doc["field_locks"] == ["id"]
    assert doc["events"]["order_shipped"]["fields"] == ["carrier", "tracking"]
    assert doc["column_types"]["when"] == "timestamp"
    assert doc["column_types"]["total"]["type"] == "integer"
    doc = json.loads(dbx.ok("schema", "alter", "order", "--clear-snapshot-threshold",
                            "--drop-column", "when", "--remove-fields", "order_shipped=carrier",
                            "--json").out)
    assert doc["snapshot_threshold"] is None
    assert "when" not in doc["column_types"]
    assert doc["events"]["order_shipped"]["fields"] == ["tracking"]
    cases = [
        ((), "no schema changes were requested"),
        (("--lock-field", ""), "invalid schema: field name cannot be empty"),
        (("--column", "x=varchar"), "invalid column type 'varchar'"),
        (("--rules", 'nope={"required":true}'), "invalid schema: cannot update rules for undefined field nope"),
    ]
    for args, message in cases:
        assert message in dbx.fail("schema", "alter", "order", *args).err
    assert "schema not found" in dbx.fail("schema", "alter", "nope", "--lock").err


BAD_INPUTS = [
    (("schema", "create"), 2),
    (("schema", "create", "x", "-s", "abc", "-e", "x_created"), 2),
    (("schema", "create", "x", "-s", "-1", "-e", "x_created"), 2),
    (("schema", "add", "x"), 2),
    (("schema", "hide", "--aggregate", "x"), 2),
    (("schema", "validate", "--aggregate", "x", "--event", "e"), 2),
    (("schema", "list", "--bogus"), 2),
    (("schema", "alter", "x", "--lock", "--unlock-field"), 2),
    (("schema", "alter", "order", "--lock", "--unlock"), 2),
    (("schema", "alter", "order", "--hide", "--unhide"), 2),
    (("schema", "alter", "order", "--snapshot-threshold", "2", "--clear-snapshot-threshold"), 2),
    (("schema", "alter", "order", "--rules", "total={"), 1),
    (("schema", "alter", "order", "--add-fields", "noequals"), 1),
    (("schema", "validate", "--aggregate", "order", "--event", "e", "--payload", ""), 1),
    (("schema", "validate", "--aggregate", "order", "--event", "e", "--payload", "[1,"), 1),
    (("schema", "create", "x" * 200, "-e", "x_created"), 1),
]


@pytest.mark.parametrize(("args", "code"), BAD_INPUTS)
def test_bad_input_is_one_line(dbx: DbxEnv, args: tuple[str, ...], code: int) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    dbx.ok("schema", "alter", "order", "--column", "total=int")
    res = dbx.fail(*args, code=code)
    prefix = "Error: " if code == 1 else "error: "
    assert res.err.startswith(prefix), res.err
    if code == 1:
        assert res.err.count("\n") == 1, res.err
    assert res.out == ""
