"""Snowflake id arithmetic (data-model.md §7)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventdbx.clock import SNOWFLAKE_EPOCH_MS, compose_snowflake, next_snowflake, snowflake_ms


def test_layout_matches_spec() -> None:
    assert compose_snowflake(SNOWFLAKE_EPOCH_MS + 1, 3, 5) == (1 << 22) | (3 << 12) | 5


def test_sequence_overflow_moves_to_next_millisecond() -> None:
    last = compose_snowflake(SNOWFLAKE_EPOCH_MS + 10, 0, 4095)
    nxt = next_snowflake(SNOWFLAKE_EPOCH_MS + 10, last, 0)
    assert snowflake_ms(nxt) == SNOWFLAKE_EPOCH_MS + 11
    assert nxt & 4095 == 0


@given(
    st.lists(st.integers(min_value=SNOWFLAKE_EPOCH_MS, max_value=SNOWFLAKE_EPOCH_MS + 10**9), min_size=1, max_size=60)
)
def test_ids_strictly_increase_even_when_the_clock_steps_back(clock_readings: list[int]) -> None:
    last: int | None = None
    for reading in clock_readings:
        nxt = next_snowflake(reading, last, 7)
        if last is not None:
            assert nxt > last
        last = nxt
