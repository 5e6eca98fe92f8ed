"""Fixtures shared by every test tier: isolated HOME/data dirs and a runner for the real `dbx`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DBX = str(Path(sys.executable).with_name("dbx"))


@dataclass(frozen=True, slots=True)
class DbxResult:
    """Exit code and output of one `dbx` run."""

    code: int
    out: str
    err: str


@dataclass(frozen=True, slots=True)
class DbxEnv:
    """A private HOME for running the real `dbx` as a subprocess."""

    home: Path

    @property
    def data_dir(self) -> Path:
        """The default data dir under this HOME."""
        return self.home / ".eventdbx"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess: this HOME, no inherited EVENTDBX_* variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDBX_")}
        env["HOME"] = str(self.home)
        env.update(extra)
        return env

    def run(self, *args: str, input: str | None = None, timeout: float = 60, **extra: str) -> DbxResult:
        """Run `dbx ARGS…` to completion."""
        proc = subprocess.run(
            [DBX, *args], input=input, capture_output=True, text=True, timeout=timeout,
            env=self.env(**extra), cwd=self.home,
        )
        return DbxResult(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **kw: str) -> DbxResult:
        """Run `dbx` and assert it succeeded with no traceback."""
        res = self.run(*args, **kw)  # type: ignore[arg-type]
        assert res.code == 0, f"dbx {' '.join(args)} failed ({res.code}): {res.err}"
        assert "Traceback" not in res.err
        return res

    def fail(self, *args: str, code: int = 1, **kw: str) -> DbxResult:
        """Run `dbx` and assert it failed with `code` and a one-line-ish error, never a traceback."""
        res = self.run(*args, **kw)  # type: ignore[arg-type]
        assert res.code == code, f"dbx {' '.join(args)}: expected exit {code}, got {res.code}: {res.err}"
        assert "Traceback" not in res.err
        return res


@pytest.fixture
def dbx(tmp_path: Path) -> Iterator[DbxEnv]:
    """A fresh HOME for `dbx` subprocesses."""
    home = tmp_path / "home"
    home.mkdir()
    yield DbxEnv(home=home)
