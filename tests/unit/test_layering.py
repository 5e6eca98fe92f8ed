"""Architecture rules: which packages may import sqlite3, click, capnp and each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "eventdbx"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> list[tuple[str, set[str]]]:
    return [(str(p.relative_to(SRC)), _imports(p)) for p in sorted(SRC.rglob("*.py"))]


def _uses(imports: set[str], top: str) -> bool:
    return any(name == top or name.startswith(top + ".") for name in imports)


@pytest.mark.parametrize(("library", "allowed"), [
    ("sqlite3", ("store/",)),
    ("click", ("cli/",)),
    ("capnp", ("control/", "plugins/sinks/capnp", "plugins/sinks/process", "plugins/process", "sdk/plugin")),
])
def test_library_is_confined(library: str, allowed: tuple[str, ...]) -> None:
    offenders = [rel for rel, imports in _modules()
                 if _uses(imports, library) and not rel.startswith(allowed)]
    assert offenders == [], f"{library} imported outside {allowed}: {offenders}"


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("domain/", ("eventdbx.store", "eventdbx.service", "eventdbx.cli", "eventdbx.control",
                 "eventdbx.plugins", "eventdbx.daemon", "eventdbx.config")),
    ("schema/", ("eventdbx.store", "eventdbx.service", "eventdbx.cli", "eventdbx.control",
                 "eventdbx.plugins", "eventdbx.daemon")),
    ("store/", ("eventdbx.service", "eventdbx.cli", "eventdbx.control", "eventdbx.daemon")),
    ("plugins/", ("eventdbx.service", "eventdbx.cli", "eventdbx.control.server", "eventdbx.daemon")),
    ("control/", ("eventdbx.cli", "eventdbx.daemon")),
])
def test_imports_point_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = [(rel, sorted(n for n in imports if n.startswith(forbidden)))
                 for rel, imports in _modules() if rel.startswith(layer)]
    offenders = [item for item in offenders if item[1]]
    assert offenders == []
