"""store/tokens.py against an in-memory SQLite database holding its DDL, and verify_token over it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from eventdbx.auth.keys import generate_keys, signing_keys
from eventdbx.auth.records import TokenStatus
from eventdbx.auth.tokens import TokenRequest, issue_token, verify_token
from eventdbx.config import AuthSettings
from eventdbx.errors import ConfigError, InvalidTokenError
from eventdbx.store import tokens as ledger_db

NOW = 1761480000.0
M = generate_keys(NOW)
AUTH = AuthSettings(private_key=M.private_key, public_key=M.public_key, key_id=M.key_id)
KEYS = signing_keys(AUTH)


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for stmt in ledger_db.DDL:
        c.execute(stmt)
    yield c
    c.close()


def _issue(**kw: object) -> object:
    req = TokenRequest(**{"group": "g", "user": "u", "actions": ("aggregate.*",), **kw})  # type: ignore[arg-type]
    return issue_token(KEYS, AUTH, req, NOW)


def test_ddl_is_the_contract_text() -> None:
    assert ledger_db.DDL == (
        "CREATE TABLE tokens (jti TEXT PRIMARY KEY, record TEXT NOT NULL)",
        "CREATE TABLE revocations (jti TEXT PRIMARY KEY, revoked_at TEXT NOT NULL, reason TEXT, expires_at TEXT)",
        "CREATE TABLE token_usage (jti TEXT PRIMARY KEY, events_written INTEGER NOT NULL DEFAULT 0)",
    )


def test_insert_get_list_revoke(conn: sqlite3.Connection) -> None:
    a, b = _issue(), _issue(ttl_secs=0)
    assert ledger_db.change_counter(conn) == 0
    ledger_db.insert_token(conn, a)  # type: ignore[arg-type]
    ledger_db.insert_token(conn, b)  # type: ignore[arg-type]
    assert ledger_db.change_counter(conn) == 2
    assert ledger_db.get_token(conn, a.jti) == a  # type: ignore[attr-defined]
    assert [r.jti for r in ledger_db.list_tokens(conn)] == [a.jti, b.jti]  # type: ignore[attr-defined]
    assert ledger_db.find_token(conn, a.token) == a  # type: ignore[attr-defined]
    assert ledger_db.find_token(conn, "nope") is None and ledger_db.find_token(conn, "x.y.z") is None
    conn.execute("BEGIN IMMEDIATE")
    revoked = ledger_db.revoke(conn, a.jti, "lost", "2025-10-26T12:00:00+00:00")  # type: ignore[attr-defined]
    conn.execute("COMMIT")
    assert revoked is not None and revoked.status is TokenStatus.REVOKED
    assert ledger_db.get_token(conn, a.jti).status is TokenStatus.REVOKED  # type: ignore[attr-defined, union-attr]
    row = conn.execute("SELECT jti, revoked_at, reason, expires_at FROM revocations").fetchone()
    assert row == (a.jti, "2025-10-26T12:00:00+00:00", "lost", a.expires_at)  # type: ignore[attr-defined]
    assert ledger_db.change_counter(conn) == 3
    assert ledger_db.revoke(conn, "missing", None, "t") is None


def test_revocation_row_alone_marks_revoked(conn: sqlite3.Connection) -> None:
    a = _issue()
    ledger_db.insert_token(conn, a)  # type: ignore[arg-type]
    conn.execute("INSERT INTO revocations (jti, revoked_at) VALUES (?, 't')", (a.jti,))  # type: ignore[attr-defined]
    assert ledger_db.get_token(conn, a.jti).status is TokenStatus.REVOKED  # type: ignore[attr-defined, union-attr]


def test_usage_counts(conn: sqlite3.Connection) -> None:
    assert ledger_db.events_written(conn, "j") == 0
    ledger_db.add_events_written(conn, "j", 2)
    ledger_db.add_events_written(conn, "j", 3)
    assert ledger_db.events_written(conn, "j") == 5


def test_sqlite_ledger_cache_follows_change_counter(conn: sqlite3.Connection) -> None:
    @contextmanager
    def provider() -> Iterator[sqlite3.Connection]:
        yield conn

    ledger = ledger_db.SqliteTokenLedger(provider)
    a = _issue()
    ledger_db.insert_token(conn, a)  # type: ignore[arg-type]

    def check() -> None:
        verify_token(a.token, keys=KEYS, auth=AUTH, ledger=ledger, now=NOW,  # type: ignore[attr-defined]
                     action="aggregate.append", resource="aggregate:x:1", write=True)

    check()
    check()
    assert ledger.change_counter() == 1
    ledger_db.revoke(conn, a.jti, None, "t")  # type: ignore[attr-defined]
    with pytest.raises(InvalidTokenError):
        check()


DEK = "q" * 43 + "="
OTHER_DEK = "r" * 43 + "="


def test_token_value_sealed_with_data_key(conn: sqlite3.Connection) -> None:
    import base64
    import hashlib
    import json

    a = _issue()
    ledger_db.insert_token(conn, a, dek=DEK)  # type: ignore[arg-type]
    stored = json.loads(conn.execute("SELECT record FROM tokens").fetchone()[0])
    assert stored["token"].startswith("ENCv1:") and stored["jti"] == a.jti  # type: ignore[attr-defined]
    blob = base64.b64decode(stored["token"][len("ENCv1:"):])
    assert len(blob) == 12 + len(a.token) + 16  # type: ignore[attr-defined]
    check = conn.execute("SELECT value FROM meta WHERE key = 'dek_check'").fetchone()[0]
    assert check == hashlib.sha256(b"eventdbx-dek-check" + base64.b64decode(DEK)).hexdigest()[:16]
    assert ledger_db.get_token(conn, a.jti, dek=DEK) == a  # type: ignore[attr-defined]
    assert ledger_db.find_token(conn, a.token, dek=DEK) == a  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="data encryption key must be configured to read encrypted events"):
        ledger_db.list_tokens(conn)
    with pytest.raises(ConfigError, match="data encryption key does not match this data directory"):
        ledger_db.list_tokens(conn, dek=OTHER_DEK)
    # verification needs no key: the ledger leaves the value sealed
    @contextmanager
    def provider() -> Iterator[sqlite3.Connection]:
        yield conn

    verify_token(a.token, keys=KEYS, auth=AUTH, ledger=ledger_db.SqliteTokenLedger(provider),  # type: ignore[attr-defined]
                 now=NOW, action="aggregate.read", resource="aggregate:x:1", write=False)
    revoked = ledger_db.revoke(conn, a.jti, "r", "t")  # type: ignore[attr-defined]
    assert revoked is not None and revoked.token.startswith("ENCv1:")
    assert ledger_db.get_token(conn, a.jti, dek=DEK).token == a.token  # type: ignore[attr-defined, union-attr]


def test_plain_rows_stay_readable_after_key_is_set(conn: sqlite3.Connection) -> None:
    a = _issue()
    ledger_db.insert_token(conn, a)  # type: ignore[arg-type]
    assert ledger_db.list_tokens(conn, dek=DEK) == [a]


def test_purge_expired_revocations_keeps_records_revoked(conn: sqlite3.Connection) -> None:
    short, forever = _issue(ttl_secs=60), _issue(ttl_secs=0)
    for rec in (short, forever):
        ledger_db.insert_token(conn, rec)  # type: ignore[arg-type]
        ledger_db.revoke(conn, rec.jti, None, "t")  # type: ignore[attr-defined]
    assert ledger_db.purge_expired_revocations(conn, NOW + 30) == 0
    assert ledger_db.purge_expired_revocations(conn, NOW + 61) == 1
    assert [r[0] for r in conn.execute("SELECT jti FROM revocations")] == [forever.jti]  # type: ignore[attr-defined]
    assert ledger_db.get_token(conn, short.jti).status is TokenStatus.REVOKED  # type: ignore[attr-defined, union-attr]
