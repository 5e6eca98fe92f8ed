"""Retry timing for plugin jobs (plugins.md §5): backoff per attempt, Retry-After, when a job is dead.

Pure: values in, values out. No clock is read here; callers pass `now` where a date must be compared.
"""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime

BACKOFF_STEPS: tuple[float, ...] = (1.0, 2.0, 4.0, 10.0)
RETRY_AFTER_CAP = 3600.0


def backoff_delay(attempts: int) -> float:
    """Seconds to wait after the failure that brought `attempts` to n: 1, 2, 4, then 10."""
    index = min(max(attempts, 1), len(BACKOFF_STEPS)) - 1
    return BACKOFF_STEPS[index]


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """max(backoff, Retry-After), capped at 3600 s (a cap that never shortens the plain backoff)."""
    base = backoff_delay(attempts)
    if retry_after is None or not math.isfinite(retry_after):
        return base
    return max(base, min(retry_after, RETRY_AFTER_CAP))


def effective_max_attempts(plugin_max_attempts: int) -> int:
    """`plugin_max_attempts` below 1 counts as 1."""
    return max(plugin_max_attempts, 1)


def is_dead(attempts: int, plugin_max_attempts: int) -> bool:
    """True when a failure at `attempts` exhausts the budget (the first failure with max 0 or 1)."""
    return attempts >= effective_max_attempts(plugin_max_attempts)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from `now` named by a Retry-After header (delta seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
