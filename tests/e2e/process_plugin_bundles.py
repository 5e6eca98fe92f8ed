"""Builds process-plugin bundles for daemon e2e tests: examples/ packaged as .tar.gz, and tiny raw scripts."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import DbxEnv

EXAMPLES = Path(__file__).parents[2] / "examples"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(predicate: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    """Poll `predicate` every 50 ms until truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached in time"
        time.sleep(0.05)


def example_script(name: str) -> bytes:
    """An example plugin with its shebang pointing at this interpreter (which has eventdbx installed)."""
    text = (EXAMPLES / name).read_text()
    assert text.startswith("#!")
    return f"#!{sys.executable}\n".encode() + text.split("\n", 1)[1].encode()


def tar_bundle(path: Path, files: dict[str, bytes]) -> str:
    """Write a .tar.gz of executable `files`; return its SHA-256 hex digest."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install(dbx: DbxEnv, name: str, bundle: Path, checksum: str, *extra: str) -> str:
    """`dbx plugin install NAME 0.1.0 --source file://… --checksum …`; return the binary path."""
    out = dbx.ok(
        "plugin",
        "install",
        name,
        "0.1.0",
        "--source",
        bundle.as_uri(),
        "--checksum",
        checksum,
        *extra,
    ).out.strip()
    prefix = f"installed plugin '{name}' v0.1.0 for "
    assert out.startswith(prefix), out
    return out.split(" at ", 1)[1]


def status_block(dbx: DbxEnv, name: str) -> dict[str, str]:
    """`dbx plugin status NAME` as a dict of its indented `key: value` lines."""
    lines = dbx.ok("plugin", "status", name).out.splitlines()
    assert lines[0] == f"Process plugin: {name}"
    return dict(line.strip().split(": ", 1) for line in lines[1:])


def running_pid(dbx: DbxEnv, name: str) -> int | None:
    """The worker pid `dbx plugin status` reports while running, else None."""
    status = status_block(dbx, name)["status"]
    if not status.startswith("running (pid "):
        return None
    return int(status.removeprefix("running (pid ").rstrip(")"))


def queue_json(dbx: DbxEnv, *args: str) -> dict[str, Any]:
    """`dbx queue --json …` parsed."""
    data: dict[str, Any] = json.loads(dbx.ok("queue", "--json", *args).out)
    return data


def plugin_jobs(dbx: DbxEnv, plugin: str, status: str) -> list[dict[str, Any]]:
    """Every job of one plugin in one section."""
    jobs = queue_json(dbx, "--status", status, "--limit", "0")["jobs"]
    return [j for j in jobs if j["plugin_name"] == plugin]


def daemon_log(dbx: DbxEnv) -> str:
    """The daemon's log so far."""
    return (dbx.data_dir / "logs" / "eventdbx.log").read_text(errors="replace")
