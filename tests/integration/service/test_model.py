"""Property test: appends agree with a plain model (fold of payload maps, full Merkle recompute)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_helpers import req

from eventdbx.domain.integrity import merkle_root
from eventdbx.domain.jsontext import dumps_canonical, parse_json
from eventdbx.domain.state import payload_map
from eventdbx.service import EventService

_ids = itertools.count()
_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))
_payloads = st.one_of(
    st.dictionaries(st.text(min_size=1, max_size=4), _values, max_size=4),
    _values,
    st.lists(_values, max_size=3),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(_payloads, min_size=1, max_size=12))
def test_service_matches_model(service: EventService, payloads: list[object]) -> None:
    agg = f"m{next(_ids)}"
    state: dict[str, str] = {}
    hashes: list[str] = []
    for n, payload in enumerate(payloads):
        text = dumps_canonical(payload)  # type: ignore[arg-type]
        out = service.append(req("model", agg, "model_created" if n == 0 else "model_changed", text))
        state.update(payload_map(parse_json(text)))
        hashes.append(out.record.hash)
        assert out.record.merkle_root == merkle_root(hashes)
        assert service.get_aggregate("model", agg).state == state
    for v in range(len(payloads) + 1):
        past = service.get_aggregate("model", agg, version=v)
        assert past.merkle_root == merkle_root(hashes[:v])
    assert service.verify("model", agg) == merkle_root(hashes)
