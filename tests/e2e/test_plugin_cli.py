"""`dbx plugin …` end to end through the real `dbx` (plugins.md §9, §10.1), without a daemon."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from plugin_support.receivers import free_port, http_receiver
from tests.conftest import DbxEnv

pytestmark = pytest.mark.timeout(300)


def _plugins_json(dbx: DbxEnv) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads((dbx.data_dir / "plugins.json").read_text())
    return data


def _install_process(dbx: DbxEnv, tmp_path: Path, name: str = "search") -> None:
    script = tmp_path / f"{name}.sh"
    script.write_text("#!/bin/sh\ncat >/dev/null\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    out = dbx.ok("plugin", "install", name, "1.2.3", "-s", str(script)).out
    assert out.startswith(f"installed plugin '{name}' v1.2.3 for ")


@pytest.mark.parametrize(
    ("args", "summary"),
    [
        (["plugin"], "Manage plugins"),
        (["plugin", "install"], "Install a plugin binary into the local registry"),
        (["plugin", "config"], "Configure plugins"),
        (["plugin", "config", "tcp"], "Configure the TCP plugin"),
        (["plugin", "config", "http"], "Configure the HTTP plugin"),
        (["plugin", "config", "log"], "Configure the logging plugin"),
        (
            ["plugin", "config", "process"],
            "Configure a subprocess plugin installed via the registry",
        ),
        (["plugin", "config", "capnp"], "Configure the Cap'n Proto plugin"),
        (["plugin", "enable"], "Enable a configured plugin"),
        (["plugin", "disable"], "Disable a configured plugin"),
        (["plugin", "remove"], "Remove a configured plugin"),
        (["plugin", "replay"], "Replay stored events through a plugin"),
        (["plugin", "test"], "Send a sample event to all enabled plugins"),
        (["plugin", "list"], "List enabled plugins"),
        (["plugin", "start"], "Start a managed process plugin worker"),
        (["plugin", "stop"], "Stop a managed process plugin worker"),
        (["plugin", "status"], "Show the status of a managed process plugin worker"),
    ],
)
def test_help_texts(dbx: DbxEnv, args: list[str], summary: str) -> None:
    assert summary in dbx.ok(*args, "--help").out


def test_config_http_disabled_and_list(dbx: DbxEnv) -> None:
    assert dbx.ok("plugin", "list").out == "(no plugins configured)\n"
    assert json.loads(dbx.ok("plugin", "list", "--json").out) == []
    res = dbx.ok(
        "plugin",
        "config",
        "http",
        "--name",
        "hook",
        "--endpoint",
        "https://example.com/hook",
        "--header",
        "X-Test=ok",
        "--payload",
        "event-only",
        "--disable",
    )
    assert res.out == "HTTP plugin 'hook' disabled\n"
    [entry] = _plugins_json(dbx)
    assert entry["enabled"] is False and entry["name"] == "hook"
    assert entry["payload_mode"] == "event-only"
    assert entry["config"] == {
        "type": "http",
        "endpoint": "https://example.com/hook",
        "headers": {"X-Test": "ok"},
        "https": False,
        "secret": None,
        "timeout_secs": 5,
    }
    assert list(entry) == [
        "enabled",
        "emit_events",
        "name",
        "payload_mode",
        "ordering",
        "concurrency",
        "config",
    ]
    assert oct((dbx.data_dir / "plugins.json").stat().st_mode & 0o777) == "0o600"
    listing = dbx.ok("plugin", "list").out
    assert listing == (
        "Configured plugins:\n  - http (hook) - disabled (enable with plugin enable hook)\n"
    )
    res = dbx.ok(
        "plugin",
        "config",
        "http",
        "--name",
        "hooks",
        "--endpoint",
        "example.com/h",
        "--header",
        " X-Test = ok ",
        "--secret",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    assert res.out == "HTTP plugin 'hooks' configured\n"
    assert (
        "  - http (hooks) - enabled (disable with plugin disable hooks)"
        in dbx.ok("plugin", "list").out.splitlines()
    )
    listed = json.loads(dbx.ok("plugin", "list", "--json").out)
    assert [d["name"] for d in listed] == ["hook", "hooks"]
    assert listed[1]["config"]["secret"] == "<redacted>"
    assert listed[1]["config"]["headers"] == {"X-Test": "ok"}
    assert "whsec_" in (dbx.data_dir / "plugins.json").read_text()


def test_config_tcp_capnp_log_shapes(dbx: DbxEnv) -> None:
    assert (
        dbx.ok(
            "plugin",
            "config",
            "tcp",
            "--name",
            "sink",
            "--host",
            "127.0.0.1",
            "--port",
            "6500",
            "--disable",
        ).out
        == "TCP plugin 'sink' disabled\n"
    )
    out = dbx.ok(
        "plugin",
        "config",
        "capnp",
        "--name",
        "cap",
        "--host",
        "localhost",
        "--port",
        "7000",
        "--ack",
        "--timeout",
        "2.5",
        "--ordering",
        "none",
        "--concurrency",
        "16",
    ).out
    assert out == "Cap'n Proto plugin 'cap' configured\n"
    assert (
        dbx.ok(
            "plugin",
            "config",
            "log",
            "--name",
            "audit",
            "--level",
            "DEBUG",
            "--template",
            "[{aggregate}] {event}",
        ).out
        == "Log plugin 'audit' configured\n"
    )
    sink, cap, audit = _plugins_json(dbx)
    assert sink["config"] == {
        "type": "tcp",
        "host": "127.0.0.1",
        "port": 6500,
        "ack": False,
        "timeout_secs": 5,
    }
    assert cap["config"] == {
        "type": "capnp",
        "host": "localhost",
        "port": 7000,
        "ack": True,
        "timeout_secs": 2.5,
    }
    assert (cap["ordering"], cap["concurrency"]) == ("none", 16)
    assert audit["config"] == {"type": "log", "level": "debug", "template": "[{aggregate}] {event}"}


def test_reconfigure_same_kind_keeps_unflagged_settings(dbx: DbxEnv) -> None:
    dbx.ok(
        "plugin",
        "config",
        "tcp",
        "--name",
        "sink",
        "--host",
        "h",
        "--port",
        "1",
        "--payload",
        "state-only",
        "--ordering",
        "none",
        "--concurrency",
        "3",
    )
    dbx.ok("plugin", "config", "tcp", "--name", "sink", "--host", "h2", "--port", "2", "--ack")
    [entry] = _plugins_json(dbx)
    assert (entry["payload_mode"], entry["ordering"], entry["concurrency"]) == (
        "state-only",
        "none",
        3,
    )
    assert entry["config"] == {
        "type": "tcp",
        "host": "h2",
        "port": 2,
        "ack": True,
        "timeout_secs": 5,
    }
    err = dbx.fail("plugin", "config", "log", "--name", "sink").err
    assert err.strip() == "Error: plugin name 'sink' is already used by tcp"


def test_enable_disable_remove_and_backlog(dbx: DbxEnv) -> None:
    assert (
        dbx.fail("plugin", "enable", "ghost").err.strip()
        == "Error: no plugin named 'ghost' is configured"
    )
    for verb in ("disable", "remove"):
        assert "no plugin named 'ghost' is configured" in dbx.fail("plugin", verb, "ghost").err
    dbx.ok("plugin", "config", "log", "--name", "hook")
    dbx.ok("aggregate", "apply", "order", "o-1", "order_created", "--field", "a=1")
    assert dbx.ok("plugin", "disable", "hook").out == "Plugin 'hook' disabled\n"
    assert dbx.ok("plugin", "disable", "hook").out == "Plugin 'hook' is already disabled\n"
    dbx.ok("aggregate", "apply", "order", "o-1", "order_updated", "--field", "a=2")
    dbx.ok("aggregate", "apply", "order", "o-1", "order_updated", "--field", "a=3")
    assert "state=paused unqueued=2" in dbx.ok("queue").out
    res = dbx.ok("plugin", "enable", "hook")
    assert res.out == (
        "Plugin 'hook' enabled\nqueued backlog: 2 event(s) appended while 'hook' was disabled\n"
    )
    assert dbx.ok("queue").out.startswith("pending=3 ")
    assert dbx.ok("plugin", "enable", "hook").out == "Plugin 'hook' is already enabled\n"
    dbx.ok("plugin", "disable", "hook")
    dbx.ok("aggregate", "apply", "order", "o-1", "order_updated", "--field", "a=4")
    res = dbx.ok("plugin", "enable", "hook", "--skip-backlog")
    assert res.out == (
        "Plugin 'hook' enabled\nskipped 1 event(s) appended while 'hook' was disabled\n"
    )
    assert dbx.ok("queue").out.startswith("pending=3 ")
    err = dbx.fail("plugin", "remove", "hook").err.strip()
    assert err == (
        "Error: disable plugin 'hook' before removing it "
        "(use plugin disable hook or pass --disable)"
    )
    res = dbx.ok("plugin", "remove", "hook", "--disable")
    assert res.out == (
        "Plugin 'hook' disabled\npurged 3 queued job(s) for 'hook'\nPlugin 'hook' removed\n"
    )
    assert dbx.ok("queue").out == "pending=0 processing=0 done=0 dead=0\n"
    assert dbx.ok("plugin", "list").out == "(no plugins configured)\n"


def test_enable_runs_the_readiness_check(dbx: DbxEnv) -> None:
    port = free_port()
    dbx.ok(
        "plugin",
        "config",
        "tcp",
        "--name",
        "sink",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable",
    )
    err = dbx.fail("plugin", "enable", "sink").err
    assert err.startswith("Error: failed to establish connection for 'sink': tcp plugin connect to")
    assert len(err.strip().splitlines()) == 1
    assert dbx.ok("plugin", "enable", "sink", "--no-check").out == "Plugin 'sink' enabled\n"
    with http_receiver(head_status=405) as receiver:
        dbx.ok(
            "plugin",
            "config",
            "http",
            "--name",
            "hook",
            "--disable",
            "--endpoint",
            f"127.0.0.1:{receiver.port}/h",
            "--header",
            "X-Test=ok",
        )
        assert dbx.ok("plugin", "enable", "hook").out == "Plugin 'hook' enabled\n"
        assert receiver.requests[0].method == "HEAD"
        assert receiver.requests[0].headers["X-Test"] == "ok"
    with http_receiver(head_status=404) as receiver:
        dbx.ok(
            "plugin",
            "config",
            "http",
            "--name",
            "hook",
            "--disable",
            "--endpoint",
            f"http://127.0.0.1:{receiver.port}/h",
        )
        err = dbx.fail("plugin", "enable", "hook").err.strip()
        assert err == (
            "Error: failed to establish connection for 'hook': "
            "http plugin readiness check failed (404 Not Found)"
        )


def test_replay(dbx: DbxEnv) -> None:
    dbx.ok("plugin", "config", "log", "--name", "audit", "--payload", "event-only")
    for agg_id in ("p-1", "p-2"):
        dbx.ok("aggregate", "apply", "patient", agg_id, "patient_created", "--field", "s=a")
    dbx.ok("aggregate", "apply", "patient", "p-1", "patient_updated", "--field", "s=b")
    assert (
        dbx.ok("plugin", "replay", "audit", "patient", "--dry-run").out
        == "would queue 3 replay job(s) for 2 aggregate(s) of 'patient' to 'audit'\n"
    )
    assert (
        dbx.ok("plugin", "replay", "audit", "patient").out
        == "queued 3 replay job(s) for 2 aggregate(s) of 'patient'\n"
    )
    assert (
        dbx.ok("plugin", "replay", "audit", "patient", "p-1").out
        == "queued 2 replay job(s) for patient::p-1\n"
    )
    assert dbx.ok("plugin", "replay", "audit", "nurse").out == "no aggregates found for 'nurse'\n"
    assert (
        dbx.ok("plugin", "replay", "audit", "patient", "p-9").out
        == "no events found for patient::p-9\n"
    )
    doc = json.loads(dbx.ok("queue", "--json").out)
    replays = [j for j in doc["jobs"] if j["replay"]]
    assert len(replays) == 5 and doc["counts"]["pending"] == 8
    assert all(set(j["payload"]) == {"event"} for j in replays)
    err = dbx.fail("plugin", "replay", "ghost", "patient").err.strip()
    assert err == "Error: no enabled plugin named 'ghost' is configured"
    dbx.ok("plugin", "disable", "audit")
    assert "no enabled plugin named 'audit'" in dbx.fail("plugin", "replay", "audit", "patient").err


@pytest.mark.slow
def test_replay_prompts_over_1000_jobs(dbx: DbxEnv) -> None:
    from eventdbx.config import load_settings
    from eventdbx.service import AppendRequest, EventService

    dbx.ok("plugin", "config", "log", "--name", "audit")
    settings = load_settings(dbx.data_dir / "config.toml")
    service = EventService.open(settings)
    try:
        service.append(
            AppendRequest(
                aggregate_type="bulk",
                aggregate_id="b-1",
                event_type="bulk_created",
                payload_json='{"n":0}',
            )
        )
        for n in range(1, 1001):
            service.append(
                AppendRequest(
                    aggregate_type="bulk",
                    aggregate_id="b-1",
                    event_type="bulk_updated",
                    payload_json=f'{{"n":{n}}}',
                )
            )
    finally:
        service.close()
    prompt = "This will enqueue 1001 replay job(s) for 'audit'. Type 'replay' to confirm: "
    res = dbx.ok("plugin", "replay", "audit", "bulk", input="no\n")
    assert res.out.startswith(prompt) and res.out.rstrip().endswith("replay cancelled")
    res = dbx.ok("plugin", "replay", "audit", "bulk", "b-1", input="replay\n")
    assert res.out.rstrip().endswith("queued 1001 replay job(s) for bulk::b-1")
    res = dbx.ok("plugin", "replay", "audit", "bulk", "--yes")
    assert res.out == "queued 1001 replay job(s) for 1 aggregate(s) of 'bulk'\n"


def test_process_workers_without_a_daemon(dbx: DbxEnv, tmp_path: Path) -> None:
    assert dbx.ok("plugin", "status").out == "(no process plugins configured)\n"
    _install_process(dbx, tmp_path)
    err = dbx.fail("plugin", "config", "process", "search", "--version", "9.9.9").err.strip()
    assert err == "Error: plugin 'search' version 9.9.9 is not installed"
    out = dbx.ok(
        "plugin", "config", "process", "search", "--payload", "all", "--emit-events", "false"
    )
    assert out.out == "Process plugin 'search' configured\n"
    [entry] = _plugins_json(dbx)
    assert entry["emit_events"] is False
    assert entry["config"] == {
        "type": "process",
        "name": "search",
        "version": "1.2.3",
        "args": [],
        "env": {},
        "working_dir": None,
        "ack": False,
        "timeout_secs": 5,
    }
    err = dbx.fail("plugin", "start", "search").err.strip()
    assert err == (
        "Error: the daemon is not running; process plugins run under the daemon "
        "(start it with dbx start)"
    )
    assert "no process plugin named 'nope' is configured" in dbx.fail("plugin", "start", "nope").err
    assert (
        dbx.ok("plugin", "stop", "search").out == "Process plugin 'search' worker is not running\n"
    )
    status = dbx.ok("plugin", "status", "search").out.splitlines()
    assert status[:3] == ["Process plugin: search", "  enabled: true", "  emit events: false"]
    assert status[3] == "  status: stopped by operator"
    assert status[-1] == "  supervisor: daemon not running"
    assert status[-2].startswith("  runtime pid file: ") and status[-2].endswith("search.pid")
    listing = dbx.ok("plugin", "list").out
    assert listing.startswith("Installed plugins:\n  - search 1.2.3 (")
    assert (
        "  - process (search) - enabled (disable with plugin disable search); event delivery disabled"
        in listing
    )
    [listed] = json.loads(dbx.ok("plugin", "list", "--json").out)
    assert listed["runtime"] == {"state": "stopped"}
    dbx.ok("plugin", "disable", "search")
    assert "enable it before starting the worker" in dbx.fail("plugin", "start", "search").err


def test_seed_config_payload_examples(dbx: DbxEnv, tmp_path: Path) -> None:
    """`dbx plugin config … --payload <mode>` for every mode; the jobs carry those parts."""
    modes = {
        "all": {"event", "state"},
        "event-only": {"event"},
        "state-only": {"state"},
        "schema-only": set(),
        "event-and-schema": {"event"},
        "extensions-only": {"event"},
    }
    for mode in modes:
        dbx.ok("plugin", "config", "log", "--name", f"m-{mode}", "--payload", mode)
    metadata = '{"@trace_id":"abc123"}'
    dbx.ok(
        "aggregate",
        "apply",
        "order",
        "o-1",
        "order_created",
        "--field",
        "status=created",
        "--metadata",
        metadata,
    )
    jobs = json.loads(dbx.ok("queue", "--json").out)["jobs"]
    by_plugin = {j["plugin_name"]: j for j in jobs}
    for mode, parts in modes.items():
        if mode == "schema-only":
            continue  # no schema: written as done/empty, not listed by default
        assert set(by_plugin[f"m-{mode}"]["payload"]) == parts, mode
    ext = by_plugin["m-extensions-only"]["payload"]["event"]
    assert ext["payload"] is None and ext["aggregate_id"] == "o-1"
    assert ext["extensions"] == {"@trace_id": "abc123"}
    done = json.loads(dbx.ok("queue", "--status", "done", "--json").out)["jobs"]
    assert [(j["plugin_name"], j["resolution"]) for j in done] == [("m-schema-only", "empty")]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["config", "http", "--name", " ", "--endpoint", "x.com"],
            1,
            "Error: plugin name cannot be empty",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "http://"],
            1,
            "Error: invalid endpoint 'http://'",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "a b"],
            1,
            "Error: invalid endpoint 'a b'",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "x.com", "--header", "X"],
            2,
            "error: missing value",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "x.com", "--header", " =v"],
            2,
            "error: header key cannot be empty",
        ),
        (
            [
                "config",
                "http",
                "--name",
                "a",
                "--endpoint",
                "x.com",
                "--header",
                "x-eventdbx-attempt=1",
            ],
            1,
            "Error: header 'x-eventdbx-attempt' is set by EventDBX and cannot be configured",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "x.com", "--timeout", "0"],
            1,
            "Error: timeout must be greater than 0",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "x.com", "--timeout", "nan"],
            1,
            "Error: timeout must be greater than 0",
        ),
        (
            ["config", "http", "--name", "a", "--endpoint", "x.com", "--timeout", "soon"],
            2,
            "error: invalid value",
        ),
        (
            ["config", "tcp", "--name", "a", "--host", "h", "--port", "1", "--concurrency", "0"],
            1,
            "Error: concurrency must be between 1 and 256",
        ),
        (
            ["config", "tcp", "--name", "a", "--host", "h", "--port", "1", "--concurrency", "257"],
            1,
            "Error: concurrency must be between 1 and 256",
        ),
        (["config", "tcp", "--name", "a", "--host", "h", "--port", "x"], 2, "error: invalid value"),
        (
            ["config", "tcp", "--name", "a", "--host", "h"],
            2,
            "error: the following required arguments were not provided",
        ),
        (
            ["config", "tcp", "--name", "a", "--host", "h", "--port", "1", "--payload", "most"],
            2,
            "error: invalid value",
        ),
        (
            ["config", "tcp", "--name", "a", "--host", "h", "--port", "1", "--ordering", "x"],
            2,
            "error: invalid value",
        ),
        (
            ["config", "log", "--name", "a", "--level", "loud"],
            1,
            "Error: unsupported log level 'loud'",
        ),
        (["config", "process"], 1, "Error: plugin identifier is required"),
        (
            ["config", "process", "a", "--plugin", "b"],
            1,
            "Error: conflicting plugin identifiers provided (flag vs positional)",
        ),
        (["config", "process", "a", "--env", "K"], 2, "error: missing value"),
        (["config", "process", "a", "--env", "=v"], 2, "error: header key cannot be empty"),
        (["config", "process", "a", "--emit-events", "maybe"], 2, "error: invalid value"),
        (["config", "process", "a"], 1, "is not installed for target"),
        (["config", "ftp"], 2, "error: unrecognized subcommand 'ftp'"),
        (["enable", "ghost"], 1, "Error: no plugin named 'ghost' is configured"),
        (["enable"], 2, "error: the following required arguments were not provided"),
        (["test", "ghost"], 1, "Error: no plugin named 'ghost' is configured"),
        (["replay", "ghost"], 2, "error: the following required arguments were not provided"),
        (["install", "x"], 1, "Error: plugin source is required; pass --source PATH|URL"),
        (["install", "x", "-s", "/nonexistent"], 1, "Error: plugin version must be specified"),
        (["status", "ghost"], 1, "Error: no process plugin named 'ghost' is configured"),
        (["stop", "ghost"], 1, "Error: no process plugin named 'ghost' is configured"),
        (["bogus"], 2, "error: unrecognized subcommand 'bogus'"),
    ],
)
def test_bad_input_is_one_clear_line(dbx: DbxEnv, args: list[str], code: int, message: str) -> None:
    res = dbx.fail("plugin", *args, code=code, input="")
    first = res.err.splitlines()[0]
    assert message in first, res.err
    if code == 1:
        assert len(res.err.strip().splitlines()) == 1, res.err
    assert res.out == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "x"], 2, "error: invalid job id 'x'"),
        (["show", "99999999999999999999999"], 2, "error: invalid job id"),
        (["show", "12"], 1, "Error: job 12 not found"),
        (["skip", "12"], 1, "Error: job 12 not found"),
        (["skip"], 2, "error: the following required arguments were not provided"),
        (["retry", "--event-id", "x"], 2, "error: invalid job id 'x'"),
        (["--status", "late"], 2, "error: invalid value"),
        (["--limit", "-1"], 2, "error: invalid value"),
        (["clear-done", "--older-than-hours", "-1"], 2, "error: invalid value"),
        (["clear-done", "--older-than-hours", "x"], 2, "error: invalid value"),
        (["purge"], 2, "error: unrecognized subcommand 'purge'"),
    ],
)
def test_bad_queue_input_is_one_clear_line(
    dbx: DbxEnv, args: list[str], code: int, message: str
) -> None:
    res = dbx.fail("queue", *args, code=code, input="")
    assert message in res.err.splitlines()[0], res.err
    assert res.out == ""
