"""The log sink (plugins.md §8.4): writes event, state and schema lines to logger `eventdbx.plugin.log`."""

from __future__ import annotations

import logging
from typing import Any

from eventdbx.domain.jsontext import load_canonical, to_compact
from eventdbx.errors import DeliveryError, PluginError
from eventdbx.plugins.sink import DeliveryJob

TRACE = 5
LOG_LEVELS: dict[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
LOGGER_NAME = "eventdbx.plugin.log"

if logging.getLevelName(TRACE) != "TRACE":
    logging.addLevelName(TRACE, "TRACE")


def parse_level(level: str) -> str:
    """The level stored lowercase; `unsupported log level '<x>'` otherwise."""
    value = level.strip().lower()
    if value not in LOG_LEVELS:
        raise PluginError(f"unsupported log level '{level}'")
    return value


def render_template(template: str, job: DeliveryJob) -> str:
    """Substitute `{aggregate}`, `{id}`, `{event}`, `{version}`, `{event_id}` literally."""
    values = {
        "{aggregate}": job.aggregate_type,
        "{id}": job.aggregate_id,
        "{event}": job.event_type,
        "{version}": str(job.version),
        "{event_id}": str(job.event_id),
    }
    out = template
    for key, value in values.items():
        out = out.replace(key, value)
    return out


def _wire(value: Any) -> str:
    return to_compact(value, sort_keys=True)


def log_lines(job: DeliveryJob, template: str | None) -> list[str]:
    """The lines for one job: event, state and schema, for each part present in the envelope."""
    envelope = load_canonical(job.envelope)
    lines: list[str] = []
    event = envelope.get("event")
    if event is not None:
        if template is not None:
            lines.append(render_template(template, job))
        else:
            lines.append(
                f"aggregate={job.aggregate_type} id={job.aggregate_id} event={job.event_type}"
                f" payload={_wire(event.get('payload'))}"
            )
    state = envelope.get("state")
    if state is not None:
        lines.append(
            f"aggregate={job.aggregate_type} id={job.aggregate_id} state={_wire(state.get('state'))}"
        )
    schema = envelope.get("schema")
    if schema is not None:
        lines.append(
            f"schema={schema.get('aggregate', job.aggregate_type)} payload={_wire(schema)}"
        )
    return lines


class LogSink:
    """Delivers by writing log lines; fails every delivery while the configured level is invalid."""

    def __init__(
        self,
        *,
        level: str = "info",
        template: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.level_text = level
        self.template = template
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def _level(self) -> int:
        try:
            return LOG_LEVELS[parse_level(self.level_text)]
        except PluginError as exc:
            raise DeliveryError(exc.message, retryable=True) from exc

    async def deliver(self, job: DeliveryJob) -> int | None:
        """Write the job's lines."""
        level = self._level()
        for line in log_lines(job, self.template):
            self.logger.log(level, "%s", line)
        return None

    async def check_ready(self) -> None:
        """Ready when the level is valid."""
        self._level()

    async def aclose(self) -> None:
        """Nothing to release."""
        return None
