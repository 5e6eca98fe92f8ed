"""Prepare a data directory for the daemon: directories, the event store and the bootstrap `cli.token`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventdbx.config import Settings


def prepare_data_dir(settings: Settings) -> str:
    """Create what `dbx start` needs and return the bootstrap root token (auth.md §7)."""
    from eventdbx.auth.bootstrap import ensure_cli_token
    from eventdbx.auth.keys import signing_keys
    from eventdbx.auth.records import TokenRecord
    from eventdbx.store.database import Database
    from eventdbx.store.tokens import SqliteTokenLedger, insert_token

    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.paths.logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    dek = settings.data_encryption_key

    def record(rec: TokenRecord) -> None:
        with db.write() as conn:
            insert_token(conn, rec, dek=dek)

    try:
        return ensure_cli_token(
            settings.paths.cli_token,
            keys=signing_keys(settings.auth),
            auth=settings.auth,
            ledger=SqliteTokenLedger(db.read),
            record=record,
            now=time.time(),
        )
    finally:
        db.close()
