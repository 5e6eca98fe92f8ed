"""The control socket against a real EventService: operations, JSON shapes, paging, error codes, §2 refusals."""

from __future__ import annotations

import asyncio
import json
import struct
import time

from control_daemon import Daemon
from control_wire import RawConn, request, response, schema, segments_of

from eventdbx.control import messages as msg


def append(rid: int, token: str, t: str, i: str, event_type: str, payload: object = None, **extra: object) -> bytes:
    """A reference-client appendEvent frame."""
    fields: dict[str, object] = {"token": token, "aggregateType": t, "aggregateId": i, "eventType": event_type}
    if payload is not None:
        fields["payloadJson"] = payload if isinstance(payload, str) else json.dumps(payload)
    fields.update(extra)
    return request(rid, "appendEvent", **fields)


async def test_reference_client_round_trip(daemon: Daemon) -> None:
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    reply = await conn.call(append(1, token, "order", "order-1", "order_created", {"status": "created"}))
    assert reply["id"] == 1 and reply["which"] == "appendEvent", reply
    event = json.loads(reply["eventJson"])
    assert list(event) == ["aggregate_type", "aggregate_id", "event_type", "payload", "metadata", "version",
                           "hash", "merkle_root"]
    assert event["payload"] == {"status": "created"} and event["version"] == 1
    assert event["metadata"]["issued_by"] == {"group": "ops", "user": "alice"}
    assert " " not in reply["eventJson"]

    got = await conn.call(request(2, "getAggregate", aggregateType="order", aggregateId="order-1"))
    assert got["found"] is True
    state = json.loads(got["aggregateJson"])
    assert list(state) == ["aggregate_type", "aggregate_id", "version", "state", "merkle_root", "archived"]
    assert state["state"] == {"status": "created"} and state["merkle_root"] == event["merkle_root"]

    missing = await conn.call(request(3, "getAggregate", aggregateType="order", aggregateId="nope"))
    assert (missing["found"], missing["aggregateJson"]) == (False, "")

    listed = await conn.call(request(4, "listAggregates"))
    assert [a["aggregate_id"] for a in json.loads(listed["aggregatesJson"])] == ["order-1"]
    events = await conn.call(request(5, "listEvents", aggregateType="order", aggregateId="order-1"))
    assert json.loads(events["eventsJson"]) == [event]
    verified = await conn.call(request(6, "verifyAggregate", aggregateType="order", aggregateId="order-1"))
    assert verified["merkleRoot"] == event["merkle_root"]
    nanos = time.time_ns()  # the reference CLI used nanosecond ids: any id is echoed
    assert (await conn.call(request(nanos, "listAggregates")))["id"] == nanos
    await conn.close()


async def test_paging_defaults_and_caps(start_daemon: object) -> None:
    daemon: Daemon = await start_daemon(list_page_size=3, page_limit=5)  # type: ignore[operator]
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    for n in range(7):
        assert (await conn.call(append(n + 1, token, "t", f"a{n}", "e_created", {"n": n})))["which"] == "appendEvent"
    for v in range(6):
        await conn.call(append(100 + v, token, "t", "a0", "e_created", {"v": v}))

    def ids(reply: dict[str, object]) -> list[str]:
        return [a["aggregate_id"] for a in json.loads(str(reply["aggregatesJson"]))]

    assert ids(await conn.call(request(1, "listAggregates"))) == ["a0", "a1", "a2"]
    assert ids(await conn.call(request(2, "listAggregates", take=0, hasTake=True))) == []
    assert ids(await conn.call(request(3, "listAggregates", skip=2, take=100, hasTake=True))) == [
        "a2", "a3", "a4", "a5", "a6"]
    assert ids(await conn.call(request(4, "listAggregates", skip=6, take=2, hasTake=True))) == ["a6"]
    ev = await conn.call(request(5, "listEvents", aggregateType="t", aggregateId="a0"))
    assert [e["version"] for e in json.loads(ev["eventsJson"])] == [1, 2, 3, 4, 5]
    ev = await conn.call(request(6, "listEvents", aggregateType="t", aggregateId="a0", skip=4, take=10,
                                 hasTake=True))
    assert [e["version"] for e in json.loads(ev["eventsJson"])] == [5, 6, 7]
    ev = await conn.call(request(7, "listEvents", aggregateType="t", aggregateId="a0", take=0, hasTake=True))
    assert ev["eventsJson"] == "[]"
    huge = 2**64 - 1
    assert ids(await conn.call(request(8, "listAggregates", skip=huge, take=huge, hasTake=True))) == []
    ev = await conn.call(request(9, "listEvents", aggregateType="t", aggregateId="a0", skip=huge, take=huge,
                                 hasTake=True))
    assert ev["eventsJson"] == "[]"
    await conn.close()


async def test_hidden_types_and_fields(daemon: Daemon) -> None:
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    for t in ("secret", "user"):
        for i in ("1", "2"):
            reply = await conn.call(append(1, token, t, i, "item_created", {"name": "n", "password": "p"}))
            assert reply["which"] == "appendEvent", reply
    daemon.save_schema("secret", ("item_created",), hidden=True)
    daemon.save_schema("user", ("item_created",), hidden_fields=("password",))
    listed = json.loads((await conn.call(request(2, "listAggregates", take=1, skip=1, hasTake=True)))["aggregatesJson"])
    assert [(a["aggregate_type"], a["aggregate_id"]) for a in listed] == [("user", "2")]
    assert listed[0]["state"] == {"name": "n"}
    got = await conn.call(request(3, "getAggregate", aggregateType="secret", aggregateId="1"))
    assert got["found"] is False
    got = await conn.call(request(4, "getAggregate", aggregateType="user", aggregateId="1"))
    assert json.loads(got["aggregateJson"])["state"] == {"name": "n"}
    for variant in ("listEvents", "verifyAggregate"):
        err = await conn.call(request(5, variant, aggregateType="secret", aggregateId="1"))
        assert (err["which"], err["code"]) == ("error", "aggregate_not_found")
    events = json.loads((await conn.call(request(6, "listEvents", aggregateType="user", aggregateId="1")))["eventsJson"])
    assert events[0]["payload"] == {"name": "n", "password": "p"}  # payloads unfiltered
    await conn.close()


async def test_error_codes(daemon: Daemon) -> None:
    good = daemon.token()
    conn = await RawConn.open(daemon.port)

    async def error(frame: bytes) -> tuple[str, str]:
        reply = await conn.call(frame)
        assert reply["which"] == "error", reply
        return reply["code"], reply["message"]

    assert await error(append(1, "not-a-token", "t", "i", "e_created", {})) == ("invalid_token", "token not found or inactive")
    assert await error(append(2, "", "t", "i", "e_created", {})) == ("invalid_token", "token not found or inactive")
    expired = daemon.token(ttl_secs=60, now=time.time() - 3600)
    assert await error(append(3, expired, "t", "i", "e_created", {})) == ("token_expired", "token has expired")
    reader = daemon.token(actions=("aggregate.read",))
    assert await error(append(4, reader, "t", "i", "e_created", {})) == ("unauthorized", "unauthorized")
    other = daemon.token(resources=("aggregate:other:*",))
    assert await error(append(5, other, "t", "i", "e_created", {})) == ("unauthorized", "unauthorized")
    limited = daemon.token(write_events=1)
    assert (await conn.call(append(6, limited, "t", "i", "e_created", {})))["which"] == "appendEvent"
    assert await error(append(7, limited, "t", "i", "e_created", {})) == ("token_limit_reached", "token write limit reached")
    assert await error(request(8, "listEvents", aggregateType="t", aggregateId="zz")) == (
        "aggregate_not_found", "aggregate not found")
    assert await error(request(9, "verifyAggregate", aggregateType="t", aggregateId="zz")) == (
        "aggregate_not_found", "aggregate not found")
    code, message = await error(append(10, good, "t", "i", "e_created", "{bad"))
    assert code == "invalid_schema" and message.startswith("invalid schema: "), message
    code, message = await error(append(11, good, "t", "i", "e_created", {}, expectedVersion=5,
                                       hasExpectedVersion=True))
    assert code == "version_conflict" and message.startswith("version conflict: "), message
    code, message = await error(msg.encode_request(msg.AppendEvent(
        id=11, token=good, aggregate_type="t", aggregate_id="i", event_type="e_created", payload_json="{}",
        expected_version=2**64 - 1)))
    assert code == "version_conflict", message
    daemon.save_schema("strict", ("s_created",))
    code, message = await error(append(12, good, "strict", "s-1", "other_created", {"a": 1}))
    assert code == "schema_violation" and message.startswith("schema violation: "), message
    daemon.service.archive("t", "i")
    assert await error(append(13, good, "t", "i", "e_created", {})) == (
        "aggregate_archived", "aggregate is archived and cannot accept new events")

    unknown = bytearray(request(13, "listAggregates"))
    struct.pack_into("<H", unknown, 24, 6)
    assert await error(bytes(unknown)) == ("serialization", "serialization error: unknown request variant 6")
    bad_utf8 = bytearray(request(14, "getAggregate", aggregateType="abc", aggregateId="x"))
    bad_utf8[bad_utf8.find(b"abc")] = 0xFF
    code, message = await error(bytes(bad_utf8))
    assert code == "serialization" and message.startswith("serialization error: "), message
    # the connection survived every error
    assert (await conn.call(request(15, "listAggregates")))["which"] == "listAggregates"
    await conn.close()


async def test_storage_failure_maps_to_storage_error(daemon: Daemon, monkeypatch: object) -> None:
    def broken(requests: object) -> object:
        raise RuntimeError("disk on fire")

    daemon.server.writer._append_batch = broken
    daemon.server.writer._inline = broken  # the loop's own commit path fails the same way
    conn = await RawConn.open(daemon.port)
    reply = await conn.call(append(1, daemon.token(), "t", "i", "e_created", {}))
    assert (reply["code"], reply["message"]) == ("storage", "storage error: disk on fire")
    await conn.close()


async def test_pipelined_requests_answered_in_order(daemon: Daemon) -> None:
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    frames = []
    for n in range(1, 121):
        if n % 3 == 0:
            frames.append(request(n, "getAggregate", aggregateType="p", aggregateId="x"))
        else:
            frames.append(append(n, token, "p", "x", "e_created", {"n": n}))
    await conn.send(b"".join(frames))
    replies = [response(await conn.frame()) for _ in frames]
    assert [r["id"] for r in replies] == list(range(1, 121))
    versions = [json.loads(r["eventJson"])["version"] for r in replies if r["which"] == "appendEvent"]
    assert versions == list(range(1, 81))
    # a read after appends on the same connection sees them
    seen = [json.loads(r["aggregateJson"])["version"] for r in replies if r["which"] == "getAggregate"]
    assert seen == [2 * k for k in range(1, 41)]
    await conn.close()


async def test_multi_segment_messages_both_ways(daemon: Daemon) -> None:
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    payload = {"blob": "z" * 20000}
    frame = append(1, token, "big", "b-1", "e_created", payload)
    assert segments_of(frame) > 1
    reply = await conn.call(frame)
    assert json.loads(reply["eventJson"])["payload"] == payload
    events = await conn.call(request(2, "listEvents", aggregateType="big", aggregateId="b-1"))
    assert json.loads(events["eventsJson"])[0]["payload"] == payload
    await conn.close()


async def test_cli_request_refused_and_nothing_executed(daemon: Daemon) -> None:
    cli = schema("cli").CliRequest.new_message()
    args = cli.init("args", 4)
    for n, arg in enumerate(["aggregate", "apply", "order", "o-1"]):
        args[n] = arg
    conn = await RawConn.open(daemon.port)
    await conn.send(cli.to_bytes() + request(2, "listAggregates"))
    with schema("cli").CliResponse.from_bytes(await conn.frame()) as reply:
        assert (reply.exitCode, reply.stdout, reply.stderr) == (
            1, "", "Error: CLI proxy requests are not supported by this server\n")
    assert await conn.closed()
    assert daemon.service.list_aggregates(skip=0, take=10) == []


async def test_replication_hello_refused(daemon: Daemon) -> None:
    hello = schema("replication").ReplicationHello.new_message()
    hello.protocolVersion = 1
    hello.expectedPublicKey = b"\x01" * 32
    conn = await RawConn.open(daemon.port)
    await conn.send(hello.to_bytes())
    with schema("replication").ReplicationHelloResponse.from_bytes(await conn.frame()) as reply:
        assert (reply.accepted, reply.message) == (False, "replication is not supported by this server")
    assert await conn.closed()


async def test_malformed_first_message_closed_without_reply(daemon: Daemon) -> None:
    conn = await RawConn.open(daemon.port)
    await conn.send(struct.pack("<IIQ", 0, 1, 0))  # one segment holding a null root pointer
    assert await conn.reader.read(1) == b""
    await conn.close()
    conn2 = await RawConn.open(daemon.port)
    assert (await conn2.call(request(1, "listAggregates")))["which"] == "listAggregates"
    await conn2.close()


async def test_serialization_reply_for_unreadable_later_message(daemon: Daemon) -> None:
    conn = await RawConn.open(daemon.port)
    assert (await conn.call(request(1, "listAggregates")))["which"] == "listAggregates"
    # root pointer of a list, not a struct: id unreadable → 0
    reply = await conn.call(struct.pack("<IIQ", 0, 1, 1 | (2 << 32)))
    assert (reply["id"], reply["which"], reply["code"]) == (0, "error", "serialization")
    await asyncio.sleep(0)
    assert (await conn.call(request(2, "listAggregates")))["id"] == 2
    await conn.close()


async def test_pipelined_authenticate_and_errors_keep_their_place(start_daemon: object) -> None:
    daemon: Daemon = await start_daemon(trusted_networks=())  # type: ignore[operator]
    token = daemon.token(group="g", user="u")
    conn = await RawConn.open(daemon.port)
    bad = bytearray(request(3, "listAggregates"))
    struct.pack_into("<H", bad, 24, 42)
    frames = [
        append(1, "", "o", "o-1", "o_created", {"a": 1}),  # no token yet: invalid_token
        request(2, "listAggregates"),  # unauthenticated remote read
        bytes(bad),
        request(4, "authenticate", token=token),
        append(5, "", "o", "o-1", "o_created", {"a": 2}),  # uses the connection's token now
        request(6, "getAggregate", aggregateType="o", aggregateId="o-1"),
        append(7, "", "o", "o-1", "o_updated", {"a": 3}),
        request(8, "listEvents", aggregateType="o", aggregateId="o-1"),
    ]
    await conn.send(b"".join(frames))
    replies = [response(await conn.frame()) for _ in frames]
    assert [r["id"] for r in replies] == list(range(1, 9))
    assert [r.get("code", r["which"]) for r in replies] == [
        "invalid_token", "unauthorized", "serialization", "authenticate", "appendEvent", "getAggregate",
        "appendEvent", "listEvents"]
    assert replies[2]["message"] == "serialization error: unknown request variant 42"
    assert json.loads(replies[5]["aggregateJson"])["version"] == 1
    assert [e["version"] for e in json.loads(replies[7]["eventsJson"])] == [1, 2]
    await conn.close()


async def test_half_closed_client_still_gets_every_reply(daemon: Daemon) -> None:
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    frames = [append(n, token, "h", "h-1", "h_created", {"n": n}) for n in range(1, 31)]
    frames.append(request(31, "listEvents", aggregateType="h", aggregateId="h-1", take=100, hasTake=True))
    await conn.send(b"".join(frames))
    conn.writer.write_eof()
    replies = [response(await conn.frame()) for _ in frames]
    assert [r["id"] for r in replies] == list(range(1, 32))
    assert len(json.loads(replies[-1]["eventsJson"])) == 30
    assert await conn.closed()


async def test_strict_mode_without_schema_is_a_prefixed_schema_violation(start_daemon: object) -> None:
    from eventdbx.domain.restrict import RestrictMode

    daemon: Daemon = await start_daemon(restrict=RestrictMode.STRICT)  # type: ignore[operator]
    conn = await RawConn.open(daemon.port)
    reply = await conn.call(append(1, daemon.token(), "free", "f-1", "f_created", {"a": 1}))
    assert reply["code"] == "schema_violation" and reply["message"].startswith("schema violation: "), reply
    await conn.close()


async def test_every_wire_code_reaches_the_client(daemon: Daemon) -> None:
    from eventdbx import errors

    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    assert (await conn.call(append(1, token, "w", "w-1", "w_created", {})))["which"] == "appendEvent"
    table = [
        (errors.InvalidTokenError(), "invalid_token", "token not found or inactive"),
        (errors.TokenExpiredError(), "token_expired", "token has expired"),
        (errors.TokenLimitReachedError(), "token_limit_reached", "token write limit reached"),
        (errors.UnauthorizedError(), "unauthorized", "unauthorized"),
        (errors.AggregateNotFoundError(), "aggregate_not_found", "aggregate not found"),
        (errors.AggregateArchivedError(), "aggregate_archived", "aggregate is archived and cannot accept new events"),
        (errors.SchemaExistsError(), "schema_exists", "schema already exists"),
        (errors.SchemaNotFoundError(), "schema_not_found", "schema not found"),
        (errors.InvalidSchemaError("bad"), "invalid_schema", "invalid schema: bad"),
        (errors.SchemaViolationError("nope"), "schema_violation", "schema violation: nope"),
        (errors.VersionConflictError("expected 1, found 2"), "version_conflict", "version conflict: expected 1, found 2"),
        (errors.ConfigError("missing key"), "config", "configuration error: missing key"),
        (errors.StorageError("disk"), "storage", "storage error: disk"),
        (errors.IoError("pipe"), "io", "io error: pipe"),
        (errors.SerializationError("odd"), "serialization", "serialization error: odd"),
    ]
    original = daemon.service.verify
    for n, (exc, code, message) in enumerate(table, 2):
        def failing(t: str, i: str, exc: Exception = exc) -> str:
            raise exc

        daemon.service.verify = failing
        reply = await conn.call(request(n, "verifyAggregate", aggregateType="w", aggregateId="w-1"))
        assert (reply["id"], reply["code"], reply["message"]) == (n, code, message)
    daemon.service.verify = original
    await conn.close()
