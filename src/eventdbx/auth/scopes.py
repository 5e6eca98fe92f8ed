"""Action and resource scopes (auth.md §6): whole-string, case-sensitive `*`/`?` globs. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

MATCH_ALL: frozenset[str] = frozenset({"*", "*.*"})


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def glob_match(pattern: str, value: str) -> bool:
    """True when `pattern` matches all of `value` (`*.*` and `*` match everything)."""
    if pattern in MATCH_ALL:
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _compile(pattern).fullmatch(value) is not None


def action_allowed(actions: Sequence[str], action: str) -> bool:
    """An action is allowed when any pattern matches it; no actions grant nothing."""
    return any(glob_match(p, action) for p in actions)


def resource_allowed(resources: Sequence[str], resource: str) -> bool:
    """A resource is allowed when any pattern matches it; no resources impose no limit."""
    return not resources or any(glob_match(p, resource) for p in resources)
