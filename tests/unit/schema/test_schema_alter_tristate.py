"""`schema alter --unlock` / `--unhide` alone are real changes (regression)."""

from eventdbx.schema.alter import SchemaAlteration


def test_false_locked_or_hidden_is_a_change() -> None:
    assert SchemaAlteration().is_empty()
    assert not SchemaAlteration(locked=False).is_empty()
    assert not SchemaAlteration(hidden=False).is_empty()
