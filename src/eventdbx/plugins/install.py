"""`dbx plugin install`: fetch a bundle or binary, verify it, extract it safely, record it in registry.json."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import stat
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from eventdbx.domain.timefmt import format_ts
from eventdbx.errors import PluginError

DOWNLOAD_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledPlugin:
    """One entry of `<data_dir>/plugins/registry.json`."""

    name: str
    version: str
    target: str
    install_dir: str
    binary_path: str
    source: dict[str, str]
    checksum: str | None
    installed_at: str

    def to_dict(self) -> dict[str, Any]:
        """Registry key order."""
        return {
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "install_dir": self.install_dir,
            "binary_path": self.binary_path,
            "source": self.source,
            "checksum": self.checksum,
            "installed_at": self.installed_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstalledPlugin:
        """Read one registry entry."""
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            target=str(data["target"]),
            install_dir=str(data["install_dir"]),
            binary_path=str(data["binary_path"]),
            source=dict(data.get("source") or {}),
            checksum=data.get("checksum"),
            installed_at=str(data.get("installed_at", "")),
        )


def current_target() -> str:
    """`<os>-<arch>` of this machine, e.g. `linux-x86_64`."""
    system = {"darwin": "macos"}.get(platform.system().lower(), platform.system().lower())
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    return f"{system}-{machine}"


def registry_path(plugins_dir: Path) -> Path:
    """Where registry.json lives."""
    return plugins_dir / "registry.json"


def load_registry(plugins_dir: Path) -> list[InstalledPlugin]:
    """Installed plugins; an absent file is an empty registry."""
    path = registry_path(plugins_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise PluginError(f"cannot read plugin registry {path}: {exc}") from exc
    return [InstalledPlugin.from_dict(item) for item in data if isinstance(item, dict)]


def save_registry(plugins_dir: Path, entries: Sequence[InstalledPlugin]) -> None:
    """Write registry.json atomically, sorted by name, version and target."""
    plugins_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ordered = sorted(entries, key=lambda e: (e.name, e.version, e.target))
    tmp = registry_path(plugins_dir).with_suffix(".json.tmp")
    tmp.write_text(json.dumps([e.to_dict() for e in ordered], indent=2) + "\n")
    os.replace(tmp, registry_path(plugins_dir))


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallRequest:
    """What `dbx plugin install` was asked to do."""

    name: str
    version: str | None
    source: str | None
    binary: str | None = None
    checksum: str | None = None
    force: bool = False


def _fetch(source: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        name = PurePosixPath(parsed.path).name or "download"
        dest = workdir / name
        try:
            with (
                urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT) as resp,
                dest.open("wb") as out,
            ):
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            raise PluginError(f"failed to download plugin from {source}: {exc}") from exc
        return dest, {"type": "remote", "registry": source}
    local = Path(urllib.parse.unquote(parsed.path)) if parsed.scheme == "file" else Path(source)
    local = local.expanduser()
    if not local.is_file():
        raise PluginError(f"plugin source {source} does not exist")
    return local, {"type": "local", "path": str(local.resolve())}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _bundle_kind(path: Path) -> str:
    lower = path.name.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar"
    if lower.endswith(".zip"):
        return "zip"
    with path.open("rb") as handle:
        head = handle.read(4)
    if head[:2] == b"\x1f\x8b":
        return "tar"
    if head == b"PK\x03\x04":
        return "zip"
    return "raw"


def _safe_member(name: str) -> PurePosixPath:
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts or name.startswith("\\"):
        raise PluginError(f"plugin bundle contains an unsafe path '{name}'")
    return member


def _extract_tar(bundle: Path, dest: Path) -> None:
    try:
        with tarfile.open(bundle, "r:*") as archive:
            for member in archive.getmembers():
                _safe_member(member.name)
                if member.issym() or member.islnk():
                    target = PurePosixPath(member.name).parent / member.linkname
                    if (
                        PurePosixPath(member.linkname).is_absolute()
                        or ".." in PurePosixPath(os.path.normpath(str(target))).parts
                    ):
                        raise PluginError(
                            f"plugin bundle link '{member.name}' points outside the install dir"
                        )
                elif not (member.isfile() or member.isdir()):
                    raise PluginError(f"plugin bundle member '{member.name}' is not a regular file")
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise PluginError(f"cannot extract plugin bundle: {exc}") from exc


def _extract_zip(bundle: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(bundle) as archive:
            for info in archive.infolist():
                _safe_member(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise PluginError(f"plugin bundle link '{info.filename}' is not allowed")
            archive.extractall(dest)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PluginError(f"cannot extract plugin bundle: {exc}") from exc


def _candidates(name: str) -> list[str]:
    bases = [name, name.replace("-", "_")]
    prefixed = [f"{p}{b}" for p in ("dbx_", "dbx", "dbx-") for b in bases]
    out: list[str] = []
    for base in bases + prefixed:
        for candidate in (base, base + ".exe"):
            if candidate not in out:
                out.append(candidate)
    return out


def _choose_binary(root: Path, name: str, wanted: str | None) -> Path:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    if not files:
        raise PluginError("plugin bundle did not contain any files")
    rel = {str(p.relative_to(root)): p for p in files}
    if wanted is not None:
        for key, path in rel.items():
            if key == wanted or path.name == wanted:
                return path
        raise PluginError(
            f"could not find binary '{wanted}' in plugin bundle; available files: "
            + ", ".join(sorted(rel))
        )
    if len(files) == 1:
        return files[0]
    for candidate in _candidates(name):
        for path in files:
            if path.name == candidate:
                return path
    raise PluginError(
        "plugin bundle contains multiple files; specify --bin <filename>. candidates: "
        + ", ".join(sorted(rel))
    )


def _stage(bundle: Path, request: InstallRequest, staging: Path) -> Path:
    kind = _bundle_kind(bundle)
    if kind == "tar":
        _extract_tar(bundle, staging)
    elif kind == "zip":
        _extract_zip(bundle, staging)
    else:
        target_name = request.binary or request.name
        shutil.copyfile(bundle, staging / target_name)
    binary = _choose_binary(staging, request.name, request.binary)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def install_plugin(
    plugins_dir: Path, request: InstallRequest, *, now: datetime | None = None
) -> InstalledPlugin:
    """Install a plugin; a failure leaves nothing behind."""
    if not request.source:
        raise PluginError("plugin source is required; pass --source PATH|URL")
    if not request.version:
        raise PluginError("plugin version must be specified when installing from a custom source")
    target = current_target()
    install_dir = plugins_dir / request.name / request.version / target
    if install_dir.exists() and not request.force:
        raise PluginError(
            f"plugin '{request.name}' v{request.version} for target {target} is already "
            "installed; rerun with --force to overwrite"
        )
    plugins_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=plugins_dir, prefix=".install-") as tmp:
        work = Path(tmp)
        (work / "download").mkdir()
        bundle, source = _fetch(request.source, work / "download")
        checksum = _sha256(bundle)
        if request.checksum is not None and request.checksum.strip().lower() != checksum:
            raise PluginError(
                f"checksum mismatch: expected {request.checksum.strip()}, computed {checksum}"
            )
        staging = work / "staging"
        staging.mkdir()
        binary = _stage(bundle, request, staging)
        relative = binary.relative_to(staging)
        install_dir.parent.mkdir(parents=True, exist_ok=True)
        if install_dir.exists():
            shutil.rmtree(install_dir)
        os.replace(staging, install_dir)
    entry = InstalledPlugin(
        name=request.name,
        version=request.version,
        target=target,
        install_dir=str(install_dir),
        binary_path=str(install_dir / relative),
        source=source,
        checksum=checksum,
        installed_at=format_ts(now or datetime.now(tz=UTC)),
    )
    others = [
        e
        for e in load_registry(plugins_dir)
        if (e.name, e.version, e.target) != (entry.name, entry.version, entry.target)
    ]
    save_registry(plugins_dir, [*others, entry])
    return entry


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    text = version.strip().lstrip("vV")
    parts: list[tuple[int, int | str]] = []
    for piece in text.replace("-", ".").replace("+", ".").split("."):
        parts.append((1, int(piece)) if piece.isdigit() else (0, piece))
    return tuple(parts)


def resolve_installed(plugins_dir: Path, name: str, version: str | None) -> InstalledPlugin:
    """The installed entry for `name` (highest version when none is given) on this target."""
    target = current_target()
    entries = [e for e in load_registry(plugins_dir) if e.name == name]
    if version is not None:
        wanted = version.strip().lstrip("vV")
        matching = [e for e in entries if e.version.strip().lstrip("vV") == wanted]
        if not matching:
            raise PluginError(f"plugin '{name}' version {version} is not installed")
        for entry in matching:
            if entry.target == target:
                return entry
        versions = ", ".join(sorted({e.version for e in entries if e.target == target})) or "none"
        raise PluginError(
            f"plugin '{name}' version {version} is not installed for target {target}; "
            f"installed versions: {versions}"
        )
    on_target = [e for e in entries if e.target == target]
    if not on_target:
        raise PluginError(
            f"plugin '{name}' is not installed for target {target}; run `dbx plugin install` first"
        )
    return max(on_target, key=lambda e: _version_key(e.version))
