"""The dispatcher's daemon log lines (plugins.md §12), formatted in one place; logger `eventdbx.plugin`."""

from __future__ import annotations

import logging

log = logging.getLogger("eventdbx.plugin")


def seconds_text(value: float) -> str:
    """`10`, `2.5`: whole seconds without a fraction, others as short decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def quoted(message: str) -> str:
    """A message as one quoted log token: newlines become spaces, quotes and backslashes are escaped."""
    flat = " ".join(message.splitlines())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def delivery_failed(
    label: str,
    *,
    job: int,
    event: int,
    aggregate: str,
    version: int,
    attempt: int,
    max_attempts: int,
    retry_in: float,
    error: str,
) -> None:
    """WARN for a retryable failure that leaves the job pending."""
    log.warning(
        "plugin delivery failed plugin=%s job=%d event=%d aggregate=%s version=%d attempt=%d/%d"
        " retry_in=%ss error=%s",
        quoted(label),
        job,
        event,
        aggregate,
        version,
        attempt,
        max_attempts,
        seconds_text(retry_in),
        quoted(error),
    )


def job_dead(
    label: str,
    *,
    job: int,
    event: int,
    aggregate: str,
    version: int,
    attempts: int,
    permanent: bool,
    held_back: int,
    reason: str,
) -> None:
    """ERROR for a job that became dead."""
    log.error(
        "plugin job dead plugin=%s job=%d event=%d aggregate=%s version=%d attempts=%d"
        " permanent=%s held_back=%d reason=%s",
        quoted(label),
        job,
        event,
        aggregate,
        version,
        attempts,
        "true" if permanent else "false",
        held_back,
        quoted(reason),
    )


def circuit_opened(label: str, *, consecutive_failures: int, error: str) -> None:
    """WARN when the circuit opens."""
    log.warning(
        "plugin circuit opened plugin=%s consecutive_failures=%d error=%s",
        quoted(label),
        consecutive_failures,
        quoted(error),
    )


def circuit_closed(label: str, *, after: float) -> None:
    """INFO when the circuit closes again."""
    log.info("plugin circuit closed plugin=%s after=%ss", quoted(label), seconds_text(round(after)))


def delivery_recovered(label: str, *, after_failures: int) -> None:
    """INFO for the first success after failures."""
    log.info("plugin delivery recovered plugin=%s after_failures=%d", quoted(label), after_failures)


def lease_expired(label: str, *, job: int, attempt: int) -> None:
    """WARN for a delivery whose lease ran out."""
    log.warning("plugin job lease expired plugin=%s job=%d attempt=%d", quoted(label), job, attempt)


def stalled(label: str, *, due_jobs: int, idle_secs: float) -> None:
    """WARN once when a plugin with due jobs finished no attempt within the stall window."""
    log.warning(
        "plugin stalled plugin=%s due_jobs=%d idle_secs=%d", quoted(label), due_jobs, int(idle_secs)
    )
