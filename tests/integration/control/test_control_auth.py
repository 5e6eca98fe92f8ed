"""§5 authentication with 127.0.0.1 marked untrusted: required auth, scopes, failures, re-checks."""

from __future__ import annotations

import asyncio
import json
import time

from control_daemon import Daemon, StartFn
from control_wire import RawConn, request


async def untrusted(start_daemon: StartFn) -> Daemon:
    return await start_daemon(trusted_networks=())


async def test_loopback_reads_need_no_token(daemon: Daemon) -> None:
    conn = await RawConn.open(daemon.port)
    assert (await conn.call(request(1, "listAggregates")))["which"] == "listAggregates"
    await conn.close()


async def test_untrusted_reads_require_authentication(start_daemon: StartFn) -> None:
    daemon = await untrusted(start_daemon)
    conn = await RawConn.open(daemon.port)
    for n, variant in enumerate(("listAggregates", "getAggregate", "listEvents", "verifyAggregate"), 1):
        reply = await conn.call(request(n, variant))
        assert (reply["which"], reply["code"], reply["message"]) == (
            "error", "unauthorized", "unauthorized: authentication required")
    token = daemon.token(resources=("aggregate:order:*",))
    ok = await conn.call(request(9, "appendEvent", token=token, aggregateType="order", aggregateId="o-1",
                                 eventType="item_created", payloadJson='{"a":1}'))
    assert ok["which"] == "appendEvent"  # appends carry their own token
    await conn.close()


async def test_authenticate_binds_identity_and_scopes(start_daemon: StartFn) -> None:
    daemon = await untrusted(start_daemon)
    writer = daemon.token()
    conn = await RawConn.open(daemon.port)
    for t, i in (("order", "o-1"), ("order", "o-2"), ("user", "u-1")):
        reply = await conn.call(request(1, "appendEvent", token=writer, aggregateType=t, aggregateId=i,
                                        eventType="item_created", payloadJson="{}"))
        assert reply["which"] == "appendEvent", reply
    scoped = daemon.token(actions=("aggregate.*",), resources=("aggregate:order:*",), group="g", user="u",
                          ttl_secs=0)
    auth = await conn.call(request(2, "authenticate", token=scoped))
    assert auth["which"] == "authenticate", auth
    assert (auth["group"], auth["user"], auth["expiresAt"]) == ("g", "u", "")
    assert auth["actions"] == ["aggregate.*"] and auth["resources"] == ["aggregate:order:*"]
    listed = json.loads((await conn.call(request(3, "listAggregates")))["aggregatesJson"])
    assert [(a["aggregate_type"], a["aggregate_id"]) for a in listed] == [("order", "o-1"), ("order", "o-2")]
    listed = json.loads((await conn.call(request(4, "listAggregates", skip=1, take=5, hasTake=True)))["aggregatesJson"])
    assert [a["aggregate_id"] for a in listed] == ["o-2"]
    assert (await conn.call(request(5, "getAggregate", aggregateType="user", aggregateId="u-1")))["found"] is False
    assert (await conn.call(request(6, "getAggregate", aggregateType="order", aggregateId="o-1")))["found"] is True
    err = await conn.call(request(7, "listEvents", aggregateType="user", aggregateId="u-1"))
    assert err["code"] == "aggregate_not_found"
    # empty token on appendEvent uses the connection's token (scope order:*)
    ok = await conn.call(request(8, "appendEvent", aggregateType="order", aggregateId="o-3", eventType="e_created",
                                 payloadJson="{}"))
    assert json.loads(ok["eventJson"])["metadata"]["issued_by"] == {"group": "g", "user": "u"}
    denied = await conn.call(request(9, "appendEvent", aggregateType="user", aggregateId="u-9", eventType="e_created",
                                     payloadJson="{}"))
    assert denied["code"] == "unauthorized"
    await conn.close()


async def test_token_without_read_action_cannot_read(start_daemon: StartFn) -> None:
    daemon = await untrusted(start_daemon)
    conn = await RawConn.open(daemon.port)
    token = daemon.token(actions=("aggregate.append",))
    assert (await conn.call(request(1, "authenticate", token=token)))["which"] == "authenticate"
    reply = await conn.call(request(2, "listAggregates"))
    assert (reply["code"], reply["message"]) == ("unauthorized", "unauthorized")
    await conn.close()


async def test_five_failed_authentications_close(start_daemon: StartFn) -> None:
    daemon = await untrusted(start_daemon)
    conn = await RawConn.open(daemon.port)
    good = daemon.token()
    for n in range(1, 5):
        reply = await conn.call(request(n, "authenticate", token="garbage"))
        assert (reply["code"], reply["message"]) == ("invalid_token", "token not found or inactive")
    # a success resets the count
    assert (await conn.call(request(5, "authenticate", token=good)))["which"] == "authenticate"
    for n in range(6, 10):
        assert (await conn.call(request(n, "authenticate", token="garbage")))["which"] == "error"
    # still bound? a failed authenticate leaves the previous binding untouched only until the 5th failure
    reply = await conn.call(request(10, "authenticate", token="garbage"))
    assert reply["code"] == "invalid_token"
    assert await conn.closed()


async def test_revocation_applies_within_a_second(start_daemon: StartFn) -> None:
    daemon = await untrusted(start_daemon)
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    assert (await conn.call(request(1, "authenticate", token=token)))["which"] == "authenticate"
    assert (await conn.call(request(2, "listAggregates")))["which"] == "listAggregates"
    daemon.revoke(token)
    deadline = time.monotonic() + 3
    code = ""
    while time.monotonic() < deadline:
        reply = await conn.call(request(3, "listAggregates"))
        code = reply.get("code", "")
        if code:
            break
        await asyncio.sleep(0.1)
    assert code == "invalid_token"
    await conn.close()
