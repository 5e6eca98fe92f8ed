"""The schemas table: one JSON document (data-model.md §11) per aggregate type, parsed through schema.model."""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from eventdbx.schema.model import Schema


@lru_cache(maxsize=256)
def _parse(text: str) -> Schema:
    """Schema of stored text; cached by text so hot appends do not re-parse an unchanged schema."""
    from eventdbx.schema.model import Schema

    return Schema.from_dict(orjson.loads(text))


def load_schema_text(conn: sqlite3.Connection, aggregate: str) -> str | None:
    """The stored JSON text of an aggregate type's schema, or None."""
    row = conn.execute("SELECT schema FROM schemas WHERE aggregate = ?", (aggregate,)).fetchone()
    return None if row is None else str(row[0])


def load_schema(conn: sqlite3.Connection, aggregate: str) -> Schema | None:
    """The schema of an aggregate type, or None when it has none."""
    text = load_schema_text(conn, aggregate)
    return None if text is None else _parse(text)


def list_schemas(conn: sqlite3.Connection) -> list[Schema]:
    """Every schema, ordered by aggregate name."""
    rows = conn.execute("SELECT schema FROM schemas ORDER BY aggregate").fetchall()
    return [_parse(str(row[0])) for row in rows]


def save_schema(conn: sqlite3.Connection, schema: Schema) -> None:
    """Insert or replace the schema of `schema.aggregate`."""
    text = orjson.dumps(schema.to_dict()).decode()
    conn.execute(
        "INSERT OR REPLACE INTO schemas (aggregate, schema) VALUES (?, ?)", (schema.aggregate, text)
    )


def delete_schema(conn: sqlite3.Connection, aggregate: str) -> bool:
    """Remove a schema; False when there was none."""
    cur = conn.execute("DELETE FROM schemas WHERE aggregate = ?", (aggregate,))
    return cur.rowcount > 0
