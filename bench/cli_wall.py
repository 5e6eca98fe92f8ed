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
    parser.add_argument(
        "--dbx", action="append", help="dbx executable (repeat to compare builds, interleaved)"
    )
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = parser.parse_args()
    programs: list[str] = args.dbx or [str(ROOT / ".venv" / "bin" / "dbx")]
    rows = [(program, name) for program in programs for name in COMMANDS]
    walls: dict[tuple[str, str], list[float]] = {row: [] for row in rows}
    cpus: dict[tuple[str, str], list[float]] = {row: [] for row in rows}
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTDBX_")}
        env["HOME"] = tmp
        if not args.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        first = [programs[0], *COMMANDS["aggregate apply"]]
        first[first.index("order_updated")] = "order_created"
        subprocess.run(first, env=env, check=True, stdout=subprocess.DEVNULL)
        for run in range(args.warmup + args.runs):
            for program, name in rows:
                wall, cpu = _time_one([program, *COMMANDS[name]], env)
                if run >= args.warmup:
                    walls[program, name].append(wall * 1000)
                    cpus[program, name].append(cpu * 1000)
    print(
        f"{'command':<16} {'median ms':>9} {'p90 ms':>7} {'min ms':>7} {'cpu ms':>7}  (n={args.runs})"
    )
    for program, name in rows:
        w = walls[program, name]
        label = name if len(programs) == 1 else f"{name} [{program}]"
        print(
            f"{label:<16} {statistics.median(w):>9.1f} {_p90(w):>7.1f} {min(w):>7.1f} "
            f"{statistics.median(cpus[program, name]):>7.1f}"
        )


if __name__ == "__main__":
    main()
