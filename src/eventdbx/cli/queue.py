"""`dbx queue …`: show the plugin queue with per-plugin health, retry, skip and clear jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.plugin_support import (
    confirm,
    daemon_pid,
    head_seq,
    load_definitions,
    now,
    open_queue,
    resolve_plugin_name,
)
from eventdbx.errors import CommandError

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.store.plugin_queue import PluginQueue
    from eventdbx.store.plugin_queue_model import Job

STATUSES = ("pending", "processing", "done", "dead")
SECTION_TITLES = {
    "pending": "Pending jobs:",
    "processing": "Processing jobs:",
    "done": "Done jobs:",
    "dead": "Dead jobs:",
}


def _job_id(text: str) -> int:
    """A job id: decimal digits within SQLite's INTEGER range; a usage error otherwise."""
    from eventdbx.store.plugin_queue_jobs import MAX_JOB_ID

    digits = text.strip()
    if not digits.isascii() or not digits.isdigit() or int(digits) > MAX_JOB_ID:
        raise click.UsageError(f"invalid job id '{text}'")
    return int(digits)


class JobIdType(click.ParamType[int]):
    """`--event-id JOB_ID`: the same rule as the positional job ids."""

    name = "job_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return _job_id(str(value))


def _ts(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    from eventdbx.domain.timefmt import format_epoch_millis

    return format_epoch_millis(seconds)


def _job_line(job: Job, label: str, moment: float) -> str:
    from eventdbx.domain.timefmt import format_epoch

    retry_at = job.shown_retry_at(moment)
    if retry_at is None:
        next_retry = "-"
    else:
        millis = round(retry_at * 1000) / 1000
        next_retry = format_epoch(millis, suffix="+00:00")
    error = (job.last_error or "-").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return (
        f'  id={job.id} plugin="{label}" status="{job.status}" attempts={job.attempts} '
        f"next_retry={next_retry} last_error={error}"
    )


def _plugin_entry(
    queue: PluginQueue, definition: PluginDefinition, settings: Settings, head: int, running: bool
) -> dict[str, Any]:
    from eventdbx.plugins.health import HealthInputs, plugin_state

    moment = now()
    stats = queue.plugin_stats(definition.name, head_seq=head, now=moment)
    state_row = queue.get_state(definition.name)
    worker_down = definition.kind == "process" and (
        state_row is None or state_row.worker_actual != "running"
    )
    state = plugin_state(
        HealthInputs(
            enabled=definition.enabled,
            emit_events=definition.emit_events,
            daemon_running=running,
            worker_down=worker_down,
            pending=stats.pending,
            processing=stats.processing,
            due=stats.due,
            blocked=stats.blocked,
            last_attempt_at=stats.last_attempt_at,
            last_success_at=stats.last_success_at,
            last_failure_at=stats.last_failure_at,
            now=moment,
            stall_after_secs=settings.plugin_queue.stall_after_secs,
        )
    )
    return {
        "name": definition.name,
        "label": definition.label,
        "enabled": definition.enabled,
        "emit_events": definition.emit_events,
        "ordering": str(definition.ordering),
        "state": state,
        "circuit": stats.circuit,
        "unqueued": stats.unqueued,
        "pending": stats.pending,
        "processing": stats.processing,
        "dead": stats.dead,
        "blocked": stats.blocked,
        "blocked_aggregates": stats.blocked_aggregates,
        "oldest_pending_secs": stats.oldest_pending_secs,
        "last_attempt_at": _ts(stats.last_attempt_at),
        "last_success_at": _ts(stats.last_success_at),
        "last_error": stats.last_error,
        "_last_success": stats.last_success_at,
    }


def _plugin_line(entry: dict[str, Any], moment: float) -> str:
    from eventdbx.plugins.health import format_age

    last = entry["_last_success"]
    return (
        f"  {entry['label']} state={entry['state']} unqueued={entry['unqueued']} pending={entry['pending']} "
        f"processing={entry['processing']} dead={entry['dead']} blocked={entry['blocked']} "
        f"oldest_pending={format_age(entry['oldest_pending_secs'])} "
        f"last_success={format_age(None if last is None else moment - last)} circuit={entry['circuit']}"
    )


@click.group(invoke_without_command=True, help="Show or manage the plugin retry queue")
@click.option("--plugin", "plugin", default=None, help="Only this plugin (name or label).")
@click.option(
    "--status", "status", type=click.Choice(STATUSES), default=None, help="List one section."
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Jobs per section (text default 20, JSON all; 0 = all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def queue(
    ctx: click.Context, plugin: str | None, status: str | None, limit: int | None, as_json: bool
) -> None:
    """Show or manage the plugin retry queue"""
    if ctx.invoked_subcommand is not None:
        return
    settings = cli_context().settings()
    name = resolve_plugin_name(settings, plugin)
    definitions = [d for d in load_definitions(settings) if name is None or d.name == name]
    labels = {d.name: d.label for d in load_definitions(settings)}
    pid = daemon_pid(settings)
    with open_queue(settings) as q:
        counts = q.counts(name)
        head = head_seq(settings) if definitions else 0
        entries = [_plugin_entry(q, d, settings, head, pid is not None) for d in definitions]
        wanted = (status,) if status else ("pending", "processing", "dead")
        cap = limit if limit not in (None, 0) else None
        if limit is None and not as_json:
            cap = 20
        sections = {s: q.list_jobs(plugin=name, status=_status(s), limit=None) for s in wanted}
    if as_json:
        _print_json(counts, pid, entries, sections, cap)
        return
    _print_text(counts, pid, entries, sections, cap, labels)


def _status(text: str) -> Any:
    from eventdbx.store.plugin_queue_model import JobStatus

    return JobStatus(text)


def _print_json(
    counts: Any,
    pid: int | None,
    entries: list[dict[str, Any]],
    sections: dict[str, list[Job]],
    cap: int | None,
) -> None:
    from eventdbx.domain.jsontext import to_pretty

    moment = now()
    jobs = [job.to_dict(moment) for status in STATUSES for job in sections.get(status, [])[:cap]]
    plugins = [
        {k: v for k, v in e.items() if not k.startswith("_") and k != "blocked"} for e in entries
    ]
    click.echo(
        to_pretty(
            {
                "counts": {
                    "pending": counts.pending,
                    "processing": counts.processing,
                    "done": counts.done,
                    "dead": counts.dead,
                },
                "dispatcher": {"running": pid is not None, "pid": pid},
                "plugins": plugins,
                "jobs": jobs,
            }
        )
    )


def _print_text(
    counts: Any,
    pid: int | None,
    entries: list[dict[str, Any]],
    sections: dict[str, list[Job]],
    cap: int | None,
    labels: dict[str, str],
) -> None:
    from eventdbx.plugins.health import format_age

    moment = now()
    click.echo(
        f"pending={counts.pending} processing={counts.processing} done={counts.done} dead={counts.dead}"
    )
    if entries:
        ages = [e["oldest_pending_secs"] for e in entries if e["oldest_pending_secs"] is not None]
        oldest = max(ages, default=None)
        click.echo(
            f"dispatcher={'running' if pid is not None else 'not-running'} "
            f"oldest_pending={format_age(oldest)}"
        )
        click.echo("")
        click.echo("Plugins:")
        for entry in entries:
            click.echo(_plugin_line(entry, moment))
    for status in STATUSES:
        jobs = sections.get(status)
        if not jobs:
            continue
        click.echo("")
        click.echo(SECTION_TITLES[status])
        for job in jobs[:cap]:
            click.echo(_job_line(job, labels.get(job.plugin_name, job.label), moment))
        if cap is not None and len(jobs) > cap:
            click.echo(f"  … and {len(jobs) - cap} more (use --limit 0 to list all)")


@queue.command(help="Retry dead entries, optionally filtering by job id")
@click.option(
    "--event-id",
    "job_id",
    type=JobIdType(),
    default=None,
    help="The job id to retry (as in the reference).",
)
@click.option("--plugin", "plugin", default=None, help="Only this plugin (name or label).")
def retry(job_id: int | None, plugin: str | None) -> None:
    """Retry dead entries, optionally filtering by job id"""
    settings = cli_context().settings()
    name = resolve_plugin_name(settings, plugin)
    definitions = {d.name: d for d in load_definitions(settings)}
    with open_queue(settings) as q:
        retried = q.retry_dead(now=now(), job_id=job_id, plugin=name)
        still_dead = q.count_dead()
    if not retried:
        click.echo(
            "no dead plugin jobs match the provided id"
            if job_id is not None
            else "no dead plugin jobs to retry"
        )
        return
    live = [
        j
        for j in retried
        if (d := definitions.get(j.plugin_name)) is not None and d.enabled and d.emit_events
    ]
    if not live:
        click.echo("no enabled plugins available to process retries")
    else:
        click.echo(f"retry summary: retried {len(retried)} job(s), {still_dead} still dead")
    if daemon_pid(settings) is None:
        click.echo(
            "note: the daemon is not running; retried jobs will be delivered when it starts",
            err=True,
        )


def _clear_confirmed(count: int, status: str, *, nothing: str, yes: bool) -> bool:
    """Whether to clear `count` jobs of `status`; says why not when there are none or the user declines."""
    if count == 0:
        click.echo(nothing)
        return False
    if not yes and not confirm(
        f"This will remove {count} {status} plugin job(s). Type 'clear' to confirm: ", "clear"
    ):
        click.echo("clear cancelled")
        return False
    return True


@queue.command(help="Remove all dead entries from the queue")
@click.option("--plugin", "plugin", default=None, help="Only this plugin (name or label).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear(plugin: str | None, yes: bool) -> None:
    """Remove all dead entries from the queue"""
    settings = cli_context().settings()
    name = resolve_plugin_name(settings, plugin)
    with open_queue(settings) as q:
        nothing = "no dead plugin jobs to clear"
        if not _clear_confirmed(q.count_dead(name), "dead", nothing=nothing, yes=yes):
            return
        removed = q.clear_dead(name)
    click.echo(f"cleared {removed} dead job(s) from the plugin queue")


@queue.command(name="clear-done", help="Remove completed entries from the queue")
@click.option(
    "--older-than-hours",
    "hours",
    type=click.FloatRange(min=0),
    default=None,
    help="Only done jobs completed more than H hours ago.",
)
@click.option("--plugin", "plugin", default=None, help="Only this plugin (name or label).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_done(hours: float | None, plugin: str | None, yes: bool) -> None:
    """Remove completed entries from the queue"""
    settings = cli_context().settings()
    name = resolve_plugin_name(settings, plugin)
    older = None if hours is None else hours * 3600
    moment = now()
    with open_queue(settings) as q:
        count = q.count_done(now=moment, older_than_secs=older, plugin=name)
        nothing = "no done plugin jobs match the provided criteria"
        if not _clear_confirmed(count, "done", nothing=nothing, yes=yes):
            return
        removed = q.clear_done(now=moment, older_than_secs=older, plugin=name)
    click.echo(f"cleared {removed} done job(s) from the plugin queue")


@queue.command(help="Show one job with its payload and attempt history")
@click.argument("job_id")
def show(job_id: str) -> None:
    """Show one job with its payload and attempt history"""
    from eventdbx.domain.jsontext import to_pretty
    from eventdbx.domain.payload_mode import Ordering

    number = _job_id(job_id)
    settings = cli_context().settings()
    with open_queue(settings) as q:
        job = q.get_job(number)
        definition = (
            None
            if job is None
            else next((d for d in load_definitions(settings) if d.name == job.plugin_name), None)
        )
        ordering = Ordering.AGGREGATE if definition is None else definition.ordering
        detail = q.show_job(number, ordering=ordering)
    if detail is None:
        raise CommandError(f"job {number} not found")
    click.echo(to_pretty(detail.to_dict(now())))


@queue.command(help="Mark a job done without delivering it")
@click.argument("job_id")
def skip(job_id: str) -> None:
    """Mark a job done without delivering it"""
    number = _job_id(job_id)
    with open_queue(cli_context().settings()) as q:
        job, released = q.skip_job(number, now=now())
    line = f"skipped job {job.id} ({job.label}) for {job.aggregate_type}::{job.aggregate_id} v{job.version}"
    if released:
        line += f"; released {released} held job(s)"
    click.echo(line)
