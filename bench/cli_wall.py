"""Wall time of one real `dbx` process (start to exit): `aggregate apply`, `aggregate get` and `--help`.

Usage: .venv/bin/python bench/cli_wall.py [--runs 30] [--warmup 3] [--dbx .venv/bin/dbx] [--no-bytecode]
Runs the installed console script against a temp HOME with a prepared data dir (schema-less aggregate with one
event), interleaving the commands so machine noise hits them alike. Prints median / p90 / min wall ms and the
median CPU ms (user+sys of the child, from wait4) per command. Target (issue 2): `aggregate apply` median ≤ 60 ms.
By default the children run with PYTHONDONTWRITEBYTECODE unset, so the warm-up runs leave .pyc files as an
installed package has them; --no-bytecode keeps the variable (every import compiles from source).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: dict[str, list[str]] = {
    "aggregate apply": [
        "aggregate",
        "apply",
        "order",
        "o-1",
        "order_updated",
        "--field",
        "status=shipped",
    ],
    "aggregate get": ["aggregate", "get", "order", "o-1"],
    "--help": ["--help"],
}


def _time_one(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace')}"
        )
    return wall, usage.ru_utime + usage.ru_stime


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    """Prepare a HOME, warm up, then time each command --runs times (interleaved)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dbx", default=str(ROOT / ".venv" / "bin" / "dbx"))
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDBX_")}
        env["HOME"] = tmp
        if not args.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [
                args.dbx,
                "aggregate",
                "apply",
                "order",
                "o-1",
                "order_created",
                "--field",
                "status=new",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
        cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for run in range(args.warmup + args.runs):
            for name, command in COMMANDS.items():
                wall, cpu = _time_one([args.dbx, *command], env)
                if run >= args.warmup:
                    walls[name].append(wall * 1000)
                    cpus[name].append(cpu * 1000)
    print(
        f"{'command':<16} {'median ms':>9} {'p90 ms':>7} {'min ms':>7} {'cpu ms':>7}  (n={args.runs})"
    )
    for name in COMMANDS:
        w = walls[name]
        print(
            f"{name:<16} {statistics.median(w):>9.1f} {_p90(w):>7.1f} {min(w):>7.1f} "
            f"{statistics.median(cpus[name]):>7.1f}"
        )


if __name__ == "__main__":
    main()
