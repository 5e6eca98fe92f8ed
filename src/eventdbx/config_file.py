"""Writing config.toml: the fresh file, rendering Settings as TOML, and tomlkit edits that keep unknown keys."""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eventdbx.config import (
    AuthSettings,
    Settings,
    settings_from_raw,
)
from eventdbx.errors import ConfigError

REDACTED = "<redacted>"
# config.md §3 order: top-level keys, then tables (each with its keys in order).
TOP_KEYS: tuple[str, ...] = (
    "port", "data_dir", "snapshot_threshold", "data_encryption_key", "created_at", "updated_at", "restrict",
    "list_page_size", "page_limit", "plugin_max_attempts", "snowflake_worker_id", "durability",
)
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("plugin_queue", ("shutdown_grace_secs", "stall_after_secs")),
    ("plugin_queue.prune", ("done_ttl_secs", "interval_secs", "max_done_jobs", "dead_ttl_secs")),
    ("socket", ("bind_addr", "max_message_bytes", "max_connections", "trusted_networks")),
    ("admin", ("enabled", "bind_addr", "port")),
    ("auth", ("issuer", "audience", "private_key", "public_key", "key_id", "default_ttl_secs", "clock_skew_secs")),
)


def now_ts() -> str:
    """Now as RFC 3339 with `+00:00`."""
    from eventdbx.domain.timefmt import format_epoch

    return format_epoch(time.time(), suffix="+00:00")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _quote(str(value))


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _quote(text: str) -> str:
    """A TOML basic string."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def settings_values(s: Settings, *, redact: bool) -> dict[str, dict[str, Any]]:
    """Settings as {table: {key: value}} ("" = top level), unset values left out, secrets optionally redacted."""

    def secret(value: str | None) -> str | None:
        return REDACTED if redact and value else value

    q, p = s.plugin_queue, s.plugin_queue.prune
    return {
        "": {
            "port": s.port, "data_dir": str(s.data_dir), "snapshot_threshold": s.snapshot_threshold,
            "data_encryption_key": secret(s.data_encryption_key), "created_at": s.created_at,
            "updated_at": s.updated_at, "restrict": str(s.restrict), "list_page_size": s.list_page_size,
            "page_limit": s.page_limit, "plugin_max_attempts": s.plugin_max_attempts,
            "snowflake_worker_id": s.snowflake_worker_id, "durability": s.durability,
        },
        "plugin_queue": {"shutdown_grace_secs": q.shutdown_grace_secs, "stall_after_secs": q.stall_after_secs},
        "plugin_queue.prune": {
            "done_ttl_secs": p.done_ttl_secs, "interval_secs": p.interval_secs,
            "max_done_jobs": p.max_done_jobs, "dead_ttl_secs": p.dead_ttl_secs,
        },
        "socket": {
            "bind_addr": s.socket.bind_addr, "max_message_bytes": s.socket.max_message_bytes,
            "max_connections": s.socket.max_connections, "trusted_networks": list(s.socket.trusted_networks),
        },
        "admin": {"enabled": s.admin.enabled, "bind_addr": s.admin.bind_addr, "port": s.admin.port},
        "auth": {
            "issuer": s.auth.issuer, "audience": s.auth.audience, "private_key": secret(s.auth.private_key),
            "public_key": s.auth.public_key, "key_id": s.auth.key_id,
            "default_ttl_secs": s.auth.default_ttl_secs, "clock_skew_secs": s.auth.clock_skew_secs,
        },
    }


def render_settings(s: Settings, *, redact: bool = True) -> str:
    """The effective configuration as TOML text in config.md §3 order."""
    tables = settings_values(s, redact=redact)
    lines = [f"{k} = {_value(v)}" for k, v in tables[""].items() if v is not None]
    for name, _keys in TABLES:
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {_value(v)}" for k, v in tables[name].items() if v is not None]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str, *, exclusive: bool = False) -> bool:
    """Write via a temp file (0600) and rename; `exclusive` never replaces an existing file (False if one won)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def create_config(path: Path) -> dict[str, Any]:
    """Create a fresh config.toml (every default, fresh keys) and its directory; return the parsed document."""
    from eventdbx.auth.keys import generate_keys

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = time.time()
    keys = generate_keys(now)
    stamp = now_ts()
    fresh = Settings(
        config_path=path, data_dir=path.parent, created_at=stamp, updated_at=stamp,
        auth=AuthSettings(private_key=keys.private_key, public_key=keys.public_key, key_id=keys.key_id),
    )
    text = render_settings(fresh, redact=False)
    if not _write_atomic(path, text, exclusive=True):  # another process created it first: use theirs
        text = path.read_text(encoding="utf-8")
    return tomllib.loads(text)


def add_missing_keys(path: Path) -> dict[str, Any]:
    """Generate `[auth]` keys missing from an existing config and save them; return the parsed document."""
    from eventdbx.auth.keys import generate_keys

    keys = generate_keys(time.time())
    save_config_changes(path, {
        "auth.private_key": keys.private_key, "auth.public_key": keys.public_key, "auth.key_id": keys.key_id,
    })
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _canonical(table: str) -> tuple[str, ...]:
    if table == "":
        return TOP_KEYS + tuple(name for name, _ in TABLES if "." not in name)
    if table == "plugin_queue":
        return (*dict(TABLES)["plugin_queue"], "prune")
    return dict(TABLES).get(table, ())


def _set(container: Any, table: str, key: str, value: Any) -> None:
    """Set `key`, placing a new key after its closest predecessor in canonical order."""
    import tomlkit.container

    if key in container:
        container[key] = value
        return
    order = _canonical(table)
    if key in order:
        for prev in reversed(order[: order.index(key)]):
            if prev in container and not _is_table(container[prev]) and not _is_table(value):
                body = container if isinstance(container, tomlkit.container.Container) else container.value
                body._insert_after(prev, key, value)
                return
    container[key] = value


def _is_table(value: Any) -> bool:
    import tomlkit.items

    return isinstance(value, tomlkit.items.Table | tomlkit.items.AoT | dict)


def _container(doc: Any, table: str) -> Any:
    import tomlkit

    node = doc
    for depth, part in enumerate(table.split(".") if table else ()):
        if part not in node:
            node[part] = tomlkit.table()
            if depth == 0:
                _move_later_tables(doc, part)
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"'{table}' is not a table in the config file")
    return node


def _move_later_tables(doc: Any, created: str) -> None:
    """Keep config.md §3 table order: re-append the known tables that belong after a newly created one."""
    order = [name for name, _ in TABLES if "." not in name]
    if created not in order:
        return
    for name in order[order.index(created) + 1:]:
        if name in doc:
            doc[name] = doc.pop(name)


def apply_changes(text: str, changes: Mapping[str, Any]) -> str:
    """Apply dotted-key changes (None removes a key) to TOML text, keeping comments and unknown keys."""
    import tomlkit

    doc = tomlkit.parse(text)
    for dotted, value in changes.items():
        table, _, key = dotted.rpartition(".")
        node = _container(doc, table)
        if value is None:
            node.pop(key, None)
        else:
            _set(node, table, key, list(value) if isinstance(value, tuple) else value)
    for key, default in (("done_ttl_secs", 86400), ("interval_secs", 300), ("dead_ttl_secs", 0)):
        prune = _container(doc, "plugin_queue.prune")
        if key not in prune:
            _set(prune, "plugin_queue.prune", key, default)
    if "plugin_max_attempts" not in doc:
        _set(doc, "", "plugin_max_attempts", 10)
    _set(doc, "", "updated_at", now_ts())
    return doc.as_string()


def save_config_changes(config_path: Path, changes: Mapping[str, Any]) -> None:
    """Validate and save changes (keys like `port` or `auth.key_id`; None unsets) to config.toml."""
    path = Path(config_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    new_text = apply_changes(text, changes)
    try:
        raw = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - tomlkit writes valid TOML
        raise ConfigError(f"invalid TOML produced for {path}: {exc}") from exc
    settings_from_raw(raw, path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomic(path, new_text)
