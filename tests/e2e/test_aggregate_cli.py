"""`dbx aggregate …` (except export) through the real CLI: the pinned strings of cli.md §6 and key outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import DbxEnv, DbxResult

EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ROOT_V1 = "2f227e08db5d01f2187411b846608cf906ce4d1673e34a4ac45d7d339d681eb2"

HELP = {
    "apply": "Apply an event to an aggregate instance",
    "list": "List aggregates in the store",
    "get": "Retrieve the state of an aggregate",
    "replay": "Replay events for an aggregate instance",
    "verify": "Verify an aggregate's Merkle root",
    "snapshot": "Create a snapshot of the aggregate state",
    "archive": "Archive an aggregate instance",
    "restore": "Restore an archived aggregate instance",
    "remove": "Remove an aggregate that has no events",
    "commit": "Commit events previously staged with `aggregate apply --stage`",
    "export": "Export aggregate state to CSV or JSON",
}


def apply(dbx: DbxEnv, *args: str, **env: str) -> DbxResult:
    return dbx.ok("aggregate", "apply", *args, **env)


def record(res: DbxResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(res.out)
    return doc


def test_help_summaries(dbx: DbxEnv) -> None:
    assert "Manage aggregates" in dbx.ok("aggregate", "--help").out
    for command, summary in HELP.items():
        assert summary in dbx.ok("aggregate", command, "--help").out, command


def test_apply_prints_pretty_record(dbx: DbxEnv) -> None:
    res = apply(dbx, "order", "order-1", "order_created", "--field", "status=created")
    assert res.out.startswith('{\n  "aggregate_type": "order",\n  "aggregate_id": "order-1",\n')
    rec = record(res)
    assert list(rec) == ["aggregate_type", "aggregate_id", "event_type", "payload", "metadata",
                         "version", "hash", "merkle_root"]
    assert rec["event_type"] == "order_created"
    assert rec["payload"] == {"status": "created"}
    assert rec["version"] == 1
    assert rec["hash"] == ROOT_V1 and rec["merkle_root"] == ROOT_V1
    assert rec["metadata"]["issued_by"] is None
    assert "note" not in rec["metadata"]
    rec = record(apply(dbx, "order", "order-1", "order_updated", "--payload",
                       '{"n": 1e2, "b": {"z": 1, "a": 2}}', "--metadata", '{"@trace": "t1"}',
                       "--note", "hello"))
    assert rec["version"] == 2
    assert rec["extensions"] == {"@trace": "t1"}
    assert rec["metadata"]["note"] == "hello"
    assert '"n": 100.0' in dbx.ok("aggregate", "replay", "order", "order-1", "--skip", "1").out


def test_apply_fields_and_empty_payload(dbx: DbxEnv) -> None:
    rec = record(apply(dbx, "user", "u1", "user_created", "--field", " name = Ann Lee ",
                       "--field", "expr=a=b", "--field", "age=42"))
    assert rec["payload"] == {"age": "42", "expr": "a=b", "name": "Ann Lee"}
    assert record(apply(dbx, "user", "u1", "user_touched"))["payload"] == {}


def test_apply_patch(dbx: DbxEnv) -> None:
    apply(dbx, "order", "o1", "order_created", "--payload", '{"status":"new","total":"5"}')
    rec = record(apply(dbx, "order", "o1", "order_updated", "--patch",
                       '[{"op":"replace","path":"/status","value":"paid"}]'))
    assert rec["payload"] == {"status": "paid"}
    state = json.loads(dbx.ok("aggregate", "get", "order", "o1").out)["state"]
    assert state == {"status": "paid", "total": "5"}


@pytest.mark.parametrize(("args", "message"), [
    (("--payload", "{}", "--field", "a=b"), "Error: --payload cannot be used together with --field"),
    (("--patch", "[]", "--payload", "{}"), "Error: --patch cannot be combined with --payload or --field"),
    (("--patch", "[]", "--field", "a=b"), "Error: --patch cannot be combined with --payload or --field"),
    (("--payload", "{1}"),
     "Error: failed to parse JSON payload provided via --payload: key must be a string at line 1 column 2"),
    (("--patch", "[x"), "Error: failed to parse JSON patch provided via --patch: expected value"),
    (("--metadata", "{"), "Error: failed to parse JSON metadata provided via --metadata: EOF while parsing"),
    (("--metadata", '{"foo": 1}'),
     "Error: invalid schema: metadata key 'foo' must start with '@' followed by letters, numbers, "
     "underscores, or hyphens"),
    (("--note", "n" * 129), "Error: note cannot exceed 128 characters"),
])
def test_apply_input_errors(dbx: DbxEnv, args: tuple[str, ...], message: str) -> None:
    res = dbx.fail("aggregate", "apply", "order", "o1", "order_created", *args)
    assert message in res.err
    assert res.err.count("\n") == 1


def test_apply_rules(dbx: DbxEnv) -> None:
    err = dbx.fail("aggregate", "apply", "order", "o1", "order_updated").err
    assert "Error: invalid schema: first event for a new aggregate must end with '_created'" in err
    err = dbx.fail("aggregate", "apply", "Order", "o1", "order_created").err
    assert "invalid schema: aggregate_type must be lowercase snake_case" in err
    apply(dbx, "order", "o1", "order_created")
    err = dbx.fail("aggregate", "apply", "order", "o1", "order_updated",
                   "--expected-version", "5").err
    assert "version conflict: expected version 5 but order::o1 is at version 1" in err
    apply(dbx, "order", "o1", "order_updated", "--expected-version", "1")
    dbx.ok("config", "--restrict", "strict")
    err = dbx.fail("aggregate", "apply", "invoice", "i1", "invoice_created").err
    assert "Error: aggregate invoice requires a schema before events can be appended when restrict=strict" in err


def test_schema_enforced_and_auto_snapshot(dbx: DbxEnv) -> None:
    dbx.ok("schema", "create", "order", "-e", "order_created,order_updated", "-s", "2")
    res = apply(dbx, "order", "o1", "order_created", "--field", "status=created")
    assert "auto snapshot" not in res.err
    err = dbx.fail("aggregate", "apply", "order", "o1", "order_deleted").err
    assert "schema violation: event order_deleted is not defined for aggregate order" in err
    res = apply(dbx, "order", "o1", "order_updated", "--field", "status=shipped")
    assert "auto snapshot created: aggregate=order aggregate_id=o1 version=2" in res.err
    assert "auto snapshot" not in res.out


def test_token_sets_issued_by(dbx: DbxEnv) -> None:
    out = dbx.ok("token", "generate", "--group", "ops", "--user", "ann",
                 "--action", "aggregate.append").out
    token = out.splitlines()[0].removeprefix("token=")
    rec = record(apply(dbx, "order", "o1", "order_created", "--token", token))
    assert rec["metadata"]["issued_by"] == {"group": "ops", "user": "ann"}
    rec = record(apply(dbx, "order", "o1", "order_updated", EVENTDBX_TOKEN=f"  {token}\n"))
    assert rec["metadata"]["issued_by"] == {"group": "ops", "user": "ann"}
    rec = record(apply(dbx, "order", "o1", "order_updated", EVENTDBX_TOKEN="   "))
    assert rec["metadata"]["issued_by"] is None
    err = dbx.fail("aggregate", "apply", "order", "o1", "order_updated", "--token", "bogus").err
    assert err.startswith("Error: ")


def test_stage_list_and_commit(dbx: DbxEnv) -> None:
    assert dbx.ok("aggregate", "list", "--stage").out == "no staged events\n"
    assert dbx.ok("aggregate", "commit").out == "no staged events to commit\n"
    res = apply(dbx, "order", "o1", "order_created", "--field", "status=new", "--stage")
    assert res.out == "event staged for later commit\n"
    apply(dbx, "order", "o1", "order_updated", "--field", "status=paid", "--stage")
    err = dbx.fail("aggregate", "apply", "order", "o2", "order_updated", "--stage").err
    assert "first event for a new aggregate must end with '_created'" in err
    staged = dbx.ok("aggregate", "list", "--stage").out
    assert '"event": "order_created"' in staged and '"event": "order_updated"' in staged
    entries = json.loads(dbx.ok("aggregate", "list", "--stage", "--json").out)
    assert [e["event"] for e in entries] == ["order_created", "order_updated"]
    assert entries[0]["aggregate"] == "order" and entries[0]["aggregate_id"] == "o1"
    err = dbx.fail("aggregate", "get", "order", "o1").err
    assert "Error: aggregate not found" in err
    res = dbx.ok("aggregate", "commit")
    assert res.out.endswith("committed 2 event(s)\n")
    assert res.out.count('"aggregate_type": "order"') == 2
    assert dbx.ok("aggregate", "list", "--stage").out == "no staged events\n"
    assert json.loads(dbx.ok("aggregate", "get", "order", "o1").out)["version"] == 2


def test_list_text_json_paging(dbx: DbxEnv) -> None:
    for i in range(1, 4):
        apply(dbx, "order", f"order-{i}", "order_created", "--field", "status=created")
    apply(dbx, "account", "a1", "account_created")
    lines = dbx.ok("aggregate", "list").out.splitlines()
    assert lines[0].startswith("aggregate_type=account aggregate_id=a1 version=1 merkle_root=")
    assert lines[1] == f"aggregate_type=order aggregate_id=order-1 version=1 merkle_root={ROOT_V1} archived=false"
    assert len(lines) == 4
    assert len(dbx.ok("aggregate", "list", "--skip", "1", "--take", "2").out.splitlines()) == 2
    docs = json.loads(dbx.ok("aggregate", "list", "--json").out)
    assert list(docs[1]) == ["aggregate_type", "aggregate_id", "version", "state", "merkle_root", "archived"]
    assert docs[1]["state"] == {"status": "created"}
    dbx.ok("config", "--list-page-size", "2")
    assert len(dbx.ok("aggregate", "list").out.splitlines()) == 2


def test_get_versions_and_events(dbx: DbxEnv) -> None:
    apply(dbx, "order", "order-1", "order_created", "--field", "status=created")
    apply(dbx, "order", "order-1", "order_updated", "--field", "status=shipped", "--field", "b=1")
    res = dbx.ok("aggregate", "get", "order", "order-1")
    doc = json.loads(res.out)
    assert list(doc) == ["aggregate_id", "aggregate_type", "archived", "merkle_root", "state", "version"]
    assert doc["state"] == {"b": "1", "status": "shipped"} and doc["version"] == 2
    old = json.loads(dbx.ok("aggregate", "get", "order", "order-1", "--version", "1").out)
    assert old["version"] == 1 and old["state"] == {"status": "created"} and old["merkle_root"] == ROOT_V1
    zero = json.loads(dbx.ok("aggregate", "get", "order", "order-1", "--version", "0").out)
    assert zero["state"] == {} and zero["merkle_root"] == EMPTY_ROOT
    big = json.loads(dbx.ok("aggregate", "get", "order", "order-1", "--version", "99").out)
    assert big["version"] == 2
    with_events = json.loads(dbx.ok("aggregate", "get", "order", "order-1", "--version", "1",
                                    "--include-events").out)
    assert list(with_events) == ["aggregate_id", "aggregate_type", "archived", "events",
                                 "merkle_root", "state", "version"]
    assert [e["version"] for e in with_events["events"]] == [1]
    event = with_events["events"][0]
    assert list(event) == sorted(event) and list(event["metadata"]) == sorted(event["metadata"])
    assert "Error: aggregate not found" in dbx.fail("aggregate", "get", "order", "nope").err


def test_replay(dbx: DbxEnv) -> None:
    for event in ("order_created", "order_updated", "order_shipped"):
        apply(dbx, "order", "o1", event)
    events = json.loads(dbx.ok("aggregate", "replay", "order", "o1", "--json").out)
    assert [e["event_type"] for e in events] == ["order_created", "order_updated", "order_shipped"]
    skipped = json.loads(dbx.ok("aggregate", "replay", "order", "o1", "--skip", "1", "--json").out)
    assert skipped[0]["version"] == 2
    taken = json.loads(dbx.ok("aggregate", "replay", "order", "o1", "--skip", "1", "--take", "1",
                              "--json").out)
    assert [e["version"] for e in taken] == [2]
    text = dbx.ok("aggregate", "replay", "order", "o1").out
    assert text.count('"aggregate_type": "order"') == 3
    assert "aggregate not found" in dbx.fail("aggregate", "replay", "order", "zz").err


def test_verify(dbx: DbxEnv) -> None:
    apply(dbx, "order", "order-1", "order_created", "--field", "status=created")
    res = dbx.ok("aggregate", "verify", "order", "order-1")
    assert res.out == f"aggregate_type=order aggregate_id=order-1 merkle_root={ROOT_V1}\n"
    doc = json.loads(dbx.ok("aggregate", "verify", "order", "order-1", "--json").out)
    assert doc == {"aggregate_id": "order-1", "aggregate_type": "order", "merkle_root": ROOT_V1}
    assert list(doc) == ["aggregate_id", "aggregate_type", "merkle_root"]
    assert "aggregate not found" in dbx.fail("aggregate", "verify", "order", "x").err


def test_snapshot_archive_restore_remove(dbx: DbxEnv) -> None:
    apply(dbx, "order", "o1", "order_created", "--field", "status=created")
    snap = json.loads(dbx.ok("aggregate", "snapshot", "order", "o1", "--comment", "c1").out)
    assert snap["aggregate_id"] == "o1" and snap["state"]["status"] == "created"
    assert snap["comment"] == "c1" and snap["version"] == 1
    res = dbx.ok("aggregate", "archive", "order", "o1", "--comment", "old")
    assert res.out == "aggregate_type=order aggregate_id=o1 archived=true comment=old\n"
    assert "archived=true" in dbx.ok("aggregate", "list").out
    err = dbx.fail("aggregate", "apply", "order", "o1", "order_updated").err
    assert "aggregate is archived and cannot accept new events" in err
    res = dbx.ok("aggregate", "restore", "order", "o1")
    assert res.out == "aggregate_type=order aggregate_id=o1 archived=false comment=\n"
    apply(dbx, "order", "o1", "order_updated")
    err = dbx.fail("aggregate", "remove", "order", "o1").err
    assert "storage error: aggregate order:o1 cannot be removed while events exist" in err
    assert "Error: aggregate not found" in dbx.fail("aggregate", "remove", "order", "o9").err
    apply(dbx, "order", "o2", "order_created", "--stage")
    res = dbx.ok("aggregate", "remove", "order", "o2")
    assert res.out == "aggregate_type=order aggregate_id=o2 removed\n"
    assert dbx.ok("aggregate", "list", "--stage").out == "no staged events\n"


@pytest.mark.parametrize("args", [
    ("list",), ("list", "--json"), ("get", "order", "o1"), ("replay", "order", "o1"),
    ("verify", "order", "o1"), ("export", "order", "--output", "out.csv"),
])
def test_reads_need_an_event_store(dbx: DbxEnv, args: tuple[str, ...]) -> None:
    err = dbx.fail("aggregate", *args).err
    path = dbx.data_dir / "event_store.db"
    assert f"Error: storage error: event store not initialised at {path}" in err
    assert not path.exists()


BAD_INPUTS: list[tuple[tuple[str, ...], int]] = [
    (("apply",), 2),
    (("apply", "order", "o1"), 2),
    (("apply", "order", "o1", "order_created", "--field", "novalue"), 2),
    (("apply", "order", "o1", "order_created", "--field", "=v"), 2),
    (("apply", "order", "o1", "order_created", "--expected-version", "x"), 2),
    (("apply", "order", "o1", "order_created", "--expected-version", "-1"), 2),
    (("apply", "order", "o1", "order_created", "--bogus"), 2),
    (("list", "--take", "x"), 2),
    (("get", "order"), 2),
    (("replay", "order", "o1", "--skip", "-3"), 2),
    (("nonsense",), 2),
    (("apply", "order", " o1", "order_created"), 1),
    (("apply", "order", "o/1", "order_created"), 1),
    (("apply", "order", "o1", "order_created", "--payload", ""), 1),
    (("apply", "order", "o1", "order_created", "--payload", "[" * 200), 1),
    (("apply", "order", "o1", "order_created", "--payload", '{"a": 1e999}'), 1),
    (("apply", "order", "o1", "order_created", "--patch", "{}"), 1),
    (("apply", "order", "o1", "order_created", "--patch", '[{"op":"move","path":"/a"}]'), 1),
    (("apply", "order", "o1", "order_created", "--metadata", "[]"), 1),
    (("apply", "order", "o1", "order_created", "--payload", '"\\ud800"'), 1),
    (("get", "order", "missing"), 1),
    (("verify", "order", "missing", "--json"), 1),
]


@pytest.mark.parametrize(("args", "code"), BAD_INPUTS)
def test_bad_input_is_one_line(dbx: DbxEnv, args: tuple[str, ...], code: int) -> None:
    dbx.ok("schema", "list")  # creates the event store
    res = dbx.fail("aggregate", *args, code=code)
    if code == 1:
        assert res.err.startswith("Error: ") and res.err.count("\n") == 1, res.err
    else:
        assert res.err.startswith("error: "), res.err
    assert res.out == ""


def test_direct_writes_enqueue_plugin_jobs(dbx: DbxEnv) -> None:
    dbx.ok("plugin", "config", "log", "--name", "lg")
    apply(dbx, "order", "o1", "order_created")
    assert dbx.ok("queue").out.startswith("pending=1 ")
    apply(dbx, "order", "o1", "order_updated", "--stage")
    assert dbx.ok("queue").out.startswith("pending=1 ")
    dbx.ok("aggregate", "commit")
    assert dbx.ok("queue").out.startswith("pending=2 ")


def test_missing_arguments_are_usage_errors(dbx: DbxEnv) -> None:
    err = dbx.fail("aggregate", "apply", "order", "o1", code=2).err
    assert err.startswith("error: the following required arguments were not provided")
    assert "Usage: dbx aggregate apply" in err
    err = dbx.fail("aggregate", "export", "order", code=2).err
    assert "the following required arguments were not provided" in err
    assert "unrecognized subcommand 'bogus'" in dbx.fail("aggregate", "bogus", code=2).err


def test_failed_commit_keeps_entries(dbx: DbxEnv) -> None:
    apply(dbx, "order", "o1", "order_created", "--expected-version", "0", "--stage")
    apply(dbx, "order", "o2", "order_created", "--stage")
    apply(dbx, "order", "o1", "order_created")
    err = dbx.fail("aggregate", "commit").err
    assert "version conflict: expected version 0 but order::o1 is at version 1" in err
    staged = json.loads(dbx.ok("aggregate", "list", "--stage", "--json").out)
    assert [e["aggregate_id"] for e in staged] == ["o1", "o2"]
    assert staged[0]["expected_version"] == 0
    assert "aggregate not found" in dbx.fail("aggregate", "get", "order", "o2").err
