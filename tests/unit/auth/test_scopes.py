"""Action/resource globs (auth.md §6)."""

from __future__ import annotations

import pytest

from eventdbx.auth.scopes import action_allowed, glob_match, resource_allowed


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("*.*", "aggregate.append", True),
    ("*.*", "anything", True),
    ("*", "aggregate:order:1", True),
    ("aggregate.*", "aggregate.append", True),
    ("aggregate.*", "aggregate.read", True),
    ("aggregate.*", "aggregates.read", False),
    ("aggregate.append", "aggregate.append", True),
    ("aggregate.append", "aggregate.appendx", False),
    ("aggregate.append", "Aggregate.append", False),
    ("aggregate:order:*", "aggregate:order:1", True),
    ("aggregate:order:*", "aggregate:order:", True),
    ("aggregate:order:*", "aggregate:orders:1", False),
    ("aggregate:*:1", "aggregate:a:b:1", True),
    ("aggregate:order:?", "aggregate:order:1", True),
    ("aggregate:order:?", "aggregate:order:12", False),
    ("a.b", "axb", False),
    ("[ab]", "a", False),
    ("[ab]", "[ab]", True),
    ("*.read", "aggregate.read", True),
])
def test_glob_table(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, value) is expected


def test_empty_actions_grant_nothing_empty_resources_limit_nothing() -> None:
    assert action_allowed([], "aggregate.append") is False
    assert resource_allowed([], "aggregate:x:1") is True
    assert action_allowed(["aggregate.read", "aggregate.append"], "aggregate.append")
    assert not resource_allowed(["aggregate:order:*"], "aggregate:user:1")
