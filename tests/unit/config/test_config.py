"""config.toml: first-use creation, defaults, validation messages, legacy keys and tomlkit round trips."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from eventdbx.config import DEFAULT_TRUSTED_NETWORKS, load_settings, settings_from_raw
from eventdbx.config_file import TOP_KEYS, render_settings, save_config_changes
from eventdbx.domain.restrict import RestrictMode
from eventdbx.errors import ConfigError


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "data" / "config.toml"


def test_fresh_config_has_every_default(cfg: Path) -> None:
    s = load_settings(cfg)
    text = cfg.read_text()
    assert '\nrestrict = "default"\n' in text
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    assert s.data_dir == cfg.parent
    assert (s.port, s.list_page_size, s.page_limit, s.plugin_max_attempts) == (7070, 10, 1000, 10)
    assert s.restrict is RestrictMode.DEFAULT and s.durability == "normal"
    assert s.snapshot_threshold is None and s.data_encryption_key is None
    assert s.socket.bind_addr == "127.0.0.1:6363" and s.socket.trusted_networks == DEFAULT_TRUSTED_NETWORKS
    assert s.admin.port == 7171 and s.admin.enabled is False
    assert s.auth.key_id.startswith("key-") and len(s.auth.key_id) == 18
    assert s.plugin_queue.shutdown_grace_secs == 10 and s.plugin_queue.stall_after_secs == 60
    prune = s.plugin_queue.prune
    assert (prune.done_ttl_secs, prune.interval_secs, prune.max_done_jobs, prune.dead_ttl_secs) == (86400, 300, None, 0)
    assert s.created_at and s.created_at == s.updated_at and s.created_at.endswith("+00:00")
    raw = tomllib.loads(text)
    for key in ("port", "data_dir", "restrict", "plugin_max_attempts", "snowflake_worker_id", "durability"):
        assert key in raw
    assert set(raw) >= {"plugin_queue", "socket", "admin", "auth"}


def test_key_order_top_level_then_tables(cfg: Path) -> None:
    load_settings(cfg)
    lines = [ln for ln in cfg.read_text().splitlines() if ln and not ln.startswith("#")]
    tops = [ln.split(" =")[0] for ln in lines[: lines.index("[plugin_queue]")]]
    assert tops == [k for k in TOP_KEYS if k in tops]
    tables = [ln for ln in lines if ln.startswith("[")]
    assert tables == ["[plugin_queue]", "[plugin_queue.prune]", "[socket]", "[admin]", "[auth]"]


def test_second_load_reuses_keys(cfg: Path) -> None:
    first = load_settings(cfg)
    again = load_settings(cfg)
    assert first.auth == again.auth


def test_missing_file_without_create(cfg: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(cfg, create=False)


def test_missing_keys_are_generated_in_existing_file(cfg: Path) -> None:
    cfg.parent.mkdir()
    cfg.write_text("# mine\nport = 9000\nfuture_key = 'kept'\n")
    s = load_settings(cfg)
    assert s.port == 9000 and s.auth.private_key
    text = cfg.read_text()
    assert "# mine" in text and "future_key = 'kept'" in text and "private_key" in text


def _write(cfg: Path, body: str) -> None:
    load_settings(cfg)
    cfg.write_text(cfg.read_text().replace("durability = \"normal\"\n", "durability = \"normal\"\n" + body))


@pytest.mark.parametrize(("body", "message"), [
    ("list_page_size = 0\n", "invalid value for 'list_page_size' in {path}: must be at least 1"),
    ("port = 'x'\n", "invalid value for 'port' in {path}: expected an integer"),
    ("durability = 'sometimes'\n", "invalid value for 'durability' in {path}"),
    ("data_encryption_key = 'abc'\n", "invalid value for 'data_encryption_key' in {path}: expected base64 of 32 bytes"),
])
def test_validation_names_key_and_file(cfg: Path, body: str, message: str) -> None:
    _write(cfg, "")
    text = cfg.read_text()
    key = body.split(" =")[0]
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{key} ="))
    cfg.write_text(body + text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(info.value).startswith("configuration error: " + message.format(path=cfg))
    assert "\n" not in str(info.value)


def test_nested_validation_names_table(cfg: Path) -> None:
    load_settings(cfg)
    cfg.write_text(cfg.read_text().replace("default_ttl_secs = 3600", "default_ttl_secs = 10"))
    with pytest.raises(ConfigError, match=r"'auth\.default_ttl_secs' in .*: must be at least 60"):
        load_settings(cfg)


def test_snowflake_worker_message(cfg: Path) -> None:
    load_settings(cfg)
    cfg.write_text(cfg.read_text().replace("snowflake_worker_id = 0", "snowflake_worker_id = 1024"))
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(info.value) == "configuration error: snowflake worker id 1024 exceeds maximum 1023"


def test_key_mismatch(cfg: Path, tmp_path: Path) -> None:
    other = load_settings(tmp_path / "other" / "config.toml")
    s = load_settings(cfg)
    cfg.write_text(cfg.read_text().replace(s.auth.public_key, other.auth.public_key))
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(info.value) == "configuration error: jwt public key does not match private key"


@pytest.mark.parametrize(("value", "mode"), [
    ("true", RestrictMode.DEFAULT), ("false", RestrictMode.OFF), ('"strict"', RestrictMode.STRICT),
    ('"OFF"', RestrictMode.OFF), ('"whatever"', RestrictMode.DEFAULT),
])
def test_restrict_accepts_bool_and_words(cfg: Path, value: str, mode: RestrictMode) -> None:
    load_settings(cfg)
    cfg.write_text(cfg.read_text().replace('restrict = "default"', f"restrict = {value}"))
    assert load_settings(cfg).restrict is mode


def test_legacy_and_unknown_keys_are_read(cfg: Path) -> None:
    load_settings(cfg)
    legacy = (
        "cache_threshold = 5\nmemory_threshold = 9\napi = 'rest'\napi_mode = 'x'\n"
    )
    tail = "\n[grpc]\nport = 1\n\n[[plugins]]\nname = 'old'\n\n[replication]\nx = 1\n[remotes.a]\nurl = 'u'\n"
    cfg.write_text(legacy + cfg.read_text() + tail)
    s = load_settings(cfg)
    assert s.legacy_plugins == ({"name": "old"},)
    save_config_changes(cfg, {"port": 8080})
    text = cfg.read_text()
    assert "port = 8080" in text and "[grpc]" in text and "[remotes.a]" in text and "[[plugins]]" in text
    assert "cache_threshold = 5" in text


def test_save_keeps_comments_updates_updated_at_and_orders_new_keys(cfg: Path) -> None:
    s = load_settings(cfg)
    cfg.write_text("# top comment\n" + cfg.read_text().replace("page_limit = 1000", "page_limit = 1000  # cap"))
    save_config_changes(cfg, {"snapshot_threshold": 7, "auth.clock_skew_secs": 5, "admin.port": 0})
    text = cfg.read_text()
    assert "# top comment" in text and "page_limit = 1000  # cap" in text
    s2 = load_settings(cfg)
    assert s2.snapshot_threshold == 7 and s2.auth.clock_skew_secs == 5 and s2.admin.port is None
    assert s2.updated_at != s.updated_at and s2.created_at == s.created_at
    lines = text.splitlines()
    assert lines.index("snapshot_threshold = 7") < lines.index("[plugin_queue]")


def test_save_rejects_invalid_values_without_writing(cfg: Path) -> None:
    load_settings(cfg)
    before = cfg.read_text()
    with pytest.raises(ConfigError, match="snowflake worker id 2000 exceeds maximum 1023"):
        save_config_changes(cfg, {"snowflake_worker_id": 2000})
    assert cfg.read_text() == before


def test_custom_path_uses_its_directory_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "elsewhere" / "my.toml"
    s = load_settings(cfg)
    assert s.data_dir == cfg.parent
    p = s.paths
    assert p.event_store == cfg.parent / "event_store.db" and p.plugin_queue == cfg.parent / "plugin_queue.db"
    assert p.plugins_json.name == "plugins.json" and p.plugins_dir.name == "plugins"
    assert p.cli_token.name == "cli.token" and p.pid_file.name == "eventdbx.pid"
    assert p.logs_dir == cfg.parent / "logs"
    monkeypatch.setenv("EVENTDBX_LOG_DIR", str(tmp_path / "logs2"))
    assert load_settings(cfg).paths.logs_dir == tmp_path / "logs2"


def test_default_path_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    s = load_settings()
    assert s.config_path == tmp_path / ".eventdbx" / "config.toml"
    assert s.data_dir == tmp_path / ".eventdbx"


def test_prune_interval_minimum_and_attempts_floor(cfg: Path) -> None:
    load_settings(cfg)
    save_config_changes(cfg, {"plugin_queue.prune.interval_secs": 5, "plugin_max_attempts": 0})
    s = load_settings(cfg)
    assert s.plugin_queue.prune.interval_secs == 60 and s.plugin_max_attempts == 1


def test_trusted_networks_validated(cfg: Path) -> None:
    load_settings(cfg)
    with pytest.raises(ConfigError, match="socket.trusted_networks"):
        save_config_changes(cfg, {"socket.trusted_networks": ["10.0.0.0/8", "nope"]})
    save_config_changes(cfg, {"socket.trusted_networks": ["10.0.0.0/8"]})
    assert load_settings(cfg).socket.trusted_networks == ("10.0.0.0/8",)


def test_render_redacts_secrets(cfg: Path) -> None:
    load_settings(cfg)
    save_config_changes(cfg, {"data_encryption_key": "A" * 43 + "="})
    s = load_settings(cfg)
    shown = render_settings(s)
    assert 'data_encryption_key = "<redacted>"' in shown and 'private_key = "<redacted>"' in shown
    assert s.auth.private_key in render_settings(s, redact=False)
    assert settings_from_raw(tomllib.loads(render_settings(s, redact=False)), cfg) == s


def test_relative_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings("rel/config.toml")
    assert s.config_path == tmp_path / "rel" / "config.toml" and os.path.isabs(s.data_dir)


def test_contract_entry_points_live_in_config(cfg: Path) -> None:
    from eventdbx import config

    config.load_settings(cfg)
    config.save_config_changes(cfg, {"restrict": "off"})
    assert config.load_settings(cfg).restrict is RestrictMode.OFF
    assert config.default_config_path().name == "config.toml"


def test_loading_an_existing_config_stays_light(cfg: Path) -> None:
    """Reading settings must not import tomlkit, cryptography, json or tempfile (CLI start time)."""
    import subprocess
    import sys

    load_settings(cfg)
    code = (
        "import sys; from eventdbx.config import load_settings; load_settings(sys.argv[1]); "
        "heavy = [m for m in ('tomlkit', 'cryptography', 'json', 'tempfile') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_tables_are_added_in_canonical_order(cfg: Path) -> None:
    s = load_settings(cfg)
    cfg.write_text(
        f'port = 1\n\n[socket]\nbind_addr = "127.0.0.1:1"\n\n[auth]\nprivate_key = "{s.auth.private_key}"\n'
        f'public_key = "{s.auth.public_key}"\nkey_id = "{s.auth.key_id}"\n'
    )
    save_config_changes(cfg, {"admin.port": 5, "durability": "fsync"})
    tables = [ln for ln in cfg.read_text().splitlines() if ln.startswith("[")]
    assert tables == ["[plugin_queue.prune]", "[socket]", "[admin]", "[auth]"]
    assert load_settings(cfg).admin.port == 5
