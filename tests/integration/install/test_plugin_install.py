"""`plugin install`: bundles, checksums, safe extraction, registry.json (plugins.md §8.5)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventdbx.errors import PluginError
from eventdbx.plugins.install import (
    InstallRequest,
    current_target,
    install_plugin,
    load_registry,
    resolve_installed,
)

SCRIPT = b"#!/bin/sh\necho hi\n"


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_tar_bundle_with_checksum_installs_executable(tmp_path: Path) -> None:
    bundle = _tar(tmp_path / "search.tar.gz", {"bin/dbx_search": SCRIPT, "README": b"x"})
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    plugins = tmp_path / "plugins"
    entry = install_plugin(
        plugins,
        InstallRequest(name="search", version="1.2.3", source=str(bundle), checksum=digest.upper()),
    )
    binary = Path(entry.binary_path)
    assert binary.name == "dbx_search"
    assert binary.parent.parent == plugins / "search" / "1.2.3" / current_target()
    assert os.access(binary, os.X_OK)
    assert entry.source == {"type": "local", "path": str(bundle.resolve())}
    registry = json.loads((plugins / "registry.json").read_text())
    assert [e["name"] for e in registry] == ["search"]
    assert list(registry[0]) == [
        "name",
        "version",
        "target",
        "install_dir",
        "binary_path",
        "source",
        "checksum",
        "installed_at",
    ]


def test_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    bundle = _tar(tmp_path / "a.tgz", {"a": SCRIPT})
    plugins = tmp_path / "plugins"
    with pytest.raises(
        PluginError, match=r"^checksum mismatch: expected abc, computed [0-9a-f]{64}$"
    ):
        install_plugin(
            plugins, InstallRequest(name="a", version="1", source=str(bundle), checksum="abc")
        )
    assert not (plugins / "a").exists()
    assert [p.name for p in plugins.iterdir()] == []


@pytest.mark.parametrize("member", ["../evil", "/abs/evil"])
def test_path_traversal_is_refused(tmp_path: Path, member: str) -> None:
    bundle = _tar(tmp_path / "bad.tar.gz", {member: SCRIPT})
    with pytest.raises(PluginError, match="unsafe path"):
        install_plugin(
            tmp_path / "plugins", InstallRequest(name="bad", version="1", source=str(bundle))
        )
    assert not (tmp_path / "evil").exists()


def test_escaping_symlink_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "link.tar.gz"
    with tarfile.open(bundle, "w:gz") as archive:
        info = tarfile.TarInfo("esc")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../etc/passwd"
        archive.addfile(info)
    with pytest.raises(PluginError, match="points outside"):
        install_plugin(
            tmp_path / "plugins", InstallRequest(name="link", version="1", source=str(bundle))
        )


def test_zip_with_several_files_needs_bin_or_a_known_name(tmp_path: Path) -> None:
    bundle = _zip(tmp_path / "multi.zip", {"one": SCRIPT, "two": SCRIPT})
    with pytest.raises(
        PluginError,
        match=r"^plugin bundle contains multiple files; specify --bin <filename>\. candidates: one, two$",
    ):
        install_plugin(
            tmp_path / "plugins", InstallRequest(name="multi", version="1", source=str(bundle))
        )
    entry = install_plugin(
        tmp_path / "plugins",
        InstallRequest(name="multi", version="1", source=str(bundle), binary="two"),
    )
    assert Path(entry.binary_path).name == "two"
    with pytest.raises(
        PluginError,
        match="could not find binary 'nope' in plugin bundle; available files: one, two",
    ):
        install_plugin(
            tmp_path / "plugins",
            InstallRequest(name="multi", version="2", source=str(bundle), binary="nope"),
        )


def test_raw_script_by_magic_and_existing_install_needs_force(tmp_path: Path) -> None:
    script = tmp_path / "orders.py"
    script.write_bytes(SCRIPT)
    plugins = tmp_path / "plugins"
    entry = install_plugin(
        plugins, InstallRequest(name="orders", version="0.1.0", source=f"file://{script}")
    )
    assert Path(entry.binary_path).read_bytes() == SCRIPT
    with pytest.raises(PluginError, match="is already installed; rerun with --force to overwrite"):
        install_plugin(plugins, InstallRequest(name="orders", version="0.1.0", source=str(script)))
    install_plugin(
        plugins, InstallRequest(name="orders", version="0.1.0", source=str(script), force=True)
    )
    install_plugin(plugins, InstallRequest(name="orders", version="0.10.0", source=str(script)))
    assert resolve_installed(plugins, "orders", None).version == "0.10.0"
    assert resolve_installed(plugins, "orders", "v0.1.0").version == "0.1.0"
    with pytest.raises(PluginError, match=r"^plugin 'search' version 1\.2\.3 is not installed$"):
        resolve_installed(plugins, "search", "1.2.3")
    assert [(e.name, e.version) for e in load_registry(plugins)] == [
        ("orders", "0.1.0"),
        ("orders", "0.10.0"),
    ]


def test_missing_source_and_version_messages(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"^plugin source is required; pass --source PATH\|URL$"):
        install_plugin(tmp_path, InstallRequest(name="x", version="1", source=None))
    with pytest.raises(
        PluginError,
        match=r"^plugin version must be specified when installing from a custom source$",
    ):
        install_plugin(tmp_path, InstallRequest(name="x", version=None, source="y"))
    with pytest.raises(PluginError, match="does not exist"):
        install_plugin(
            tmp_path, InstallRequest(name="x", version="1", source=str(tmp_path / "nope"))
        )


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_source_is_recorded_as_remote(tmp_path: Path, http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    _zip(root / "tool.zip", {"tool": SCRIPT})
    entry = install_plugin(
        tmp_path / "plugins",
        InstallRequest(name="tool", version="2.0.0", source=f"{base}/tool.zip"),
    )
    assert entry.source == {"type": "remote", "registry": f"{base}/tool.zip"}
    assert Path(entry.binary_path).read_bytes() == SCRIPT
