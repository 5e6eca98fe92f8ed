"""Backoff table, Retry-After parsing and the dead rule (plugins.md §5)."""

from __future__ import annotations

import pytest

from eventdbx.plugins.backoff import (
    backoff_delay,
    effective_max_attempts,
    is_dead,
    parse_retry_after,
    retry_delay,
)


@pytest.mark.parametrize(
    ("attempts", "wait"), [(1, 1), (2, 2), (3, 4), (4, 10), (9, 10), (100, 10)]
)
def test_backoff_table(attempts: int, wait: float) -> None:
    assert backoff_delay(attempts) == wait


def test_ten_attempts_wait_at_least_67_seconds() -> None:
    assert sum(backoff_delay(n) for n in range(1, 10)) == 67


@pytest.mark.parametrize(
    ("attempts", "retry_after", "wait"),
    [(1, None, 1), (1, 30, 30), (4, 3, 10), (2, 5000, 3600), (1, 0, 1), (4, float("inf"), 10)],
)
def test_retry_delay_takes_the_longer_wait_capped(
    attempts: int, retry_after: float | None, wait: float
) -> None:
    assert retry_delay(attempts, retry_after) == wait


@pytest.mark.parametrize(
    ("attempts", "maximum", "dead"),
    [
        (1, 0, True),
        (1, 1, True),
        (1, 3, False),
        (2, 3, False),
        (3, 3, True),
        (9, 10, False),
        (10, 10, True),
    ],
)
def test_dead_at_the_maximum(attempts: int, maximum: int, dead: bool) -> None:
    assert is_dead(attempts, maximum) is dead


def test_max_below_one_counts_as_one() -> None:
    assert effective_max_attempts(0) == 1
    assert effective_max_attempts(-5) == 1
    assert effective_max_attempts(10) == 10


NOW = 1445412470.0  # 2015-10-21T07:27:50Z


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
