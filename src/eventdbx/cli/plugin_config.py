"""`dbx plugin config http|tcp|capnp|log|process`: create or replace a plugin definition in plugins.json."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.cli.plugin_support import load_definitions
from eventdbx.errors import CommandError

KIND_TITLES = {
    "http": "HTTP",
    "tcp": "TCP",
    "capnp": "Cap'n Proto",
    "log": "Log",
    "process": "Process",
}
PAYLOAD_MODES = (
    "all",
    "event-only",
    "state-only",
    "schema-only",
    "event-and-schema",
    "extensions-only",
)


def parse_pairs(values: tuple[str, ...]) -> dict[str, str]:
    """`K=V` pairs split at the first `=`, both sides trimmed."""
    pairs: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep:
            raise click.UsageError("missing value")
        if not key.strip():
            raise click.UsageError("header key cannot be empty")
        pairs[key.strip()] = value.strip()
    return pairs


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--skip-backlog",
            is_flag=True,
            help="When re-enabling, skip events appended while disabled.",
        ),
        click.option(
            "--concurrency", type=int, default=None, help="Deliveries in flight (1-256, default 8)."
        ),
        click.option(
            "--ordering",
            type=click.Choice(["aggregate", "none"]),
            default=None,
            help="Per-aggregate order (default) or none.",
        ),
        click.option("--disable", is_flag=True, help="Save the plugin disabled."),
        click.option(
            "--payload",
            "payload",
            type=click.Choice(PAYLOAD_MODES),
            default=None,
            help="Payload mode (default all).",
        ),
    ]
    for option in options:
        func = option(func)
    return func


def _timeout(value: float | None) -> float:
    if value is None:
        return 5
    if not math.isfinite(value) or value <= 0:
        raise CommandError("timeout must be greater than 0")
    return value


def _save(
    name: str,
    config: Any,
    *,
    payload: str | None,
    disable: bool,
    ordering: str | None,
    concurrency: int | None,
    skip_backlog: bool,
    emit_events: bool | None = None,
) -> None:
    from eventdbx.domain.payload_mode import Ordering, parse_payload_mode
    from eventdbx.plugins.enqueuer import init_cursor
    from eventdbx.plugins.enqueuer import skip_backlog as move_to_head
    from eventdbx.plugins.registry import PluginDefinition, save_plugins

    name = name.strip()
    if not name:
        raise CommandError("plugin name cannot be empty")
    if concurrency is not None and not 1 <= concurrency <= 256:
        raise CommandError("concurrency must be between 1 and 256")
    settings = cli_context().settings()
    definitions = load_definitions(settings)
    existing = next((d for d in definitions if d.name == name), None)
    if existing is not None and existing.kind != config.kind:
        raise CommandError(f"plugin name '{name}' is already used by {existing.kind}")
    base = existing or PluginDefinition(name=name, config=config)
    changes: dict[str, Any] = {"config": config, "enabled": not disable}
    if payload is not None:
        changes["payload_mode"] = parse_payload_mode(payload)
    if ordering is not None:
        changes["ordering"] = Ordering(ordering)
    if concurrency is not None:
        changes["concurrency"] = concurrency
    if emit_events is not None:
        changes["emit_events"] = emit_events
    definition = replace(base, **changes)
    reenabled = existing is not None and not existing.enabled and definition.enabled
    if existing is None:
        init_cursor(settings, name)
    elif reenabled and skip_backlog:
        move_to_head(settings, name)
    save_plugins(
        settings.paths.plugins_json,
        [definition if d.name == name else d for d in definitions]
        if existing is not None
        else [*definitions, definition],
    )
    if reenabled and not skip_backlog and definition.emit_events:
        from eventdbx.cli.plugin_admin import enqueue_now

        enqueue_now(settings)
    state = "disabled" if disable else "configured"
    click.echo(f"{KIND_TITLES[str(config.kind)]} plugin '{name}' {state}")


@click.group(help="Configure plugins")
def config() -> None:
    """Configure plugins"""


def _socket_command(kind: str, help_text: str) -> click.Command:
    @config.command(name=kind, help=help_text)
    @click.option("--name", "name", required=True, help="Plugin name (unique).")
    @click.option("--host", required=True, help="Receiver host.")
    @click.option("--port", type=click.IntRange(1, 65535), required=True, help="Receiver port.")
    @click.option("--ack", is_flag=True, help="Wait for a reply per event.")
    @click.option(
        "--timeout", type=float, default=None, help="Seconds for connect/write/ack (default 5)."
    )
    @_common
    def command(
        name: str, host: str, port: int, ack: bool, timeout: float | None, **common: Any
    ) -> None:
        from eventdbx.plugins.registry import CapnpConfig, TcpConfig

        cls = TcpConfig if kind == "tcp" else CapnpConfig
        _save(
            name,
            cls(host=host.strip(), port=port, ack=ack, timeout_secs=_timeout(timeout)),
            **common,
        )

    return command


_socket_command("tcp", "Configure the TCP plugin")
_socket_command("capnp", "Configure the Cap'n Proto plugin")


@config.command(name="http", help="Configure the HTTP plugin")
@click.option("--name", "name", required=True, help="Plugin name (unique).")
@click.option("--endpoint", required=True, help="URL (http:// or https:// added when missing).")
@click.option("--header", "headers", multiple=True, help="Extra header K=V (repeatable).")
@click.option("--https", is_flag=True, help="Use https:// for an endpoint without a scheme.")
@click.option("--secret", default=None, help="Standard Webhooks signing secret (whsec_…).")
@click.option(
    "--timeout", type=float, default=None, help="Seconds for the whole request (default 5)."
)
@_common
def http(
    name: str,
    endpoint: str,
    headers: tuple[str, ...],
    https: bool,
    secret: str | None,
    timeout: float | None,
    **common: Any,
) -> None:
    """Configure the HTTP plugin"""
    from eventdbx.plugins.registry import HttpConfig
    from eventdbx.plugins.sinks.http import check_headers, normalize_endpoint

    pairs = parse_pairs(headers)
    check_headers(pairs)
    normalize_endpoint(endpoint, https=https)
    config_ = HttpConfig(
        endpoint=endpoint.strip(),
        headers=pairs,
        https=https,
        secret=secret,
        timeout_secs=_timeout(timeout),
    )
    _save(name, config_, **common)


@config.command(name="log", help="Configure the logging plugin")
@click.option("--name", "name", required=True, help="Plugin name (unique).")
@click.option("--level", default="info", help="trace|debug|info|warn|error (default info).")
@click.option(
    "--template",
    default=None,
    help="Event line template: {aggregate} {id} {event} {version} {event_id}.",
)
@_common
def log(name: str, level: str, template: str | None, **common: Any) -> None:
    """Configure the logging plugin"""
    from eventdbx.plugins.registry import LogConfig
    from eventdbx.plugins.sinks.log import parse_level

    _save(name, LogConfig(level=parse_level(level), template=template), **common)


def _bool_word(value: str) -> bool:
    word = value.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise click.BadParameter(f"expected true or false, got '{value}'")


@config.command(name="process", help="Configure a subprocess plugin installed via the registry")
@click.argument("plugin_arg", required=False)
@click.option("--plugin", "plugin_opt", default=None, help="Installed plugin id.")
@click.option("--name", "name", default=None, help="Instance name (default: the plugin id).")
@click.option(
    "--version", "version", default=None, help="Installed version (default: the highest)."
)
@click.option("--arg", "args", multiple=True, help="Argument for the binary (repeatable).")
@click.option("--env", "env", multiple=True, help="Environment K=V (repeatable).")
@click.option("--working-dir", default=None, help="Working directory (default: the install dir).")
@click.option(
    "--emit-events", "emit_events", default=None, help="true|false: deliver events or only run."
)
@click.option("--ack", is_flag=True, help="The plugin answers each event with ack/error envelopes.")
@click.option("--timeout", type=float, default=None, help="Seconds per delivery (default 5).")
@_common
def process(
    plugin_arg: str | None,
    plugin_opt: str | None,
    name: str | None,
    version: str | None,
    args: tuple[str, ...],
    env: tuple[str, ...],
    working_dir: str | None,
    emit_events: str | None,
    ack: bool,
    timeout: float | None,
    **common: Any,
) -> None:
    """Configure a subprocess plugin installed via the registry"""
    from eventdbx.plugins.install import resolve_installed
    from eventdbx.plugins.registry import ProcessConfig

    if plugin_arg and plugin_opt and plugin_arg != plugin_opt:
        raise CommandError("conflicting plugin identifiers provided (flag vs positional)")
    plugin_id = (plugin_arg or plugin_opt or "").strip()
    if not plugin_id:
        raise CommandError("plugin identifier is required")
    env_pairs = parse_pairs(env)
    emit = None if emit_events is None else _bool_word(emit_events)
    timeout_secs = _timeout(timeout)
    settings = cli_context().settings()
    installed = resolve_installed(settings.paths.plugins_dir, plugin_id, version)
    config_ = ProcessConfig(
        name=plugin_id,
        version=installed.version,
        args=tuple(args),
        env=env_pairs,
        working_dir=working_dir,
        ack=ack,
        timeout_secs=timeout_secs,
    )
    _save(name if name is not None else plugin_id, config_, emit_events=emit, **common)
