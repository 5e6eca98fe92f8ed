"""config_text.read_subset: whenever it answers, the answer is tomllib's; dbx's own config.toml is always in the subset."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.config import load_settings, save_config_changes
from eventdbx.config_text import read_subset


def _agrees(text: str) -> dict[str, Any] | None:
    """read_subset's answer, after checking it equals tomllib's (and that tomllib accepts the text)."""
    fast = read_subset(text)
    if fast is not None:
        assert fast == tomllib.loads(text), text
    return fast


def test_written_configs_are_in_the_subset(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    load_settings(config)
    assert _agrees(config.read_text()) is not None
    save_config_changes(
        config,
        {
            "port": 8080,
            "restrict": "strict",
            "snapshot_threshold": 5,
            "socket.trusted_networks": ["10.0.0.0/8"],
            "admin.port": 0,
        },
    )
    doc = _agrees(config.read_text())
    assert (
        doc is not None
        and doc["port"] == 8080
        and doc["socket"]["trusted_networks"] == ["10.0.0.0/8"]
    )


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        ("", True),
        ('a = 1\nb = -0\nc = true\nd = false\ne = "x y # z"\nf = []\ng = [ "a", "b", ]\n', True),
        ("# comment \x01?\n", False),
        ("[a.b]\nx = 1\n[a]\ny = 2\n", True),
        ("[a]\nx = 1\n[a]\ny = 2\n", False),  # duplicate table: tomllib's error
        ("a = 1\na = 2\n", False),  # duplicate key: tomllib's error
        ("[a]\nb = 1\n[a.b]\n", False),  # b is a value, not a table
        ("[a.b]\n[a]\nb = 1\n", False),  # b is a table
        ("a = 1 # trailing comment\n", False),
        ("a = 01\n", False),
        ("a = +1\n", False),
        ("a = 1.5\n", False),
        ("a = 1979-05-27\n", False),
        ("a = 'literal'\n", False),
        ('a = "esc\\n"\n', False),
        ('a = "x" "y"\n', False),
        ('a = ["a,b"]\n', False),
        ("a = [1, 2]\n", False),
        ("a = [,]\n", False),
        ("a = {b = 1}\n", False),
        ("a.b = 1\n", False),
        ('"a" = 1\n', False),
        ("  a = 1\n", False),
        ("a = 1\r\nb = 2\r\n", False),
        ('[[plugins]]\nname = "x"\n', False),
        ("[a] # c\n", False),
        ("[ a ]\n", False),
        ("a = 12345678901234567890\n", False),
        ("\ufeffa = 1\n", False),
        ('a = "tab\there"\n', True),
        ("a =\n", False),
        ("a\n", False),
    ],
)
def test_subset_edges(text: str, inside: bool) -> None:
    assert (_agrees(text) is not None) == inside


_KEYS = st.text("abz_-09", min_size=1, max_size=3)
_SCALARS = st.one_of(
    st.booleans().map(lambda b: "true" if b else "false"),
    st.integers(-(10**20), 10**20).map(str),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6).map(lambda s: f'"{s}"'),
    st.sampled_from(["[]", '["a", "b"]', '[ "x" , ]', "1.0", "'lit'", "01", "{}", "[1]"]),
)
_LINES = st.one_of(
    st.tuples(_KEYS, st.sampled_from([" = ", "=", " =  "]), _SCALARS).map("".join),
    st.lists(_KEYS, min_size=1, max_size=2).map(lambda parts: "[" + ".".join(parts) + "]"),
    st.sampled_from(["", "# note", "[[t]]", " x = 1", "a.b = 1"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES, max_size=10))
def test_never_disagrees_with_tomllib(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    fast = read_subset(text)
    if fast is None:
        return
    assert fast == tomllib.loads(text)
