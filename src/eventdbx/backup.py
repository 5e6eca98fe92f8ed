"""Backup archives (cli.md §7): a gzip tar of `manifest.json` plus `data/`, and restoring one into a data dir.

Databases are copied through `store.backup_copy` (SQLite backup API) so a running daemon is fine; pid and lock
files, logs and `-wal`/`-shm` files are left out. Prints nothing: the CLI renders the results.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from eventdbx.errors import CommandError, IoError

if TYPE_CHECKING:
    from eventdbx.config import Settings

MANIFEST = "manifest.json"
DATA_PREFIX = "data"
MANIFEST_VERSION = 1
_SKIPPED_NAMES = frozenset({"eventdbx.pid", "eventdbx.lock"})
_SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreResult:
    """Where a restore put the data and the config."""

    data_dir: Path
    config_path: Path


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _now() -> str:
    from eventdbx.domain.timefmt import format_epoch

    return format_epoch(time.time(), suffix="+00:00")


def _read_config(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _manifest(settings: Settings) -> bytes:
    doc = {
        "version": MANIFEST_VERSION,
        "created_at": _now(),
        "config": _read_config(settings.config_path),
        "config_path": str(settings.config_path),
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n").encode()


def _data_files(settings: Settings) -> Iterator[Path]:
    """Every file and directory of the data dir worth keeping, parents first, sorted."""
    root = settings.data_dir
    skipped_dirs = {settings.paths.logs_dir.resolve()}
    for current, dirs, files in os.walk(root):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skipped_dirs)
        for name in dirs:
            yield here / name
        for name in sorted(files):
            if name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES):
                continue
            yield here / name


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_data(tar: tarfile.TarFile, settings: Settings, scratch: Path) -> None:
    from eventdbx.store.backup_copy import copy_database, is_sqlite_file

    root = settings.data_dir
    info = tar.gettarinfo(str(root), arcname=DATA_PREFIX)
    tar.addfile(info)
    for index, path in enumerate(_data_files(settings)):
        arcname = f"{DATA_PREFIX}/{path.relative_to(root).as_posix()}"
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            continue
        if path.is_file() and is_sqlite_file(path):
            copy = scratch / f"{index}.db"
            copy_database(path, copy)
            info = tar.gettarinfo(str(copy), arcname=arcname)
            info.mode = path.stat().st_mode & 0o777
            with copy.open("rb") as handle:
                tar.addfile(info, handle)
            copy.unlink()
        else:
            tar.add(str(path), arcname=arcname, recursive=False)


def create_backup(settings: Settings, output: Path, *, force: bool) -> Path:
    """Write the backup archive of `settings.data_dir` to `output` (0600); returns the path written."""
    data_dir = settings.data_dir
    if _inside(output, data_dir):
        raise CommandError(
            f"backup output path {output} resides inside the data directory {data_dir}; "
            "choose a different location"
        )
    if (output.exists() or output.is_symlink()) and not force:
        raise CommandError(f"backup target {output} already exists (use --force to overwrite)")
    if not data_dir.is_dir():
        raise CommandError(f"data directory {data_dir} does not exist")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    except OSError as exc:
        raise IoError(f"cannot write {output}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, _manifest(settings))
            with tempfile.TemporaryDirectory(prefix="eventdbx-backup-") as scratch:
                _add_data(tar, settings, Path(scratch))
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(output, 0o600)
    return output


# -- restore ------------------------------------------------------------------------------------------------


def _open_archive(archive: Path) -> tarfile.TarFile:
    if not archive.exists():
        raise CommandError(f"backup archive {archive} does not exist")
    if not archive.is_file():
        raise CommandError(f"backup archive {archive} is not a file")
    try:
        return tarfile.open(archive, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CommandError(f"backup archive {archive} is not a gzip tar archive") from exc


def _read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise CommandError("backup archive does not contain a manifest.json") from None
    handle = tar.extractfile(member)
    if handle is None:
        raise CommandError("backup archive does not contain a manifest.json")
    try:
        doc = json.loads(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandError(f"backup manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CommandError("backup manifest is not valid JSON: expected an object")
    return doc


def _data_members(tar: tarfile.TarFile) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    """Members under `data/` with their safe relative paths (no absolute paths, no `..`)."""
    found = False
    members: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if not path.parts or path.parts[0] != DATA_PREFIX:
            continue
        found = True
        rel = PurePosixPath(*path.parts[1:])
        if path.is_absolute() or ".." in rel.parts or not rel.parts:
            continue
        if member.isdir() or member.isfile():
            members.append((member, rel))
    if not found:
        raise CommandError("backup archive is missing the data directory")
    return members


def _check_target(data_dir: Path, *, force: bool) -> None:
    from eventdbx.pidfile import process_alive, read_pid_file

    info = read_pid_file(data_dir / "eventdbx.pid")
    if info is not None and process_alive(info.pid):
        raise CommandError(
            f"EventDBX server appears to be running (pid {info.pid}); stop it before continuing"
        )
    if data_dir.exists() and not data_dir.is_dir():
        raise CommandError(f"data directory {data_dir} is not a directory")
    if data_dir.is_dir() and any(data_dir.iterdir()) and not force:
        raise CommandError(f"data directory {data_dir} is not empty (use --force to overwrite)")


def _clear(data_dir: Path) -> None:
    for entry in data_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _extract(tar: tarfile.TarFile, members: list[tuple[tarfile.TarInfo, PurePosixPath]],
             data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    for member, rel in members:
        target = data_dir.joinpath(*rel.parts)
        if member.isdir():
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
            continue
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is None:
            continue
        mode = (member.mode & 0o700) or 0o600
        fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(source, handle)
        os.chmod(target, mode)


def _toml_config(config: Mapping[str, Any], data_dir: Path) -> str:
    import tomlkit

    doc = dict(config)
    doc["data_dir"] = str(data_dir)
    return tomlkit.dumps(doc)


def _write_config(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp_name, 0o600)
    os.replace(tmp_name, path)


def restore_backup(
    archive: Path, *, config_path: Path, data_dir: Path | None, force: bool
) -> RestoreResult:
    """Unpack `archive` into the data dir (`data_dir` or the one in its manifest) and write its config."""
    try:
        return _restore(archive, config_path=config_path, data_dir=data_dir, force=force)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise CommandError(f"backup archive {archive} is damaged: {exc}") from exc


def _restore(
    archive: Path, *, config_path: Path, data_dir: Path | None, force: bool
) -> RestoreResult:
    with _open_archive(archive) as tar:
        manifest = _read_manifest(tar)
        members = _data_members(tar)
        config = manifest.get("config")
        config = config if isinstance(config, dict) else {}
        if data_dir is None:
            configured = config.get("data_dir")
            data_dir = Path(configured) if isinstance(configured, str) else config_path.parent
        data_dir = data_dir.expanduser().absolute()
        _check_target(data_dir, force=force)
        if data_dir.is_dir() and force:
            _clear(data_dir)
        _extract(tar, members, data_dir)
    _write_config(config_path, _toml_config(config, data_dir))
    return RestoreResult(data_dir=data_dir, config_path=config_path)
