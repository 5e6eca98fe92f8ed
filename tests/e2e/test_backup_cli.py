"""`dbx backup` / `dbx restore` through the real CLI (cli.md §7)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import tarfile
import tomllib
from pathlib import Path

import pytest
from tests.conftest import DbxEnv


def _seed(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    logs = dbx.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "eventdbx.log").write_text("log line\n")
    (dbx.data_dir / "event_store.db-wal").write_bytes(b"")  # stray file: must not be archived
    (dbx.data_dir / "eventdbx.pid").write_text(json.dumps({"pid": 999_999_999}))
    (dbx.data_dir / "plugins.json").write_text("[]\n")


def test_help_summaries(dbx: DbxEnv) -> None:
    assert "Create a backup archive containing all EventDBX data" in dbx.ok("backup", "--help").out
    assert "Restore EventDBX data from a backup archive" in dbx.ok("restore", "--help").out


def test_backup_archive_layout(dbx: DbxEnv) -> None:
    _seed(dbx)
    out = dbx.home / "backups" / "b.tar.gz"
    res = dbx.ok("backup", "--output", str(out))
    assert res.out == f"Backup created at {out} (captured data directory {dbx.data_dir})\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with tarfile.open(out, "r:gz") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        db_bytes = tar.extractfile("data/event_store.db").read()  # type: ignore[union-attr]
    assert names[0] == "manifest.json"
    assert "data/event_store.db" in names and "data/config.toml" in names
    assert "data/plugins.json" in names
    assert not any(n.startswith("data/logs") for n in names)
    assert not any(n.endswith(("-wal", "-shm", ".pid")) for n in names)
    assert manifest["version"] == 1
    assert manifest["config_path"] == str(dbx.data_dir / "config.toml")
    assert manifest["config"]["auth"]["private_key"] not in ("", "<redacted>")
    assert "created_at" in manifest
    copy = dbx.home / "copy.db"
    copy.write_bytes(db_bytes)
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT aggregate FROM schemas").fetchall() == [("order",)]


def test_backup_errors(dbx: DbxEnv) -> None:
    dbx.ok("config")
    inside = dbx.data_dir / "b.tgz"
    err = dbx.fail("backup", "--output", str(inside)).err
    assert (f"Error: backup output path {inside} resides inside the data directory {dbx.data_dir}; "
            "choose a different location") in err
    out = dbx.home / "b.tgz"
    dbx.ok("backup", "--output", str(out))
    err = dbx.fail("backup", "--output", str(out)).err
    assert f"backup target {out} already exists (use --force to overwrite)" in err
    dbx.ok("backup", "--output", str(out), "--force")


def test_restore_round_trip(dbx: DbxEnv) -> None:
    _seed(dbx)
    out = dbx.home / "b.tgz"
    dbx.ok("backup", "--output", str(out))
    target = dbx.home / "restored"
    config = dbx.home / "cfg" / "config.toml"
    res = dbx.ok("--config", str(config), "restore", "--input", str(out), "--data-dir", str(target))
    assert res.out == f"Restored backup from {out} into {target} (config written to {config})\n"
    assert tomllib.loads(config.read_text())["data_dir"] == str(target)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert not (target / "eventdbx.pid").exists()
    assert not (target / "logs").exists()
    assert "schema=order" in dbx.ok("--config", str(config), "schema", "list").out
    err = dbx.fail("--config", str(config), "restore", "--input", str(out),
                   "--data-dir", str(target)).err
    assert f"data directory {target} is not empty (use --force to overwrite)" in err
    dbx.ok("--config", str(config), "schema", "create", "extra", "-e", "extra_created")
    dbx.ok("--config", str(config), "restore", "--input", str(out), "--data-dir", str(target),
           "--force")
    assert "extra" not in dbx.ok("--config", str(config), "schema", "list").out


def test_restore_into_fresh_home_uses_manifest_data_dir(dbx: DbxEnv, tmp_path: Path) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created")
    out = tmp_path / "b.tgz"
    dbx.ok("backup", "--output", str(out))
    fresh = DbxEnv(home=tmp_path / "fresh")
    fresh.home.mkdir()
    res = fresh.ok("restore", "--input", str(out), "--data-dir", str(fresh.data_dir))
    assert f"config written to {fresh.data_dir / 'config.toml'}" in res.out
    assert "schema=order" in fresh.ok("schema", "list").out


def test_restore_errors(dbx: DbxEnv, tmp_path: Path) -> None:
    missing = tmp_path / "missing.tgz"
    err = dbx.fail("restore", "--input", str(missing)).err
    assert f"Error: backup archive {missing} does not exist" in err
    assert not (dbx.data_dir / "config.toml").exists()  # restore creates nothing on failure

    no_manifest = tmp_path / "nm.tgz"
    with tarfile.open(no_manifest, "w:gz") as tar:
        tar.add(str(tmp_path), arcname="data", recursive=False)
    err = dbx.fail("restore", "--input", str(no_manifest)).err
    assert "backup archive does not contain a manifest.json" in err

    no_data = tmp_path / "nd.tgz"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"version": 1, "config": {}, "config_path": "x"}))
    with tarfile.open(no_data, "w:gz") as tar:
        tar.add(str(manifest), arcname="manifest.json")
    err = dbx.fail("restore", "--input", str(no_data)).err
    assert "backup archive is missing the data directory" in err


def test_restore_refuses_running_server(dbx: DbxEnv, tmp_path: Path) -> None:
    dbx.ok("config")
    out = tmp_path / "b.tgz"
    dbx.ok("backup", "--output", str(out))
    target = tmp_path / "live"
    target.mkdir()
    (target / "eventdbx.pid").write_text(json.dumps({"pid": os.getpid()}))
    err = dbx.fail("restore", "--input", str(out), "--data-dir", str(target), "--force").err
    assert (f"EventDBX server appears to be running (pid {os.getpid()}); "
            "stop it before continuing") in err


@pytest.mark.parametrize(("args", "code"), [
    (("backup",), 2),
    (("restore",), 2),
    (("backup", "--output"), 2),
    (("restore", "--input", "/nonexistent/x.tgz", "--bogus"), 2),
])
def test_bad_input(dbx: DbxEnv, args: tuple[str, ...], code: int) -> None:
    res = dbx.fail(*args, code=code)
    assert res.err.startswith("error: ")


def test_corrupt_archive_is_one_line(dbx: DbxEnv, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tar")
    res = dbx.fail("restore", "--input", str(bad))
    assert res.err.startswith("Error: ") and res.err.count("\n") == 1


def test_encrypted_data_round_trips_with_its_key(dbx: DbxEnv, tmp_path: Path) -> None:
    dbx.ok("config", "--generate-dek")
    dbx.ok("aggregate", "apply", "order", "o1", "order_created", "--field", "status=secret")
    out = tmp_path / "b.tgz"
    dbx.ok("backup", "--output", str(out))
    config = tmp_path / "other" / "config.toml"
    dbx.ok("--config", str(config), "restore", "--input", str(out),
           "--data-dir", str(tmp_path / "other-data"))
    assert tomllib.loads(config.read_text())["data_encryption_key"]
    state = json.loads(dbx.ok("--config", str(config), "aggregate", "get", "order", "o1").out)
    assert state["state"] == {"status": "secret"}


def test_backup_captures_wal_of_a_live_writer(dbx: DbxEnv, tmp_path: Path) -> None:
    """Another process keeps event_store.db open with un-checkpointed WAL pages (like the daemon)."""
    from eventdbx.config import load_settings
    from eventdbx.service import AppendRequest, EventService

    dbx.ok("aggregate", "apply", "order", "o1", "order_created")
    service = EventService.open(load_settings(dbx.data_dir / "config.toml"))
    try:
        for _ in range(20):
            service.append(AppendRequest(aggregate_type="order", aggregate_id="o1",
                                         event_type="order_updated", payload_json='{"n":1}'))
        assert (dbx.data_dir / "event_store.db-wal").stat().st_size > 0
        out = tmp_path / "live.tgz"
        dbx.ok("backup", "--output", str(out))
    finally:
        service.close()
    config = tmp_path / "r" / "config.toml"
    dbx.ok("--config", str(config), "restore", "--input", str(out), "--data-dir", str(tmp_path / "rd"))
    state = json.loads(dbx.ok("--config", str(config), "aggregate", "get", "order", "o1").out)
    assert state["version"] == 21
