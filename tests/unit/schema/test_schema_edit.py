"""Pure schema edits: add/remove/annotate events, hide fields, and `schema alter`."""

from __future__ import annotations

from typing import Any

import pytest

from eventdbx.errors import (
    CommandError,
    EventDBXError,
    InvalidSchemaError,
    JsonSyntaxError,
    SchemaViolationError,
)
from eventdbx.schema import (
    ColumnType,
    EventDefinition,
    FieldFormat,
    LengthRule,
    Schema,
    SchemaAlteration,
    add_events,
    alter,
    annotate_event,
    hide_field,
    new_schema,
    parse_column,
    parse_event_fields,
    parse_rules,
    remove_event,
)

T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-02T00:00:00Z"


@pytest.fixture
def schema() -> Schema:
    return new_schema("order", ["order_created", "order_shipped"], None, T0)


def test_add_events_creates_missing_and_keeps_existing(schema: Schema) -> None:
    noted = annotate_event(schema, "order_created", "hello", T0)
    updated = add_events(noted, ["order_paid", "order_created"], T1)
    assert list(updated.events) == ["order_created", "order_paid", "order_shipped"]
    assert updated.events["order_created"].notes == "hello"
    assert updated.updated_at == T1 and updated.created_at == T0
    assert schema.updated_at == T0  # the original is untouched


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([" "], "invalid schema: event names cannot be empty"),
        (["Order-Paid"], "invalid schema: event_type must be lowercase snake_case"),
    ],
)
def test_add_events_errors(schema: Schema, events: list[str], message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        add_events(schema, events, T1)
    assert str(info.value) == message


def test_remove_event(schema: Schema) -> None:
    updated = remove_event(schema, "order_shipped", T1)
    assert list(updated.events) == ["order_created"]
    assert updated.updated_at == T1
    with pytest.raises(SchemaViolationError) as info:
        remove_event(updated, "order_created", T1)
    assert str(info.value) == "schema violation: aggregate order must define at least one event"
    with pytest.raises(SchemaViolationError) as info:
        remove_event(schema, "order_paid", T1)
    assert (
        str(info.value) == "schema violation: event order_paid is not defined for aggregate order"
    )


def test_annotate_set_and_clear(schema: Schema) -> None:
    noted = annotate_event(schema, "order_created", "n" * 128, T1)
    assert noted.events["order_created"].to_dict() == {"fields": [], "notes": "n" * 128}
    cleared = annotate_event(noted, "order_created", None, T1)
    assert cleared.events["order_created"].to_dict() == {"fields": []}


def test_annotate_errors(schema: Schema) -> None:
    with pytest.raises(CommandError) as info:
        annotate_event(schema, "order_created", "n" * 129, T1)
    assert str(info.value) == "note cannot exceed 128 characters"
    with pytest.raises(SchemaViolationError) as violation:
        annotate_event(schema, "order_paid", "x", T1)
    assert "event order_paid is not defined for aggregate order" in str(violation.value)


def test_hide_field_is_idempotent_and_sorted(schema: Schema) -> None:
    once = hide_field(hide_field(schema, "ssn", T1), "dob", T1)
    twice = hide_field(once, "ssn", T1)
    assert twice.hidden_fields == ("dob", "ssn")
    assert twice.to_dict()["hidden_fields"] == ["dob", "ssn"]
    with pytest.raises(InvalidSchemaError) as info:
        hide_field(schema, " ", T1)
    assert str(info.value) == "invalid schema: field name cannot be empty"


# --- alter -------------------------------------------------------------------------------------


def test_alter_requires_a_change(schema: Schema) -> None:
    with pytest.raises(CommandError) as info:
        alter(schema, SchemaAlteration(), T1)
    assert str(info.value) == "no schema changes were requested"


def test_alter_settings(schema: Schema) -> None:
    base = Schema.from_dict({**schema.to_dict(), "hidden_fields": ["a", "b"], "field_locks": ["z"]})
    updated = alter(
        base,
        SchemaAlteration(
            snapshot_threshold=0,
            locked=True,
            lock_fields=("y", "x"),
            unlock_fields=("z",),
            hidden=True,
            unhide_fields=("a", "not_hidden"),
        ),
        T1,
    )
    assert updated.snapshot_threshold == 0
    assert updated.locked and updated.hidden
    assert updated.field_locks == ("x", "y")
    assert updated.hidden_fields == ("b",)
    assert updated.updated_at == T1
    cleared = alter(
        updated, SchemaAlteration(clear_snapshot_threshold=True, locked=False, hidden=False), T1
    )
    assert cleared.snapshot_threshold is None and not cleared.locked and not cleared.hidden


def test_alter_event_fields(schema: Schema) -> None:
    updated = alter(
        schema,
        SchemaAlteration(
            add_fields=(("order_created", ("total", "customer")), ("order_paid", ("amount",))),
            remove_fields=(("order_created", ("customer",)), ("order_unknown", ("x",))),
        ),
        T1,
    )
    assert updated.events["order_created"] == EventDefinition(fields=("total",))
    assert updated.events["order_paid"] == EventDefinition(fields=("amount",))


def test_alter_columns_and_rules(schema: Schema) -> None:
    step1 = alter(
        schema,
        SchemaAlteration(
            columns=(("email", "STRING"), ("address", "object"), ("tmp", "int")),
            rules=(
                ("email", {"format": "email", "length": {"max": 64}}),
                ("address", {"properties": {"zip": "text"}}),
            ),
        ),
        T1,
    )
    assert step1.column_types["email"] == ColumnType(
        type="text", format=FieldFormat.EMAIL, length=LengthRule(max=64)
    )
    assert step1.to_dict()["column_types"]["address"] == {
        "type": "object",
        "properties": {"zip": "text"},
    }
    step2 = alter(
        step1,
        SchemaAlteration(
            drop_columns=("tmp",),
            rules=(("address", {"required": True}),),  # properties kept unless given
            clear_rules=("email",),
        ),
        T1,
    )
    assert "tmp" not in step2.column_types
    assert step2.column_types["email"] == ColumnType(type="text")
    assert step2.column_types["address"].required
    assert list(step2.column_types["address"].properties) == ["zip"]
    step3 = alter(step2, SchemaAlteration(columns=(("address", "json"),)), T1)
    assert step3.column_types["address"].type == "json"
    assert step3.column_types["address"].required  # a type change keeps the rules


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (SchemaAlteration(lock_fields=(" ",)), InvalidSchemaError, "invalid schema: field name cannot be empty"),
        (SchemaAlteration(unhide_fields=("",)), InvalidSchemaError, "invalid schema: field name cannot be empty"),
        (SchemaAlteration(columns=(("", "text"),)), InvalidSchemaError, "invalid schema: field name cannot be empty"),
        (SchemaAlteration(add_fields=(("order_created", ("a", "")),)), InvalidSchemaError, "invalid schema: field name cannot be empty"),
        (SchemaAlteration(add_fields=(("Bad-Event", ("a",)),)), InvalidSchemaError, "invalid schema: event_type must be lowercase snake_case"),
        (SchemaAlteration(columns=(("f", "varchar"),)), InvalidSchemaError, "invalid column type 'varchar'"),
        (SchemaAlteration(rules=(("ghost", {"required": True}),)), InvalidSchemaError, "invalid schema: cannot update rules for undefined field ghost"),
        (SchemaAlteration(clear_rules=("ghost",)), InvalidSchemaError, "invalid schema: cannot update rules for undefined field ghost"),
        (SchemaAlteration(columns=(("f", "text"),), rules=(("f", [1]),)), InvalidSchemaError, "invalid schema: rules for field f must be a JSON object"),
        (SchemaAlteration(columns=(("f", "text"),), rules=(("f", {"requird": True}),)), InvalidSchemaError, "invalid schema: unknown rule 'requird' for field f"),
        (SchemaAlteration(columns=(("f", "text"),), rules=(("f", {"format": "phone"}),)), InvalidSchemaError, "invalid schema: unsupported format 'phone' for field f"),
    ],
)  # fmt: skip
def test_alter_errors(
    schema: Schema, change: SchemaAlteration, error: type[EventDBXError], message: str
) -> None:
    with pytest.raises(error) as info:
        alter(schema, change, T1)
    assert str(info.value) == message


def test_option_parsers() -> None:
    assert parse_event_fields("order_created=a, b") == ("order_created", ("a", "b"))
    assert parse_event_fields("order_created=") == ("order_created", ())
    assert parse_column("price=Decimal(10, 2)") == ("price", "decimal(10,2)")
    rules: Any = parse_rules('email={"format":"email"}')
    assert rules == ("email", {"format": "email"})
    with pytest.raises(InvalidSchemaError, match="invalid column type 'nope'"):
        parse_column("f=nope")
    with pytest.raises(CommandError):
        parse_column("no-equals-sign")
    with pytest.raises(JsonSyntaxError):
        parse_rules("f={bad")
