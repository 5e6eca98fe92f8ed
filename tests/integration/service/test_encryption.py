"""Encryption at rest (data-model.md §15): sealed payloads, extensions, state, snapshots and staged entries."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable

import pytest
from service_helpers import req

from eventdbx.errors import ConfigError
from eventdbx.service import EventService

DEK = base64.b64encode(b"k" * 32).decode()
OTHER = base64.b64encode(b"o" * 32).decode()


def test_values_are_sealed_and_read_back(make_service: Callable[..., EventService]) -> None:
    plain = make_service()
    plain.append(req("a", "0", "a_created", '{"old":"plain"}'))  # written before the key was set
    service = make_service(data_encryption_key=DEK, snapshot_threshold=2)
    service.append(req("a", "1", "a_created", '{"secret":"s1"}', metadata_json='{"@m":"x"}'))
    out = service.append(req("a", "1", "a_updated", '{"secret":"s2"}'))
    service.stage(req("a", "1", "a_updated", '{"secret":"s3"}'))
    raw = sqlite3.connect(service.settings.paths.event_store)
    try:
        texts = [r[0] for r in raw.execute("SELECT payload FROM events ORDER BY seq")]
        texts += [r[0] for r in raw.execute("SELECT extensions FROM events WHERE extensions IS NOT NULL")]
        texts += [r[0] for r in raw.execute("SELECT state FROM aggregates WHERE aggregate_id = '1'")]
        texts += [r[0] for r in raw.execute("SELECT state FROM snapshots")]
        texts += [v for r in raw.execute("SELECT entry, payload FROM staged_events") for v in r]
        assert texts[0] == '{"old":"plain"}'
        assert all(t.startswith("ENCv1:") for t in texts[1:]) and len(texts) == 8
        assert raw.execute("SELECT value FROM meta WHERE key = 'dek_check'").fetchone() is not None
    finally:
        raw.close()
    assert service.get_aggregate("a", "1").state == {"secret": "s2"}
    assert service.get_aggregate("a", "0").state == {"old": "plain"}
    assert service.list_events("a", "1")[0].extensions_json == '{"@m":"x"}'
    assert service.verify("a", "1") == out.record.merkle_root
    assert service.staged()[0].payload_json == '{"secret":"s3"}'
    assert service.snapshots("a", "1")[0].state == {"secret": "s2"}
    assert [o.record.version for o in service.commit_staged()] == [3]
    with pytest.raises(ConfigError, match="^configuration error: data encryption key must be configured to read encrypted events$"):
        make_service().get_aggregate("a", "1")
    with pytest.raises(ConfigError, match="^configuration error: data encryption key does not match this data directory$"):
        make_service(data_encryption_key=OTHER)
