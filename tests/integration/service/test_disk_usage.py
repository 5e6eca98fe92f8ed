"""event_store.db stays under 1 KB per event for ~100-byte payloads (index choices regression guard)."""

from __future__ import annotations

import os

from service_helpers import req

from eventdbx.service import EventService


def test_bytes_per_event(service: EventService) -> None:
    count = 3000
    batch = []
    for n in range(count):
        event = "acct_created" if n < 100 else "acct_updated"
        payload = (f'{{"status":"active","amount":{n % 997}.25,"customer":"cust-{n:05d}",'
                   f'"sku":"SKU-{n % 1234:04d}","qty":{n % 17}}}')
        batch.append(req("acct", f"a-{n % 100:03d}", event, payload))
        if len(batch) == 100:
            assert all(not isinstance(r, Exception) for r in service.append_batch(batch))
            batch = []
    service.store.db.checkpoint()  # type: ignore[attr-defined]
    size = os.path.getsize(service.settings.paths.event_store)
    assert size / count < 1024, size / count
