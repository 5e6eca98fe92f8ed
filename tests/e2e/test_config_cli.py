"""`dbx config` through the real CLI (cli.md §1 first use, §3)."""

from __future__ import annotations

import stat
import tomllib

from tests.conftest import DbxEnv


def test_first_use_creates_config_and_prints_it(dbx: DbxEnv) -> None:
    res = dbx.ok("config")
    cfg = dbx.data_dir / "config.toml"
    text = cfg.read_text()
    assert 'restrict = "default"' in text.splitlines()
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(dbx.data_dir.stat().st_mode) == 0o700
    assert "data_dir" in res.out and "port" in res.out
    assert 'private_key = "<redacted>"' in res.out
    assert tomllib.loads(res.out)["port"] == 7070
    assert res.err == ""


def test_help_summary(dbx: DbxEnv) -> None:
    assert "Update system configuration" in dbx.ok("config", "--help").out


def test_port_is_saved(dbx: DbxEnv) -> None:
    res = dbx.ok("config", "--port", "8080")
    cfg = dbx.data_dir / "config.toml"
    assert res.out.strip() == f"Configuration saved to {cfg}"
    assert "port = 8080" in cfg.read_text().splitlines()
    assert "port = 8080" in dbx.ok("config").out


def test_secrets_redacted_unless_asked(dbx: DbxEnv) -> None:
    dbx.ok("config", "--generate-dek")
    shown = dbx.ok("config").out
    assert 'data_encryption_key = "<redacted>"' in shown and 'private_key = "<redacted>"' in shown
    secret = dbx.ok("config", "--show-secrets").out
    assert "<redacted>" not in secret
    raw = tomllib.loads((dbx.data_dir / "config.toml").read_text())
    assert raw["data_encryption_key"] in secret and raw["auth"]["private_key"] in secret
    err = dbx.fail("config", "--generate-dek").err
    assert err.strip() == "Error: a data encryption key is already configured"


def test_dek_validation(dbx: DbxEnv) -> None:
    assert "Error: invalid data encryption key: expected base64 of 32 bytes" in dbx.fail("config", "--dek", "abc").err
    dbx.ok("config", "--dek", "   ")  # blank is ignored
    key = "A" * 43 + "="
    dbx.ok("config", "--data-encryption-key", key)
    assert tomllib.loads((dbx.data_dir / "config.toml").read_text())["data_encryption_key"] == key


def test_snowflake_worker_limit(dbx: DbxEnv) -> None:
    err = dbx.fail("config", "--snowflake-worker-id", "1024").err
    assert "Error: configuration error: snowflake worker id 1024 exceeds maximum 1023" in err
    dbx.ok("config", "--snowflake-worker-id", "1023")


def test_cache_threshold_warns(dbx: DbxEnv) -> None:
    res = dbx.ok("config", "--cache-threshold", "10")
    assert "warning: cache_threshold is no longer used" in res.err


def test_many_flags(dbx: DbxEnv) -> None:
    dbx.ok("config", "--restrict", "strict", "--durability", "fsync", "--socket-bind", "127.0.0.1:7000",
           "--plugin-max-attempts", "0", "--admin-port", "0", "--admin-enabled", "true",
           "--admin-bind", "0.0.0.0", "--list-page-size", "5", "--page-limit", "50",
           "--snapshot-threshold", "3")
    raw = tomllib.loads((dbx.data_dir / "config.toml").read_text())
    assert raw["restrict"] == "strict" and raw["durability"] == "fsync" and raw["plugin_max_attempts"] == 1
    assert raw["socket"]["bind_addr"] == "127.0.0.1:7000" and raw["admin"]["enabled"] is True
    assert raw["admin"]["bind_addr"] == "0.0.0.0" and raw["snapshot_threshold"] == 3
    assert raw["plugin_queue"]["prune"]["interval_secs"] == 300
    shown = dbx.ok("config").out
    assert "[admin]" in shown and "port = 7171" not in shown
    dbx.ok("config", "--clear-snapshot-threshold")
    assert "snapshot_threshold" not in (dbx.data_dir / "config.toml").read_text()
    assert dbx.fail("config", "--durability", "sometimes", code=2).err.startswith("error: ")


def test_custom_config_path_uses_its_directory(dbx: DbxEnv) -> None:
    path = dbx.home / "custom" / "conf.toml"
    out = dbx.ok("--config", str(path), "config").out
    assert f'data_dir = "{path.parent}"' in out
    assert path.exists() and not (dbx.data_dir / "config.toml").exists()


def test_bad_config_is_one_line_error(dbx: DbxEnv) -> None:
    dbx.ok("config")
    cfg = dbx.data_dir / "config.toml"
    cfg.write_text(cfg.read_text().replace("page_limit = 1000", "page_limit = -1"))
    err = dbx.fail("config").err
    assert err.strip() == f"Error: configuration error: invalid value for 'page_limit' in {cfg}: must be at least 1"
