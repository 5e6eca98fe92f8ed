"""plugins.json: plugin definitions (kind-specific sink configs), load/save, duplicates, legacy import, reload.

Owns the file format of plugins.md §9 only; it never opens a sink or touches the queue.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from eventdbx.domain.payload_mode import Ordering, PayloadMode, parse_ordering, parse_payload_mode
from eventdbx.errors import ConfigError

Warn = Callable[[str], None]


class PluginKind(StrEnum):
    """Sink kinds."""

    HTTP = "http"
    TCP = "tcp"
    CAPNP = "capnp"
    LOG = "log"
    PROCESS = "process"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """`{"type":"http", endpoint, headers, https, secret, timeout_secs}`."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict)
    https: bool = False
    secret: str | None = None
    timeout_secs: float = 5
    kind = PluginKind.HTTP

    def to_dict(self) -> dict[str, Any]:
        """Keys in file order."""
        return {"type": "http", "endpoint": self.endpoint, "headers": dict(self.headers), "https": self.https,
                "secret": self.secret, "timeout_secs": _number(self.timeout_secs)}


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpConfig:
    """`{"type":"tcp", host, port, ack, timeout_secs}`."""

    host: str
    port: int
    ack: bool = False
    timeout_secs: float = 5
    kind = PluginKind.TCP

    def to_dict(self) -> dict[str, Any]:
        """Keys in file order; `port` is a number."""
        return {"type": str(self.kind), "host": self.host, "port": self.port, "ack": self.ack,
                "timeout_secs": _number(self.timeout_secs)}


@dataclass(frozen=True, slots=True, kw_only=True)
class CapnpConfig:
    """`{"type":"capnp", host, port, ack, timeout_secs}`."""

    host: str
    port: int
    ack: bool = False
    timeout_secs: float = 5
    kind = PluginKind.CAPNP

    def to_dict(self) -> dict[str, Any]:
        """Keys in file order; `port` is a number."""
        return {"type": str(self.kind), "host": self.host, "port": self.port, "ack": self.ack,
                "timeout_secs": _number(self.timeout_secs)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """`{"type":"log", level, template}` (the level is validated by the CLI and the sink, not here)."""

    level: str = "info"
    template: str | None = None
    kind = PluginKind.LOG

    def to_dict(self) -> dict[str, Any]:
        """Keys in file order."""
        return {"type": "log", "level": self.level, "template": self.template}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessConfig:
    """`{"type":"process", name, version, args, env, working_dir, ack, timeout_secs}`."""

    name: str
    version: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    ack: bool = False
    timeout_secs: float = 5
    kind = PluginKind.PROCESS

    def to_dict(self) -> dict[str, Any]:
        """Keys in file order."""
        return {"type": "process", "name": self.name, "version": self.version, "args": list(self.args),
                "env": dict(self.env), "working_dir": self.working_dir, "ack": self.ack,
                "timeout_secs": _number(self.timeout_secs)}


SinkConfig = HttpConfig | TcpConfig | CapnpConfig | LogConfig | ProcessConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginDefinition:
    """One configured plugin instance."""

    name: str
    config: SinkConfig
    enabled: bool = True
    emit_events: bool = True
    payload_mode: PayloadMode = PayloadMode.ALL
    ordering: Ordering = Ordering.AGGREGATE
    concurrency: int = 8

    @property
    def kind(self) -> PluginKind:
        """The sink kind."""
        return self.config.kind

    @property
    def label(self) -> str:
        """`<kind> (<name>)`."""
        return f"{self.kind} ({self.name})"

    def to_dict(self) -> dict[str, Any]:
        """The plugins.json entry, keys in file order."""
        return {"enabled": self.enabled, "emit_events": self.emit_events, "name": self.name,
                "payload_mode": str(self.payload_mode), "ordering": str(self.ordering),
                "concurrency": self.concurrency, "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PluginDefinition:
        """Parse one entry; missing keys take their defaults; ConfigError on bad values."""
        if not isinstance(data, Mapping):
            raise ConfigError("plugins.json entries must be objects")
        config = parse_sink_config(data.get("config"))
        raw_name = data.get("name")
        name = str(config.kind) if raw_name is None else str(raw_name).strip()
        if not name:
            raise ConfigError("plugin name cannot be empty")
        concurrency = _int(data.get("concurrency", 8), "concurrency")
        if not 1 <= concurrency <= 256:
            raise ConfigError("concurrency must be between 1 and 256")
        return cls(
            name=name, config=config, enabled=_bool(data.get("enabled", True), "enabled"),
            emit_events=_bool(data.get("emit_events", True), "emit_events"),
            payload_mode=parse_payload_mode(str(data.get("payload_mode") or "all")),
            ordering=parse_ordering(str(data.get("ordering") or "aggregate")),
            concurrency=concurrency,
        )


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"plugin key '{key}' must be true or false")
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"plugin key '{key}' must be an integer")
    return int(value)


def _timeout(cfg: Mapping[str, Any]) -> float:
    value = cfg.get("timeout_secs", 5)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError("timeout must be greater than 0")
    return float(value)


def _str_map(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"plugin config '{key}' must be an object")
    return {str(k): str(v) for k, v in value.items()}


def _tagged(raw: Any) -> tuple[str, Mapping[str, Any]]:
    """(type, fields) of a config: `{"type": kind, …}` or the externally tagged `{kind: {…}}`."""
    if not isinstance(raw, Mapping):
        raise ConfigError("plugin 'config' must be an object with a 'type'")
    if "type" in raw:
        return str(raw["type"]).strip().lower(), raw
    if len(raw) == 1:
        kind, body = next(iter(raw.items()))
        if isinstance(body, Mapping):
            return str(kind).strip().lower(), body
    raise ConfigError("plugin 'config' must be an object with a 'type'")


def parse_sink_config(raw: Any) -> SinkConfig:
    """The kind-specific config of a plugins.json entry."""
    kind, cfg = _tagged(raw)
    if kind == "http":
        return HttpConfig(endpoint=str(cfg.get("endpoint") or ""), headers=_str_map(cfg.get("headers"), "headers"),
                          https=bool(cfg.get("https", False)),
                          secret=None if cfg.get("secret") is None else str(cfg["secret"]),
                          timeout_secs=_timeout(cfg))
    if kind in ("tcp", "capnp"):
        cls = TcpConfig if kind == "tcp" else CapnpConfig
        return cls(host=str(cfg.get("host") or ""), port=_int(cfg.get("port", 0), "port"),
                   ack=bool(cfg.get("ack", False)), timeout_secs=_timeout(cfg))
    if kind == "log":
        template = cfg.get("template")
        return LogConfig(level=str(cfg.get("level") or "info"), template=None if template is None else str(template))
    if kind == "process":
        args = cfg.get("args") or []
        if not isinstance(args, list):
            raise ConfigError("plugin config 'args' must be an array")
        working_dir = cfg.get("working_dir")
        return ProcessConfig(name=str(cfg.get("name") or ""), version=str(cfg.get("version") or ""),
                             args=tuple(str(a) for a in args), env=_str_map(cfg.get("env"), "env"),
                             working_dir=None if working_dir is None else str(working_dir),
                             ack=bool(cfg.get("ack", False)), timeout_secs=_timeout(cfg))
    raise ConfigError(f"unsupported plugin type '{kind}'")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _dedupe(entries: Sequence[Mapping[str, Any]], warn: Warn) -> tuple[list[PluginDefinition], bool]:
    """Parse entries; on a duplicate name the last wins (at its own position) with a warning."""
    parsed = [PluginDefinition.from_dict(e) for e in entries]
    unnamed: set[str] = set()
    for entry, definition in zip(entries, parsed, strict=True):
        if isinstance(entry, Mapping) and entry.get("name") is None:
            if definition.kind in unnamed:
                raise ConfigError(
                    f"plugins.json defines more than one unnamed {definition.kind} plugin; give each a name"
                )
            unnamed.add(definition.kind)
    last = {d.name: i for i, d in enumerate(parsed)}
    kept = [d for i, d in enumerate(parsed) if last[d.name] == i]
    warned: set[str] = set()
    for d in parsed:
        if last[d.name] != parsed.index(d) and d.name not in warned:
            warned.add(d.name)
            warn(f"warning: plugins.json defines '{d.name}' more than once; keeping the last definition")
    return kept, bool(warned)


def _read_entries(path: Path) -> list[Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid plugins.json at {path}: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigError(f"invalid plugins.json at {path}: expected an array of plugin definitions")
    return data


def load_plugins(path: Path, *, warn: Warn | None = None) -> list[PluginDefinition]:
    """Definitions from plugins.json ([] when missing or empty); duplicates warn and the file is rewritten."""
    entries = _read_entries(path)
    if entries is None:
        return []
    definitions, had_duplicates = _dedupe(entries, warn or _stderr)
    if had_duplicates:
        save_plugins(path, definitions)
    return definitions


def save_plugins(path: Path, definitions: Sequence[PluginDefinition]) -> None:
    """Write plugins.json atomically (temp file, fsync, rename), mode 0600, pretty with 2-space indent."""
    text = json.dumps([d.to_dict() for d in definitions], indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".plugins.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power loss
    finally:
        os.close(dir_fd)


def import_legacy_plugins(config_path: Path, plugins_path: Path, *, warn: Warn | None = None) -> int:
    """Copy a legacy `[[plugins]]` array of config.toml into plugins.json when that file is missing or empty."""
    if _read_entries(plugins_path) is not None or not config_path.exists():
        return 0
    try:
        legacy = tomllib.loads(config_path.read_text(encoding="utf-8")).get("plugins")
    except (OSError, tomllib.TOMLDecodeError):
        return 0
    if not isinstance(legacy, list) or not legacy:
        return 0
    definitions, _ = _dedupe(legacy, warn or _stderr)
    save_plugins(plugins_path, definitions)
    return len(definitions)


def find_plugin(definitions: Sequence[PluginDefinition], name_or_label: str) -> PluginDefinition | None:
    """The definition whose name or label is `name_or_label` (trimmed)."""
    key = name_or_label.strip()
    for definition in definitions:
        if key in (definition.name, definition.label):
            return definition
    return None


def with_enabled(definition: PluginDefinition, enabled: bool) -> PluginDefinition:
    """A copy with `enabled` changed."""
    return replace(definition, enabled=enabled)


class PluginRegistry:
    """plugins.json for a long-running process: reloads when mtime/size/inode change; keeps the last good list."""

    def __init__(self, path: Path, *, warn: Warn | None = None) -> None:
        self.path = path
        self._warn = warn or _stderr
        self._stamp: tuple[int, int, int] | None = None
        self._definitions: list[PluginDefinition] = []
        self._loaded = False
        self.last_error: str | None = None

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed since the last read; True if the definitions were replaced."""
        stamp = self._current_stamp()
        if self._loaded and stamp == self._stamp:
            return False
        try:
            definitions = load_plugins(self.path, warn=self._warn)
        except ConfigError as exc:
            if self.last_error != exc.message:
                self._warn(f"warning: {exc.message}; keeping the previous plugin definitions")
            self.last_error, self._stamp = exc.message, stamp
            return False
        self._stamp, self._loaded, self.last_error = self._current_stamp(), True, None
        self._definitions = definitions
        return True

    def current(self) -> list[PluginDefinition]:
        """The definitions, reloaded first if the file changed."""
        self.reload_if_changed()
        return list(self._definitions)

    @property
    def healthy(self) -> bool:
        """False while the file on disk cannot be parsed (the previous definitions are in use)."""
        return self.last_error is None
