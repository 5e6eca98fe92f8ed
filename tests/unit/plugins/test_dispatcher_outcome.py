"""The verdict for a failed attempt (plugins.md §5) and the §12 log line formatting."""

from __future__ import annotations

import pytest

from eventdbx.errors import DeliveryError
from eventdbx.plugins.dispatcher_log import quoted, seconds_text
from eventdbx.plugins.dispatcher_outcome import Verdict, VerdictKind, circuit_wait, decide


def err(
    *, retryable: bool = True, endpoint: bool = True, retry_after: float | None = None
) -> DeliveryError:
    return DeliveryError(
        "x", retryable=retryable, endpoint_failure=endpoint, retry_after=retry_after
    )


@pytest.mark.parametrize(
    ("attempts", "error", "maximum", "probe", "verdict"),
    [
        (1, err(), 10, False, Verdict(kind=VerdictKind.RETRY, wait=1)),
        (3, err(), 10, False, Verdict(kind=VerdictKind.RETRY, wait=4)),
        (5, err(), 10, False, Verdict(kind=VerdictKind.RETRY, wait=10)),
        (10, err(), 10, False, Verdict(kind=VerdictKind.DEAD)),
        (1, err(), 0, False, Verdict(kind=VerdictKind.DEAD)),
        (
            1,
            err(retryable=False, endpoint=False),
            10,
            False,
            Verdict(kind=VerdictKind.DEAD, permanent=True),
        ),
        (1, err(retry_after=30), 10, False, Verdict(kind=VerdictKind.RETRY, wait=30)),
        (2, err(retry_after=9999), 10, False, Verdict(kind=VerdictKind.RETRY, wait=3600)),
        (3, err(), 10, True, Verdict(kind=VerdictKind.PROBE_FAILED)),
        (10, err(), 10, True, Verdict(kind=VerdictKind.PROBE_FAILED)),  # a probe never counts
        (1, err(endpoint=False), 10, True, Verdict(kind=VerdictKind.RETRY, wait=1)),
        (
            1,
            err(retryable=False, endpoint=False),
            10,
            True,
            Verdict(kind=VerdictKind.DEAD, permanent=True),
        ),
    ],
)
def test_decide(
    attempts: int, error: DeliveryError, maximum: int, probe: bool, verdict: Verdict
) -> None:
    assert decide(attempts=attempts, error=error, max_attempts=maximum, probe=probe) == verdict


def test_circuit_wait_follows_the_job_wait() -> None:
    assert circuit_wait(Verdict(kind=VerdictKind.RETRY, wait=30), err(retry_after=30)) == 30
    assert circuit_wait(Verdict(kind=VerdictKind.RETRY, wait=10), err(retry_after=3)) == 10
    assert circuit_wait(Verdict(kind=VerdictKind.DEAD), err(retry_after=3)) == 3
    assert circuit_wait(Verdict(kind=VerdictKind.RETRY, wait=1), err()) is None


def test_log_tokens() -> None:
    assert seconds_text(10.0) == "10"
    assert seconds_text(2.5) == "2.5"
    assert seconds_text(0.125) == "0.125"
    assert quoted('say "hi"\nthen \\ go') == '"say \\"hi\\" then \\\\ go"'
