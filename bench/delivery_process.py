"""Benchmark: delivery rate through a process plugin built on the SDK, with and without acks (target >= 5,000/s).

The plugin is a real child process (`eventdbx.plugin.Plugin`, one handler decoding every event) supervised by
a ProcessWorker, fed by the Dispatcher through the process sink, exactly as the daemon wires them. 20,000
jobs are queued first. Reported per run: wall rate until every job is done, CPU-ms per job of the
dispatcher's process and of the plugin process; then the medians.
Run: .venv/bin/python bench/delivery_process.py [--jobs 20000] [--runs 3] [--concurrency 8] [--modes noack,ack]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from delivery_capnp import RunResult, _run, dispatch_all, fill_queue, report
from eventdbx.config import load_settings
from eventdbx.plugins.process_worker import ProcessWorker, WorkerSpec
from eventdbx.plugins.registry import PluginDefinition, ProcessConfig
from eventdbx.plugins.sinks.process import ProcessSink

PLUGIN = """\
import os, resource, sys
from eventdbx.plugin import Plugin

plugin = Plugin()
seen = []

@plugin.on_event
def handle(event):
    seen.append((event.aggregate_id, event.version, event.state is not None))

plugin.run()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"plugin-stats events={len(seen)} cpu={usage.ru_utime + usage.ru_stime:.3f}", file=sys.stderr)
"""


class _StatsLine(logging.Handler):
    """Catches the plugin's closing stderr line, which the worker logs."""

    def __init__(self) -> None:
        super().__init__()
        self.line = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "plugin-stats" in message:
            self.line = message.split("plugin-stats ", 1)[1]


async def one_run(
    root: Path, jobs: int, aggregates: int, concurrency: int, ack: bool
) -> tuple[RunResult, str]:
    script = root / "bench_plugin.py"
    script.write_text(f"#!{sys.executable}\n{PLUGIN}")
    script.chmod(0o755)
    definition = PluginDefinition(
        name="proc",
        config=ProcessConfig(name="proc", version="0.1.0", ack=ack),
        concurrency=concurrency,
    )
    fill_queue(root / "queue.db", definition, jobs, aggregates)
    worker = ProcessWorker(
        WorkerSpec(
            name="proc",
            plugin_id="proc",
            version="0.1.0",
            target="bench",
            binary_path=str(script),
            ack=ack,
        )
    )
    stats = _StatsLine()
    logging.getLogger("eventdbx.plugin").addHandler(stats)
    logging.getLogger("eventdbx.plugin").setLevel(logging.INFO)
    supervise = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.running.wait(), 30)
    settings = load_settings(root / "config.toml")
    result = await dispatch_all(
        settings,
        root / "queue.db",
        definition,
        jobs,
        sink_factory=lambda d: ProcessSink(d.name, lambda: worker),
        is_runnable=lambda d: worker.running.is_set(),
    )
    await worker.stop()
    await supervise
    logging.getLogger("eventdbx.plugin").removeHandler(stats)
    return result, stats.line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--aggregates", type=int, default=1000)
    parser.add_argument("--modes", default="noack,ack")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        results, plugin_cpu = [], []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                result, line = _run(
                    one_run(Path(tmp), args.jobs, args.aggregates, args.concurrency, mode == "ack")
                )
            fields = dict(item.split("=") for item in line.split())
            assert int(fields["events"]) == args.jobs, f"plugin saw {line!r}"
            results.append(result)
            plugin_cpu.append(1000 * float(fields["cpu"]) / args.jobs)
        report(f"process {mode}", results)
        print(
            f"  plugin process CPU: median {statistics.median(plugin_cpu):.3f} ms/event (includes its start-up)"
        )


if __name__ == "__main__":
    main()
