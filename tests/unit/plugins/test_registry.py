"""plugins.json: defaults, kinds, labels, duplicates, legacy import, atomic 0600 saves, reload."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from eventdbx.domain.payload_mode import Ordering, PayloadMode
from eventdbx.errors import ConfigError
from eventdbx.plugins.registry import (
    CapnpConfig,
    HttpConfig,
    LogConfig,
    PluginDefinition,
    PluginRegistry,
    ProcessConfig,
    TcpConfig,
    find_plugin,
    import_legacy_plugins,
    load_plugins,
    save_plugins,
)

SPEC_EXAMPLE = [
    {"enabled": True, "emit_events": True, "name": "hook", "payload_mode": "event-only", "ordering": "aggregate",
     "concurrency": 8, "config": {"type": "http", "endpoint": "https://example.com/hook",
                                  "headers": {"X-Test": "ok"}, "https": False, "secret": None, "timeout_secs": 5}},
    {"enabled": True, "emit_events": True, "name": "search", "payload_mode": "all", "ordering": "none",
     "concurrency": 8, "config": {"type": "process", "name": "search", "version": "1.2.3", "args": [], "env": {},
                                  "working_dir": None, "ack": False, "timeout_secs": 5}},
]


def test_spec_example_round_trips_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "plugins.json"
    text = json.dumps(SPEC_EXAMPLE, indent=2) + "\n"
    path.write_text(text)
    defs = load_plugins(path)
    assert [d.label for d in defs] == ["http (hook)", "process (search)"]
    assert isinstance(defs[1].config, ProcessConfig) and defs[1].ordering is Ordering.NONE
    save_plugins(path, defs)
    assert path.read_text() == text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_defaults_null_name_and_other_kinds() -> None:
    d = PluginDefinition.from_dict({"name": None, "config": {"type": "tcp", "host": "h", "port": 9000}})
    assert (d.name, d.enabled, d.emit_events, d.payload_mode, d.ordering, d.concurrency) == (
        "tcp", True, True, PayloadMode.ALL, Ordering.AGGREGATE, 8)
    assert d.config == TcpConfig(host="h", port=9000)
    assert d.to_dict()["config"] == {"type": "tcp", "host": "h", "port": 9000, "ack": False, "timeout_secs": 5}
    c = PluginDefinition.from_dict({"name": "c", "config": {"type": "capnp", "host": "h", "port": 1, "ack": True}})
    assert isinstance(c.config, CapnpConfig) and c.label == "capnp (c)"
    log = PluginDefinition.from_dict(
        {"name": "audit", "config": {"type": "log", "level": "debug", "template": "[{aggregate}] {event}"}})
    assert log.config == LogConfig(level="debug", template="[{aggregate}] {event}")
    assert PluginDefinition.from_dict({"name": "x", "config": {"http": {"endpoint": "e"}}}).config == HttpConfig(
        endpoint="e")


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": " ", "config": {"type": "log"}}, "plugin name cannot be empty"),
    ({"name": "a", "concurrency": 0, "config": {"type": "log"}}, "concurrency must be between 1 and 256"),
    ({"name": "a", "config": {"type": "smtp"}}, "unsupported plugin type 'smtp'"),
    ({"name": "a", "payload_mode": "most", "config": {"type": "log"}}, "invalid payload mode 'most'"),
    ({"name": "a", "config": {"type": "tcp", "host": "h", "port": 1, "timeout_secs": 0}},
     "timeout must be greater than 0"),
])
def test_invalid_entries(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PluginDefinition.from_dict(entry)


def test_duplicates_warn_keep_last_and_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "plugins.json"
    first = {"name": "hook", "config": {"type": "log"}}
    second = {"name": "hook", "enabled": False, "config": {"type": "http", "endpoint": "e"}}
    path.write_text(json.dumps([first, {"name": "b", "config": {"type": "log"}}, second]))
    warnings: list[str] = []
    defs = load_plugins(path, warn=warnings.append)
    assert warnings == ["warning: plugins.json defines 'hook' more than once; keeping the last definition"]
    assert [(d.name, d.kind) for d in defs] == [("b", "log"), ("hook", "http")]
    assert [e["name"] for e in json.loads(path.read_text())] == ["b", "hook"]
    assert load_plugins(path, warn=warnings.append) == defs and len(warnings) == 1


def test_two_unnamed_of_one_kind_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plugins.json"
    path.write_text(json.dumps([{"name": None, "config": {"type": "log"}}] * 2))
    with pytest.raises(ConfigError, match="more than one unnamed log plugin"):
        load_plugins(path)


def test_missing_empty_and_broken_files(tmp_path: Path) -> None:
    path = tmp_path / "plugins.json"
    assert load_plugins(path) == []
    path.write_text("  \n")
    assert load_plugins(path) == []
    path.write_text("{")
    with pytest.raises(ConfigError, match="invalid plugins.json"):
        load_plugins(path)


def test_legacy_import_only_into_a_missing_or_empty_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('port = 7070\n[[plugins]]\nname = "audit"\nenabled = false\n'
                      '[plugins.config]\ntype = "log"\nlevel = "info"\n')
    path = tmp_path / "plugins.json"
    assert import_legacy_plugins(config, path) == 1
    [d] = load_plugins(path)
    assert (d.name, d.enabled, d.kind) == ("audit", False, "log")
    assert import_legacy_plugins(config, path) == 0


def test_find_by_name_or_label() -> None:
    defs = [PluginDefinition.from_dict(e) for e in SPEC_EXAMPLE]
    assert find_plugin(defs, "hook") is defs[0]
    assert find_plugin(defs, "process (search)") is defs[1]
    assert find_plugin(defs, "ghost") is None


def test_registry_reloads_on_change_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "plugins.json"
    warnings: list[str] = []
    registry = PluginRegistry(path, warn=warnings.append)
    assert registry.current() == [] and registry.healthy
    save_plugins(path, [PluginDefinition.from_dict(SPEC_EXAMPLE[0])])
    assert [d.name for d in registry.current()] == ["hook"]
    assert not registry.reload_if_changed()
    path.write_text("[{")
    assert [d.name for d in registry.current()] == ["hook"] and not registry.healthy
    assert len(warnings) == 1
    save_plugins(path, [])
    assert registry.current() == [] and registry.healthy


def test_reference_written_file_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "plugins.json"
    path.write_text(json.dumps([
        {"enabled": True, "emit_events": True, "name": None, "payload_mode": "extensions-only",
         "config": {"type": "log", "level": "debug", "template": None, "detail": "full"}},
        {"enabled": False, "name": "search",
         "config": {"type": "process", "name": "search", "version": "1.2.3", "args": ["--x"], "env": {"A": "1"},
                    "working_dir": "/srv"}},
        {"enabled": True, "name": "sink", "config": {"type": "tcp", "host": "127.0.0.1", "port": 9000}},
    ]))
    log, search, sink = load_plugins(path)
    assert (log.name, log.payload_mode, log.config) == ("log", PayloadMode.EXTENSIONS_ONLY, LogConfig(level="debug"))
    assert search.config == ProcessConfig(name="search", version="1.2.3", args=("--x",), env={"A": "1"},
                                          working_dir="/srv")
    assert (search.enabled, search.emit_events, search.concurrency) == (False, True, 8)
    assert sink.config == TcpConfig(host="127.0.0.1", port=9000) and sink.label == "tcp (sink)"
