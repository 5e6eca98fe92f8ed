"""Structural guard for `dbx` start-up time: the write path imports no heavy module (no timing involved)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import DbxEnv

# Runs the console-script entry point exactly as .venv/bin/dbx does, then dumps sys.modules at exit.
PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from eventdbx.cli.main import main
main()
"""

NEVER_ON_APPLY = (
    "click",
    "rich",
    "aiohttp",
    "asyncio",
    "capnp",
    "tomlkit",
    "cryptography",
    "jwt",
    "eventdbx.plugins",
    "eventdbx.control",
    "eventdbx.schema",
    "eventdbx.auth.records",
    "eventdbx.auth.tokens",
    "eventdbx.sdk",
    "eventdbx.daemon",
    "eventdbx.cli.root",
    "eventdbx.cli.aggregate",
    "importlib.metadata",
    "tomllib",  # config.toml as dbx writes it is read by config_text
    "hashlib",  # integrity starts on the bundled sha256 (OpenSSL takes ~2.5 ms to load)
)
NEVER_ON_GET = (
    "rich",
    "aiohttp",
    "asyncio",
    "capnp",
    "tomlkit",
    "eventdbx.plugins",
    "eventdbx.control",
)


def _modules(dbx: DbxEnv, *args: str) -> set[str]:
    out = dbx.home / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        env=dbx.env(),
        cwd=dbx.home,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(out.read_text())
    return set(loaded)


def _heavy(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


def test_apply_imports_nothing_heavy(dbx: DbxEnv) -> None:
    dbx.ok("aggregate", "apply", "order", "o1", "order_created")
    modules = _modules(
        dbx, "aggregate", "apply", "order", "o1", "order_updated", "--field", "status=x"
    )
    assert "eventdbx.service" in modules  # the probe really ran the append
    assert _heavy(modules, NEVER_ON_APPLY) == []


def test_staged_apply_imports_nothing_heavy(dbx: DbxEnv) -> None:
    dbx.ok("schema", "list")  # first use writes config.toml (key generation needs cryptography)
    modules = _modules(
        dbx, "aggregate", "apply", "order", "o1", "order_created", "--payload", "{}", "--stage"
    )
    assert _heavy(modules, NEVER_ON_APPLY) == []


def test_get_imports_no_daemon_or_plugin_code(dbx: DbxEnv) -> None:
    dbx.ok("aggregate", "apply", "order", "o1", "order_created")
    modules = _modules(dbx, "aggregate", "get", "order", "o1")
    assert "click" in modules
    assert _heavy(modules, NEVER_ON_GET) == []
