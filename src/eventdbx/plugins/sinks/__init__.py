"""One module per sink kind behind the Sink interface, and the registry mapping a kind to its factory.

`build_sink(definition)` is what the dispatcher and the CLI (`plugin enable`, `plugin test`) call. Kinds
without a built-in factory here (capnp, process) are added with `register_sink_factory`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from eventdbx.errors import PluginError

if TYPE_CHECKING:
    from eventdbx.clock import Clock
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.plugins.sink import Sink

SinkFactory = Callable[["PluginDefinition", "Clock | None"], "Sink"]


def _http(definition: PluginDefinition, clock: Clock | None) -> Sink:
    from eventdbx.plugins.registry import HttpConfig
    from eventdbx.plugins.sinks.http import HttpSink

    config = definition.config
    assert isinstance(config, HttpConfig)
    return HttpSink(
        endpoint=config.endpoint,
        headers=config.headers,
        https=config.https,
        secret=config.secret,
        timeout_secs=config.timeout_secs,
        concurrency=definition.concurrency,
        clock=clock,
    )


def _tcp(definition: PluginDefinition, clock: Clock | None) -> Sink:
    from eventdbx.plugins.registry import TcpConfig
    from eventdbx.plugins.sinks.tcp import TcpSink

    del clock
    config = definition.config
    assert isinstance(config, TcpConfig)
    return TcpSink(
        host=config.host,
        port=config.port,
        ack=config.ack,
        timeout_secs=config.timeout_secs,
        concurrency=definition.concurrency,
    )


def _log(definition: PluginDefinition, clock: Clock | None) -> Sink:
    from eventdbx.plugins.registry import LogConfig
    from eventdbx.plugins.sinks.log import LogSink

    del clock
    config = definition.config
    assert isinstance(config, LogConfig)
    return LogSink(level=config.level, template=config.template)


def _capnp(definition: PluginDefinition, clock: Clock | None) -> Sink:
    from eventdbx.plugins.registry import CapnpConfig
    from eventdbx.plugins.sinks.capnp import CapnpSink

    del clock
    config = definition.config
    assert isinstance(config, CapnpConfig)
    return CapnpSink(
        host=config.host, port=config.port, ack=config.ack, timeout_secs=config.timeout_secs
    )


_FACTORIES: dict[str, SinkFactory] = {"http": _http, "tcp": _tcp, "log": _log, "capnp": _capnp}


def register_sink_factory(kind: str, factory: SinkFactory) -> None:
    """Add or replace the factory for a kind (capnp, process, tests)."""
    _FACTORIES[str(kind)] = factory


def has_sink_factory(kind: str) -> bool:
    """True when `build_sink` can build this kind."""
    return str(kind) in _FACTORIES


def build_sink(
    definition: PluginDefinition, settings: Settings | None = None, *, clock: Clock | None = None
) -> Sink:
    """A fresh sink for one plugin definition; `PluginError` for kinds without a factory."""
    del settings  # reserved: data-dir paths for kinds that need them
    factory = _FACTORIES.get(str(definition.kind))
    if factory is None:
        raise PluginError(f"no sink is available for plugin kind '{definition.kind}'")
    return factory(definition, clock)
