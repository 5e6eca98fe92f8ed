"""`aggregate export` writers (cli.md §6): aggregate states as CSV or JSON files, or deflated zip entries.

Decides where files go (file vs directory rules, name mapping), renders the documents and writes them. Takes
aggregate states as values; reading the store and printing belong to the CLI.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from eventdbx.errors import CommandError, IoError

ID_COLUMN = "__aggregate_id"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_CSV_SPECIAL = re.compile(r'[,"\r\n]')

Row = tuple[str, Mapping[str, str]]
Progress = Callable[[int], None]
PROGRESS_STEP = 1000


class ExportFormat(StrEnum):
    """Output formats; the value is also the file extension."""

    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportOptions:
    """What to write and where (parsed `aggregate export` options)."""

    output: Path
    format: ExportFormat = ExportFormat.CSV
    zip: bool = False
    pretty: bool = False
    all_types: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportResult:
    """Files written (in order) and, for `--zip`, the archive."""

    files: list[Path] = field(default_factory=list)
    zip_path: Path | None = None
    type_count: int = 0


def file_stem(aggregate_type: str) -> str:
    """File-name form of a type: characters outside `[A-Za-z0-9_-]` become `_`."""
    return _UNSAFE_NAME_CHARS.sub("_", aggregate_type)


# -- rendering -------------------------------------------------------------------------------------------


def _csv_cell(value: str) -> str:
    if _CSV_SPECIAL.search(value) is None:
        return value
    return '"' + value.replace('"', '""') + '"'


def _counted(rows: Sequence[Row], progress: Progress | None) -> Iterator[Row]:
    """Yield rows, reporting every PROGRESS_STEP rows (and the remainder) to `progress`."""
    if progress is None:
        yield from rows
        return
    for index, row in enumerate(rows, 1):
        yield row
        if index % PROGRESS_STEP == 0:
            progress(PROGRESS_STEP)
    if len(rows) % PROGRESS_STEP:
        progress(len(rows) % PROGRESS_STEP)


def render_csv(rows: Sequence[Row], progress: Progress | None = None) -> str:
    """Header `__aggregate_id` + sorted union of state keys; one line per aggregate, `\\n` terminated."""
    keys = sorted({key for _, state in rows for key in state})
    lines = [",".join(_csv_cell(cell) for cell in (ID_COLUMN, *keys))]
    for aggregate_id, state in _counted(rows, progress):
        cells = [aggregate_id, *(state.get(key, "") for key in keys)]
        lines.append(",".join(_csv_cell(cell) for cell in cells))
    return "\n".join(lines) + "\n"


def render_json(rows: Sequence[Row], *, pretty: bool, progress: Progress | None = None) -> str:
    """Array of `{"__aggregate_id": id, key: value…}` objects (keys sorted), compact or pretty, + `\\n`."""
    from eventdbx.domain.jsontext import to_compact, to_pretty

    objects = [{ID_COLUMN: row_id, **state} for row_id, state in _counted(rows, progress)]
    text = to_pretty(objects, sort_keys=True) if pretty else to_compact(objects, sort_keys=True)
    return text + "\n"


def render(rows: Sequence[Row], options: ExportOptions, progress: Progress | None = None) -> str:
    """The document for one aggregate type; `progress(n)` as rows are rendered."""
    if options.format is ExportFormat.JSON:
        return render_json(rows, pretty=options.pretty, progress=progress)
    return render_csv(rows, progress)


# -- placement ---------------------------------------------------------------------------------------------


def _has_extension(path: Path, ext: str) -> bool:
    return path.suffix.lower() == f".{ext}"


def _file_targets(types: Sequence[str], options: ExportOptions) -> dict[str, Path]:
    """Per type, the file to write (one type: a file or a directory entry; several: a directory)."""
    ext = options.format.value
    out = options.output
    if len(types) == 1:
        if out.is_file() or (not out.is_dir() and _has_extension(out, ext)):
            return {types[0]: out}
        return {types[0]: out / f"{file_stem(types[0])}.{ext}"}
    if (out.exists() and not out.is_dir()) or (not out.exists() and _has_extension(out, ext)):
        raise CommandError("output path must be a directory when exporting multiple aggregate types")
    return {name: out / f"{file_stem(name)}.{ext}" for name in types}


def zip_target(types: Sequence[str], options: ExportOptions) -> Path:
    """The archive path: `<type>_<ext>.zip` / `aggregates_<ext>.zip` inside a directory, else P with `.zip`."""
    out = options.output
    if out.is_dir():
        stem = "aggregates" if options.all_types else file_stem(types[0])
        return out / f"{stem}_{options.format.value}.zip"
    return out.with_suffix(".zip")


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise IoError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise IoError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- export ------------------------------------------------------------------------------------------------


def group_rows(states: Iterable[tuple[str, str, Mapping[str, str]]]) -> dict[str, list[Row]]:
    """(type, id, state) triples → rows per type, types and ids in binary (code point) order."""
    groups: dict[str, list[Row]] = {}
    for aggregate_type, aggregate_id, state in states:
        groups.setdefault(aggregate_type, []).append((aggregate_id, state))
    for rows in groups.values():
        rows.sort(key=lambda row: row[0])
    return dict(sorted(groups.items()))


def _zip_bytes(
    groups: Mapping[str, Sequence[Row]], options: ExportOptions, progress: Progress | None
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, rows in groups.items():
            zf.writestr(f"{file_stem(name)}.{options.format.value}", render(rows, options, progress))
    return buffer.getvalue()


def write_export(
    groups: Mapping[str, Sequence[Row]], options: ExportOptions, progress: Progress | None = None
) -> ExportResult:
    """Write one document per type (files, or entries of one deflated zip); `progress(n)` per n rows."""
    types = list(groups)
    if not types:
        return ExportResult()
    if options.zip:
        archive = zip_target(types, options)
        _write_atomic(archive, _zip_bytes(groups, options, progress))
        return ExportResult(zip_path=archive, type_count=len(types))
    targets = _file_targets(types, options)
    written: list[Path] = []
    for name in types:
        _write_atomic(targets[name], render(groups[name], options, progress).encode())
        written.append(targets[name])
    return ExportResult(files=written, type_count=len(types))
