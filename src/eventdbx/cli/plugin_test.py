"""`dbx plugin test [N…]`: readiness, then one delivery of the fixed sample through the real sink code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.plugin_checks import build, error_text, not_ready, probe, sink_timeout
from eventdbx.cli.plugin_support import daemon_pid, load_definitions, open_queue
from eventdbx.errors import CommandError, PluginError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.plugins.sink import DeliveryJob
    from eventdbx.store.plugin_queue_model import Job

PROCESS_EXTRA_WAIT_SECS = 5.0
POLL_SECS = 0.05


def _targets(
    definitions: Sequence[PluginDefinition], names: Sequence[str]
) -> list[PluginDefinition]:
    from eventdbx.plugins.registry import find_plugin

    if not names:
        return [d for d in definitions if d.enabled and d.emit_events]
    chosen: list[PluginDefinition] = []
    for name in names:
        found = find_plugin(definitions, name)
        if found is None:
            raise CommandError(f"no plugin named '{name}' is configured")
        if not found.emit_events:
            raise CommandError(
                f"plugin '{found.name}' has event delivery disabled; "
                "reconfigure with --emit-events=true to test"
            )
        if not found.enabled:
            raise CommandError(f"plugin '{found.name}' is disabled; enable it before testing")
        if all(c.name != found.name for c in chosen):
            chosen.append(found)
    return chosen


@contextlib.contextmanager
def _log_sink_to_stderr() -> Iterator[None]:
    """While testing, the log sink's lines (normally the daemon log) go to stderr."""
    from eventdbx.plugins.sinks.log import LOGGER_NAME, TRACE

    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(TRACE)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


async def _deliver(settings: Settings, definition: PluginDefinition, job: DeliveryJob) -> None:
    timeout = sink_timeout(definition)
    sink = build(settings, definition)
    try:
        try:
            await probe(sink, timeout)
        except TimeoutError as exc:
            raise not_ready(definition.name, "readiness check timed out") from exc
        except Exception as exc:
            raise not_ready(definition.name, exc) from exc
        try:
            async with asyncio.timeout(timeout + 5):
                await sink.deliver(job)
        except TimeoutError as exc:
            raise PluginError(f"delivery timed out after {timeout:g}s") from exc
    finally:
        await sink.aclose()


def _process_test(settings: Settings, definition: PluginDefinition, job: DeliveryJob) -> None:
    """A one-off daemon job (one attempt, deleted afterwards), awaited for timeout + 5 s."""
    from eventdbx.cli.plugin_checks import check_process_ready
    from eventdbx.store.plugin_queue_model import NewJob

    if daemon_pid(settings) is None:
        raise PluginError("the daemon is not running")
    try:
        check_process_ready(settings, definition)
    except Exception as exc:
        raise not_ready(definition.name, exc) from exc
    with open_queue(settings) as queue:
        state = queue.get_state(definition.name)
    if (
        state is not None and state.worker_desired == "stopped"
    ):  # its jobs wait: do not sit out the timeout
        raise PluginError(
            f"process plugin '{definition.name}' worker is stopped; "
            f"run dbx plugin start {definition.name}"
        )
    new = NewJob(
        plugin_name=definition.name,
        label=definition.label,
        aggregate_type=job.aggregate_type,
        aggregate_id=job.aggregate_id,
        event_type=job.event_type,
        event_id=job.event_id,
        version=job.version,
        event_created_at=job.event_created_at,
        envelope=job.envelope,
        replay=True,
    )
    wait = sink_timeout(definition) + PROCESS_EXTRA_WAIT_SECS
    with open_queue(settings) as queue:
        with queue.transaction() as writer:
            job_id = writer.insert_jobs([new], now=time.time())[0]
        try:
            deadline = time.monotonic() + wait
            current = queue.get_job(job_id)
            while not _attempted(current) and time.monotonic() < deadline:
                time.sleep(POLL_SECS)
                current = queue.get_job(job_id)
        finally:
            queue.delete_job(job_id)
    if current is None or not _attempted(current):
        raise PluginError(f"the daemon did not deliver the test event within {wait:g}s")
    if str(current.status) != "done":
        raise PluginError(current.last_error or "delivery failed")


def _attempted(job: Job | None) -> bool:
    """The one attempt finished: done, dead, or back to pending with an error."""
    if job is None:
        return False
    status = str(job.status)
    return status in ("done", "dead") or (status == "pending" and job.last_error is not None)


def _test_one(settings: Settings, definition: PluginDefinition, job: DeliveryJob) -> str | None:
    """None on success, else the one-line error."""
    try:
        if str(definition.kind) == "process":
            _process_test(settings, definition, job)
        else:
            asyncio.run(_deliver(settings, definition, job))
    except Exception as exc:
        return error_text(exc)
    return None


@click.command(name="test", help="Send a sample event to all enabled plugins")
@click.argument("names", nargs=-1)
def test(names: tuple[str, ...]) -> None:
    """Send a sample event to all enabled plugins"""
    from eventdbx.cli.plugin_sample import sample_job
    from eventdbx.clock import next_snowflake

    settings = cli_context().settings()
    targets = _targets(load_definitions(settings), names)
    if not targets:
        click.echo("(no plugins enabled)")
        return
    failed = 0
    with _log_sink_to_stderr():
        for definition in targets:
            job_id = next_snowflake(int(time.time() * 1000), None, settings.snowflake_worker_id)
            job = sample_job(definition.payload_mode, job_id=job_id)
            error = _test_one(settings, definition, job)
            if error is None:
                click.echo(f"{definition.label} - ok")
            else:
                failed += 1
                click.echo(f"{definition.label} - FAILED ({error})")
    total = len(targets)
    click.echo(f"Tested {total} plugin(s): {total - failed} succeeded, {failed} failed")
    if failed:
        raise CommandError(f"plugin test failed for {failed} plugin(s)")
