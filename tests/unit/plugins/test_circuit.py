"""Circuit breaker: opening, probe schedule, closing, Retry-After, log lines (plugins.md §5, §12)."""

from __future__ import annotations

import logging

import pytest

from eventdbx.clock import FakeClock
from eventdbx.plugins.circuit import CircuitBreaker, CircuitSnapshot

LABEL = "http (hook)"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_opens_after_five_consecutive_endpoint_failures(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    for _ in range(4):
        breaker.record_failure(
            "http plugin request failed (500 Internal Server Error)", endpoint=True
        )
    assert not breaker.is_open
    breaker.record_failure('boom "x"', endpoint=True)
    assert breaker.is_open
    assert breaker.next_probe_at == clock.now + 1
    assert caplog.messages == [
        'plugin circuit opened plugin="http (hook)" consecutive_failures=5 error="boom \\"x\\""'
    ]


def test_job_specific_failures_neither_count_nor_reset(clock: FakeClock) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    for _ in range(4):
        breaker.record_failure("e", endpoint=True)
    assert not breaker.record_failure("rejected", endpoint=False)
    assert breaker.consecutive_failures == 4
    breaker.record_failure("e", endpoint=True)
    assert breaker.is_open


def test_success_resets_the_count(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    breaker = CircuitBreaker(LABEL, clock)
    for _ in range(4):
        breaker.record_failure("e", endpoint=True)
    assert breaker.record_success()
    assert breaker.consecutive_failures == 0
    assert caplog.messages == ['plugin delivery recovered plugin="http (hook)" after_failures=4']
    assert not breaker.record_success()


def test_probe_schedule_1_2_4_then_10(clock: FakeClock) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    for _ in range(5):
        breaker.record_failure("e", endpoint=True)
    waits = []
    for _ in range(5):
        assert not breaker.probe_due()
        wait = breaker.next_probe_at - clock.now  # type: ignore[operator]
        waits.append(wait)
        clock.advance(wait)
        assert breaker.probe_due()
        breaker.begin_probe()
        assert not breaker.probe_due()  # one probe at a time
        breaker.record_probe_failure("still down")
    assert waits == [1, 2, 4, 10, 10]
    assert breaker.is_open


def test_probe_success_closes(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    breaker = CircuitBreaker(LABEL, clock)
    for _ in range(5):
        breaker.record_failure("e", endpoint=True)
    clock.advance(1)
    breaker.begin_probe()
    breaker.record_probe_failure("e")
    clock.advance(2)
    breaker.begin_probe()
    assert breaker.record_success()
    assert not breaker.is_open
    assert breaker.snapshot() == CircuitSnapshot(
        circuit="closed",
        consecutive_failures=0,
        opened_at=None,
        next_probe_at=None,
        probe_failures=0,
    )
    assert 'plugin circuit closed plugin="http (hook)" after=3s' in caplog.messages
    assert 'plugin delivery recovered plugin="http (hook)" after_failures=6' in caplog.messages


def test_retry_after_opens_at_once_until_then(clock: FakeClock) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    breaker.record_failure("429", endpoint=True, retry_after=30)
    assert breaker.is_open
    assert breaker.next_probe_at == clock.now + 30
    clock.advance(29)
    assert not breaker.probe_due()
    clock.advance(1)
    assert breaker.probe_due()


def test_probe_waits_for_retry_after(clock: FakeClock) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    breaker.record_failure("429", endpoint=True, retry_after=2)
    clock.advance(2)
    breaker.begin_probe()
    breaker.record_probe_failure("429", retry_after=120)
    assert breaker.next_probe_at == clock.now + 120


def test_abandoned_probe_frees_the_slot(clock: FakeClock) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    breaker.record_failure("429", endpoint=True, retry_after=1)
    clock.advance(1)
    breaker.begin_probe()
    assert not breaker.probe_due()
    breaker.abandon_probe()
    assert breaker.probe_due()


def test_restore_an_open_circuit(clock: FakeClock) -> None:
    breaker = CircuitBreaker(LABEL, clock)
    breaker.restore(
        CircuitSnapshot(
            circuit="open",
            consecutive_failures=7,
            opened_at=clock.now - 60,
            next_probe_at=None,
            probe_failures=3,
        )
    )
    assert breaker.is_open
    assert breaker.probe_due()
