"""Helpers for the enqueuer tests: a data dir with settings, real event_store.db appends, plugins.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventdbx.config import Settings, load_settings
from eventdbx.domain.records import AggregateRow, EventRecord
from eventdbx.domain.state import fold_state, stored_payload_map
from eventdbx.store import events as store_events
from eventdbx.store.database import Database


def make_settings(root: Path) -> Settings:
    """Fresh config.toml + data dir under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    return load_settings(root / "config.toml")


def append(
    db: Database,
    aggregate_type: str,
    aggregate_id: str,
    payload: str = '{"n":1}',
    event_type: str = "thing_changed",
    extensions: str | None = None,
    dek: str | None = None,
) -> int:
    """Append one event (next version) with its aggregate row, in one write transaction; returns its seq.

    `payload` is stored verbatim, so it must be canonical text (as the write side stores it).
    """
    with db.write() as conn:
        row = store_events.load_aggregate(conn, aggregate_type, aggregate_id, dek=dek)
        version = 1 if row is None else row.version + 1
        state = fold_state({} if row is None else row.state, stored_payload_map(payload))
        last = conn.execute("SELECT coalesce(max(event_id), 0) FROM events").fetchone()[0]
        record = EventRecord(
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            event_type=event_type,
            payload_json=payload,
            extensions_json=extensions,
            event_id=int(last) + 1000,
            created_at="2025-10-26T12:00:00Z",
            issued_by=None,
            note=None,
            version=version,
            hash=f"h{version}",
            merkle_root=f"r{version}",
        )
        seq = store_events.insert_event(conn, record, dek=dek)
        store_events.save_aggregate(
            conn,
            AggregateRow(
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                version=version,
                state=state,
                merkle_root=f"r{version}",
            ),
            dek=dek,
        )
        return seq


def plugin(name: str, **fields: Any) -> dict[str, Any]:
    """A log plugin entry for plugins.json."""
    entry: dict[str, Any] = {"name": name, "config": {"type": "log"}}
    entry.update(fields)
    return entry


def write_plugins(settings: Settings, *entries: dict[str, Any]) -> None:
    """Replace plugins.json."""
    path = settings.paths.plugins_json
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(entries), indent=2))
    tmp.replace(path)
