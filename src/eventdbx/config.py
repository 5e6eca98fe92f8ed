"""Settings loaded once from config.toml (config_text, else tomllib) and the data-dir paths; writing lives in config_file.py."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from eventdbx.config_text import read_subset
from eventdbx.domain.restrict import RestrictMode, parse_restrict
from eventdbx.errors import ConfigError

# frozen_record: dataclass fields without generated code at import (every dbx command loads these classes);
# the type checker sees the dataclass it behaves as.
if TYPE_CHECKING:
    from dataclasses import dataclass as frozen_record
else:
    from eventdbx.frozen import frozen_record

MAX_WORKER_ID = 1023
DEFAULT_TRUSTED_NETWORKS: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "::ffff:127.0.0.0/104")
SECRET_KEYS: frozenset[str] = frozenset({"data_encryption_key", "auth.private_key"})


@frozen_record(frozen=True, slots=True, kw_only=True)
class SocketSettings:
    """`[socket]`: the control socket listener."""

    bind_addr: str = "127.0.0.1:6363"
    max_message_bytes: int = 8388608
    max_connections: int = 1024
    trusted_networks: tuple[str, ...] = DEFAULT_TRUSTED_NETWORKS


@frozen_record(frozen=True, slots=True, kw_only=True)
class AdminSettings:
    """`[admin]`: reserved for the later admin API."""

    enabled: bool = False
    bind_addr: str = "127.0.0.1"
    port: int | None = 7171


@frozen_record(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """`[auth]`: JWT issuer/audience, signing keys (auth.md §2) and token lifetimes."""

    issuer: str = "eventdbx://self"
    audience: str = "eventdbx-clients"
    private_key: str = ""
    public_key: str = ""
    key_id: str = ""
    default_ttl_secs: int = 3600
    clock_skew_secs: int = 30


@frozen_record(frozen=True, slots=True, kw_only=True)
class PruneSettings:
    """`[plugin_queue.prune]` (plugins.md §6)."""

    done_ttl_secs: int = 86400
    interval_secs: int = 300
    max_done_jobs: int | None = None
    dead_ttl_secs: int = 0


@frozen_record(frozen=True, slots=True, kw_only=True)
class PluginQueueSettings:
    """`[plugin_queue]` (plugins.md §11)."""

    shutdown_grace_secs: int = 10
    stall_after_secs: int = 60
    prune: PruneSettings = PruneSettings()


@frozen_record(frozen=True, slots=True, kw_only=True)
class DataPaths:
    """Files and directories inside the data dir (config.md §2)."""

    data_dir: Path
    event_store: Path
    plugin_queue: Path
    plugins_json: Path
    plugins_dir: Path
    cli_token: Path
    pid_file: Path
    logs_dir: Path


@frozen_record(frozen=True, slots=True, kw_only=True)
class Settings:
    """The effective configuration of one process."""

    config_path: Path
    data_dir: Path
    port: int = 7070
    snapshot_threshold: int | None = None
    data_encryption_key: str | None = None
    restrict: RestrictMode = RestrictMode.DEFAULT
    list_page_size: int = 10
    page_limit: int = 1000
    plugin_max_attempts: int = 10
    snowflake_worker_id: int = 0
    durability: Literal["normal", "fsync"] = "normal"
    created_at: str | None = None
    updated_at: str | None = None
    socket: SocketSettings = SocketSettings()
    admin: AdminSettings = AdminSettings()
    auth: AuthSettings = AuthSettings()
    plugin_queue: PluginQueueSettings = PluginQueueSettings()
    legacy_plugins: tuple[Mapping[str, Any], ...] = ()
    log_dir_override: Path | None = None

    @property
    def paths(self) -> DataPaths:
        """Where each data-dir file lives (EVENTDBX_LOG_DIR, read at load, moves the logs)."""
        d = self.data_dir
        return DataPaths(
            data_dir=d,
            event_store=d / "event_store.db",
            plugin_queue=d / "plugin_queue.db",
            plugins_json=d / "plugins.json",
            plugins_dir=d / "plugins",
            cli_token=d / "cli.token",
            pid_file=d / "eventdbx.pid",
            logs_dir=self.log_dir_override or d / "logs",
        )


def default_config_path() -> Path:
    """`$HOME/.eventdbx/config.toml`."""
    return Path(os.environ.get("HOME") or Path.home()) / ".eventdbx" / "config.toml"


def load_settings(config_path: str | Path | None = None, *, create: bool = True) -> Settings:
    """Read and validate config.toml; with `create`, make the file (fresh keys) and data dir on first use."""
    path = Path(config_path).expanduser() if config_path is not None else default_config_path()
    path = path if path.is_absolute() else Path.cwd() / path
    raw = read_raw(path, create=create)
    auth = raw.get("auth")
    if not isinstance(auth, dict) or not all(
        auth.get(k) for k in ("private_key", "public_key", "key_id")
    ):
        if not create:
            raise ConfigError(f"missing [auth] signing keys in {path}")
        from eventdbx.config_file import add_missing_keys

        raw = add_missing_keys(path)
    settings = settings_from_raw(raw, path)
    if create and not settings.data_dir.is_dir():
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return settings


def read_raw(path: Path, *, create: bool) -> dict[str, Any]:
    """The parsed TOML document; a missing file is created when allowed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise ConfigError(f"config file not found at {path}") from None
        from eventdbx.config_file import create_config

        return create_config(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    doc = read_subset(text)  # the shape dbx writes, without importing tomllib (start-up time)
    if doc is not None:
        return doc
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc


class _Reader:
    """Typed access to one TOML table, naming key and file in every error."""

    def __init__(self, table: Mapping[str, Any], prefix: str, path: Path) -> None:
        self.table, self.prefix, self.path = table, prefix, path

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"invalid value for '{self.prefix}{key}' in {self.path}: {why}")

    def sub(self, key: str) -> _Reader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table")
        return _Reader(value, f"{self.prefix}{key}.", self.path)

    def int_(self, key: str, default: int, *, lo: int | None = None, hi: int | None = None) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "expected an integer")
        if lo is not None and value < lo:
            raise self.fail(key, f"must be at least {lo}")
        if hi is not None and value > hi:
            raise self.fail(key, f"must be at most {hi}")
        return value

    def opt_int(self, key: str, *, lo: int = 0) -> int | None:
        if self.table.get(key) is None:
            return None
        return self.int_(key, 0, lo=lo)

    def str_(self, key: str, default: str) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, "expected a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "expected a string")
        return value or None

    def bool_(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value


def settings_from_raw(raw: Mapping[str, Any], path: Path) -> Settings:
    """Validate a parsed config document into Settings."""
    r = _Reader(raw, "", path)
    worker = r.int_("snowflake_worker_id", 0, lo=0)
    if worker > MAX_WORKER_ID:
        raise ConfigError(f"snowflake worker id {worker} exceeds maximum {MAX_WORKER_ID}")
    durability = r.str_("durability", "normal").lower()
    if durability not in ("normal", "fsync"):
        raise r.fail("durability", 'expected "normal" or "fsync"')
    restrict_raw = raw.get("restrict")
    if restrict_raw is not None and not isinstance(restrict_raw, str | bool):
        raise r.fail("restrict", "expected a string or boolean")
    dek = r.opt_str("data_encryption_key")
    if dek is not None and not is_valid_dek(dek):
        raise r.fail("data_encryption_key", "expected base64 of 32 bytes")
    threshold = r.opt_int("snapshot_threshold")
    data_dir_text = r.opt_str("data_dir")
    data_dir = Path(data_dir_text).expanduser() if data_dir_text else path.parent
    log_dir = os.environ.get("EVENTDBX_LOG_DIR")
    legacy = raw.get("plugins")
    return Settings(
        config_path=path,
        data_dir=data_dir if data_dir.is_absolute() else path.parent / data_dir,
        port=r.int_("port", 7070, lo=0, hi=65535),
        snapshot_threshold=threshold or None,
        data_encryption_key=dek,
        restrict=parse_restrict(restrict_raw),
        list_page_size=r.int_("list_page_size", 10, lo=1),
        page_limit=r.int_("page_limit", 1000, lo=1),
        plugin_max_attempts=max(r.int_("plugin_max_attempts", 10), 1),
        snowflake_worker_id=worker,
        durability="fsync" if durability == "fsync" else "normal",
        created_at=r.opt_str("created_at"),
        updated_at=r.opt_str("updated_at"),
        socket=_socket(r.sub("socket")),
        admin=_admin(r.sub("admin")),
        auth=_auth(r.sub("auth")),
        plugin_queue=_plugin_queue(r.sub("plugin_queue")),
        legacy_plugins=tuple(p for p in legacy if isinstance(p, dict))
        if isinstance(legacy, list)
        else (),
        log_dir_override=Path(log_dir) if log_dir else None,
    )


def _socket(r: _Reader) -> SocketSettings:
    bind = r.str_("bind_addr", "127.0.0.1:6363")
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise r.fail("bind_addr", "expected HOST:PORT")
    networks = r.table.get("trusted_networks", list(DEFAULT_TRUSTED_NETWORKS))
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        raise r.fail("trusted_networks", "expected a list of CIDR strings")
    if tuple(networks) != DEFAULT_TRUSTED_NETWORKS:
        import ipaddress

        for net in networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise r.fail("trusted_networks", f"invalid network '{net}'") from None
    return SocketSettings(
        bind_addr=bind,
        max_message_bytes=r.int_("max_message_bytes", 8388608, lo=1024),
        max_connections=r.int_("max_connections", 1024, lo=1),
        trusted_networks=tuple(networks),
    )


def _admin(r: _Reader) -> AdminSettings:
    port = r.int_("port", 7171, lo=0, hi=65535)  # 0 = unset (`config --admin-port 0`)
    return AdminSettings(
        enabled=r.bool_("enabled", False),
        bind_addr=r.str_("bind_addr", "127.0.0.1"),
        port=port or None,
    )


def _auth(r: _Reader) -> AuthSettings:
    from eventdbx.auth.keytext import check_key_pair

    auth = AuthSettings(
        issuer=r.str_("issuer", "eventdbx://self"),
        audience=r.str_("audience", "eventdbx-clients"),
        private_key=r.str_("private_key", ""),
        public_key=r.str_("public_key", ""),
        key_id=r.str_("key_id", ""),
        default_ttl_secs=r.int_("default_ttl_secs", 3600, lo=60),
        clock_skew_secs=r.int_("clock_skew_secs", 30, lo=0, hi=300),
    )
    check_key_pair(auth.private_key, auth.public_key, path=r.path)
    return auth


def _plugin_queue(r: _Reader) -> PluginQueueSettings:
    p = r.sub("prune")
    return PluginQueueSettings(
        shutdown_grace_secs=r.int_("shutdown_grace_secs", 10, lo=0),
        stall_after_secs=r.int_("stall_after_secs", 60, lo=1),
        prune=PruneSettings(
            done_ttl_secs=p.int_("done_ttl_secs", 86400, lo=0),
            interval_secs=max(p.int_("interval_secs", 300, lo=0), 60),
            max_done_jobs=p.opt_int("max_done_jobs"),
            dead_ttl_secs=p.int_("dead_ttl_secs", 0, lo=0),
        ),
    )


def is_valid_dek(value: str) -> bool:
    """True when `value` is standard base64 of exactly 32 bytes."""
    import base64
    import binascii

    try:
        return len(base64.b64decode(value.strip(), validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def save_config_changes(config_path: Path, changes: Mapping[str, Any]) -> None:
    """Validate and save changes to config.toml (keys like `port`, `auth.key_id`; None unsets), keeping unknown keys."""
    from eventdbx import config_file  # tomlkit loads only when writing

    config_file.save_config_changes(config_path, changes)
