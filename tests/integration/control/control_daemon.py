"""Test-side daemon handle: the running server, its service and settings, token and schema helpers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from eventdbx.config import Settings


@dataclasses.dataclass
class Daemon:
    """A running control server and what it serves."""

    server: Any
    service: Any
    settings: Settings

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server.port)

    def token(self, *, actions: tuple[str, ...] = ("*.*",), resources: tuple[str, ...] | None = ("*",),
              group: str = "ops", user: str = "alice", ttl_secs: int | None = 3600,
              write_events: int | None = None, now: float | None = None) -> str:
        """Issue a token and record it in the ledger."""
        return issue_token(self.settings, actions=actions, resources=resources, group=group, user=user,
                           ttl_secs=ttl_secs, write_events=write_events, now=now)

    def save_schema(self, aggregate: str, events: tuple[str, ...], *, hidden: bool = False,
                    hidden_fields: tuple[str, ...] = ()) -> None:
        """Create a schema straight in the store (the socket has no schema operations)."""
        from eventdbx.schema.model import new_schema
        from eventdbx.store.database import Database
        from eventdbx.store.schemas import save_schema

        schema = dataclasses.replace(new_schema(aggregate, events, None, "2026-01-01T00:00:00Z"),
                                     hidden=hidden, hidden_fields=hidden_fields)
        db = Database.open(self.settings.paths.event_store, create=False)
        try:
            with db.write() as conn:
                save_schema(conn, schema)
        finally:
            db.close()

    def revoke(self, token: str) -> None:
        """Revoke a token in the ledger."""
        from eventdbx.auth.tokens import token_claims
        from eventdbx.store import tokens as ledger
        from eventdbx.store.database import Database

        db = Database.open(self.settings.paths.event_store, create=False)
        try:
            with db.write() as conn:
                ledger.revoke(conn, token_claims(token)["jti"], "test", "2026-01-01T00:00:00Z")
        finally:
            db.close()


def issue_token(settings: Settings, *, actions: tuple[str, ...], resources: tuple[str, ...] | None,
                group: str, user: str, ttl_secs: int | None, write_events: int | None,
                now: float | None = None) -> str:
    """Sign a token with the data dir's keys and insert it into the ledger."""
    from eventdbx.auth.keys import signing_keys
    from eventdbx.auth.records import TokenLimits, TokenRequest
    from eventdbx.auth.tokens import issue_token as issue
    from eventdbx.store import tokens as ledger
    from eventdbx.store.database import Database

    request = TokenRequest(group=group, user=user, actions=actions, resources=resources, ttl_secs=ttl_secs,
                           limits=TokenLimits(write_events=write_events))
    record = issue(signing_keys(settings.auth), settings.auth, request, time.time() if now is None else now)
    db = Database.open(settings.paths.event_store, create=True)
    try:
        with db.write() as conn:
            ledger.insert_token(conn, record)
    finally:
        db.close()
    return record.token


StartFn = Callable[..., Awaitable["Daemon"]]
