"""`dbx queue …` end to end through the real `dbx` (plugins.md §10.2), without a daemon."""

from __future__ import annotations

import json
import re

import pytest
from plugin_support.queue_edit import claim_jobs, deliver_jobs, kill_jobs
from tests.conftest import DbxEnv

pytestmark = pytest.mark.timeout(300)


def _apply(dbx: DbxEnv, aggregate_id: str, count: int, *, aggregate: str = "order") -> None:
    dbx.ok("aggregate", "apply", aggregate, aggregate_id, f"{aggregate}_created", "--field", "n=0")
    for n in range(1, count):
        dbx.ok(
            "aggregate",
            "apply",
            aggregate,
            aggregate_id,
            f"{aggregate}_updated",
            "--field",
            f"n={n}",
        )


def _hook(dbx: DbxEnv, name: str = "hook", *extra: str) -> None:
    dbx.ok("plugin", "config", "http", "--name", name, "--endpoint", "http://127.0.0.1:9/x", *extra)


@pytest.fixture
def jobs3(dbx: DbxEnv) -> DbxEnv:
    """One http plugin `hook` and three pending jobs (order/o-1 v1..v3)."""
    _hook(dbx)
    _apply(dbx, "o-1", 3)
    return dbx


def test_empty_queue_prints_exactly_the_counts(dbx: DbxEnv) -> None:
    assert dbx.ok("queue").out == "pending=0 processing=0 done=0 dead=0\n"
    doc = json.loads(dbx.ok("queue", "--json").out)
    assert doc == {
        "counts": {"pending": 0, "processing": 0, "done": 0, "dead": 0},
        "dispatcher": {"running": False, "pid": None},
        "plugins": [],
        "jobs": [],
    }


@pytest.mark.parametrize(
    ("args", "summary"),
    [
        (["queue"], "Show or manage the plugin retry queue"),
        (["queue", "clear"], "Remove all dead entries from the queue"),
        (["queue", "retry"], "Retry dead entries, optionally filtering by job id"),
        (["queue", "clear-done"], "Remove completed entries from the queue"),
        (["queue", "show"], "Show one job with its payload and attempt history"),
        (["queue", "skip"], "Mark a job done without delivering it"),
    ],
)
def test_help_texts(dbx: DbxEnv, args: list[str], summary: str) -> None:
    assert summary in dbx.ok(*args, "--help").out


def test_sections_plugins_block_and_limits(jobs3: DbxEnv) -> None:
    dbx = jobs3
    out = dbx.ok("queue").out
    lines = out.splitlines()
    assert lines[0] == "pending=3 processing=0 done=0 dead=0"
    assert re.fullmatch(r"dispatcher=not-running oldest_pending=\d+s", lines[1])
    assert lines[2:4] == ["", "Plugins:"]
    assert re.fullmatch(
        r"  http \(hook\) state=no-dispatcher unqueued=0 pending=3 processing=0 dead=0 blocked=0 "
        r"oldest_pending=\d+s last_success=- circuit=closed",
        lines[4],
    )
    assert lines[5:7] == ["", "Pending jobs:"]
    job_lines = lines[7:]
    assert len(job_lines) == 3
    for line in job_lines:
        assert re.fullmatch(
            r'  id=\d+ plugin="http \(hook\)" status="pending" attempts=0 next_retry=- last_error=-',
            line,
        )
    ids = [int(re.search(r"id=(\d+)", line).group(1)) for line in job_lines]  # type: ignore[union-attr]
    assert ids == sorted(ids)
    limited = dbx.ok("queue", "--limit", "2").out.splitlines()
    assert limited[-1] == "  … and 1 more (use --limit 0 to list all)"
    assert len([x for x in limited if x.startswith("  id=")]) == 2
    assert len([x for x in dbx.ok("queue", "--limit", "0").out.splitlines() if "id=" in x]) == 3
    assert "Done jobs:" not in out


def test_processing_dead_done_sections_and_status_filter(jobs3: DbxEnv) -> None:
    dbx = jobs3
    _apply(dbx, "o-2", 2)
    [dead] = kill_jobs(dbx.data_dir, "hook", 1, error="line one\nline two")
    [done] = deliver_jobs(dbx.data_dir, "hook", 1)
    [busy] = claim_jobs(dbx.data_dir, "hook", 1)
    out = dbx.ok("queue").out
    assert out.startswith("pending=2 processing=1 done=1 dead=1\n")
    assert out.index("Pending jobs:") < out.index("Processing jobs:") < out.index("Dead jobs:")
    assert (
        f'  id={dead} plugin="http (hook)" status="dead" attempts=1 next_retry=- '
        "last_error=line one line two" in out.splitlines()
    )
    assert f'id={busy} plugin="http (hook)" status="processing" attempts=1' in out
    assert "Done jobs:" not in out and f"id={done}" not in out
    done_out = dbx.ok("queue", "--status", "done").out
    assert "\nDone jobs:\n" in done_out
    assert f'  id={done} plugin="http (hook)" status="done" attempts=1' in done_out
    assert "Pending jobs:" not in done_out and "Dead jobs:" not in done_out
    doc = json.loads(dbx.ok("queue", "--json").out)
    assert doc["counts"] == {"pending": 2, "processing": 1, "done": 1, "dead": 1}
    [entry] = doc["plugins"]
    assert list(entry) == [
        "name",
        "label",
        "enabled",
        "emit_events",
        "ordering",
        "state",
        "circuit",
        "unqueued",
        "pending",
        "processing",
        "dead",
        "blocked_aggregates",
        "oldest_pending_secs",
        "last_attempt_at",
        "last_success_at",
        "last_error",
    ]
    assert entry["label"] == "http (hook)" and entry["dead"] == 1
    statuses = [job["status"] for job in doc["jobs"]]
    assert sorted(statuses) == ["dead", "pending", "pending", "processing"]
    job = doc["jobs"][0]
    assert list(job)[:4] == ["id", "plugin", "plugin_name", "status"]
    assert "lease_expires_at" not in job and "history" not in job
    assert isinstance(job["payload"], dict) and job["plugin"] == "http (hook)"


def test_plugin_filter_by_name_or_label(dbx: DbxEnv) -> None:
    _hook(dbx, "a")
    _hook(dbx, "b")
    _apply(dbx, "o-1", 2)
    assert dbx.ok("queue").out.startswith("pending=4 ")
    for selector in ("a", "http (a)"):
        out = dbx.ok("queue", "--plugin", selector).out
        assert out.startswith("pending=2 processing=0 done=0 dead=0\n")
        assert "http (b)" not in out
    assert dbx.ok("queue", "--plugin", "b", "--json").out.count('"plugin": "http (b)"') == 2


def test_retry_messages_and_summary(jobs3: DbxEnv) -> None:
    dbx = jobs3
    none = dbx.ok("queue", "retry")
    assert none.out.strip() == "no dead plugin jobs to retry"
    assert (
        "no dead plugin jobs match the provided id"
        in dbx.ok("queue", "retry", "--event-id", "12345").out
    )
    first, second = kill_jobs(dbx.data_dir, "hook", 2)
    one = dbx.ok("queue", "retry", "--event-id", str(first))
    assert one.out.strip() == "retry summary: retried 1 job(s), 1 still dead"
    assert (
        "note: the daemon is not running; retried jobs will be delivered when it starts" in one.err
    )
    assert "note:" not in one.out
    assert (
        "no dead plugin jobs match the provided id"
        in dbx.ok("queue", "retry", "--event-id", str(first)).out
    )
    all_ = dbx.ok("queue", "retry")
    assert all_.out.strip() == "retry summary: retried 1 job(s), 0 still dead"
    shown = json.loads(dbx.ok("queue", "show", str(second)).out)
    assert shown["status"] == "pending" and shown["attempts"] == 0
    assert [h["outcome"] for h in shown["history"]][-1] == "retried"


def test_retry_for_a_disabled_plugin_still_resets(jobs3: DbxEnv) -> None:
    dbx = jobs3
    kill_jobs(dbx.data_dir, "hook", 1)
    dbx.ok("plugin", "disable", "hook")
    res = dbx.ok("queue", "retry")
    assert res.out.strip() == "no enabled plugins available to process retries"
    assert dbx.ok("queue").out.startswith("pending=3 processing=0 done=0 dead=0")


def test_clear_prompt_cancel_and_confirm(jobs3: DbxEnv) -> None:
    dbx = jobs3
    assert dbx.ok("queue", "clear", input="").out.strip() == "no dead plugin jobs to clear"
    kill_jobs(dbx.data_dir, "hook", 2)
    prompt = "This will remove 2 dead plugin job(s). Type 'clear' to confirm: "
    for answer in ("", "no\n", "clearly\n"):
        res = dbx.ok("queue", "clear", input=answer)
        assert res.out.startswith(prompt)
        assert res.out.rstrip().endswith("clear cancelled")
    assert "dead=2" in dbx.ok("queue").out
    res = dbx.ok("queue", "clear", input="  CLEAR \n")
    assert res.out.startswith(prompt)
    assert res.out.rstrip().endswith("cleared 2 dead job(s) from the plugin queue")
    assert dbx.ok("queue").out.startswith("pending=1 processing=0 done=0 dead=0")
    kill_jobs(dbx.data_dir, "hook", 1)
    res = dbx.ok("queue", "clear", "--yes")
    assert res.out == "cleared 1 dead job(s) from the plugin queue\n"


def test_clear_done(jobs3: DbxEnv) -> None:
    dbx = jobs3
    none = "no done plugin jobs match the provided criteria"
    assert dbx.ok("queue", "clear-done", input="").out.strip() == none
    deliver_jobs(dbx.data_dir, "hook", 2)
    assert dbx.ok("queue", "clear-done", "--older-than-hours", "1").out.strip() == none
    res = dbx.ok("queue", "clear-done", input="nope\n")
    assert res.out.startswith("This will remove 2 done plugin job(s). Type 'clear' to confirm: ")
    assert res.out.rstrip().endswith("clear cancelled")
    res = dbx.ok("queue", "clear-done", "--older-than-hours", "0", "--yes")
    assert res.out == "cleared 2 done job(s) from the plugin queue\n"
    assert dbx.ok("queue").out.startswith("pending=1 processing=0 done=0 dead=0")


def test_show_and_skip(jobs3: DbxEnv) -> None:
    dbx = jobs3
    assert "Error: job 42 not found" in dbx.fail("queue", "show", "42").err
    bad = dbx.fail("queue", "show", "x", code=2)
    assert "invalid job id 'x'" in bad.err
    assert "invalid job id '1.5'" in dbx.fail("queue", "skip", "1.5", code=2).err
    [dead] = kill_jobs(dbx.data_dir, "hook", 1)
    detail = json.loads(dbx.ok("queue", "show", str(dead)).out)
    assert detail["id"] == str(dead) and detail["status"] == "dead"
    assert detail["aggregate_type"] == "order" and detail["version"] == 1
    assert {"lease_expires_at", "blocked_by", "held_back", "history"} <= set(detail)
    assert len(detail["held_back"]) == 2
    assert detail["history"][0]["outcome"] == "permanent"
    assert detail["payload"]["event"]["aggregate_id"] == "o-1"
    res = dbx.ok("queue", "skip", str(dead))
    assert res.out.strip() == (
        f"skipped job {dead} (http (hook)) for order::o-1 v1; released 2 held job(s)"
    )
    again = dbx.fail("queue", "skip", str(dead))
    assert f"Error: job {dead} is already done" in again.err
    assert "Error: job 7 not found" in dbx.fail("queue", "skip", "7").err
    skipped = json.loads(dbx.ok("queue", "show", str(dead)).out)
    assert skipped["status"] == "done" and skipped["resolution"] == "skipped"
    [busy] = claim_jobs(dbx.data_dir, "hook", 1)
    err = dbx.fail("queue", "skip", str(busy)).err
    assert f"job {busy} is being delivered; try again when the attempt finishes" in err


def test_seed_examples(jobs3: DbxEnv) -> None:
    """The seed document's `dbx queue` examples run as written."""
    dbx = jobs3
    [dead] = kill_jobs(dbx.data_dir, "hook", 1)
    assert "Dead jobs:" in dbx.ok("queue").out
    assert "retry summary" in dbx.ok("queue", "retry", "--event-id", str(dead)).out
    kill_jobs(dbx.data_dir, "hook", 1)
    assert "retry summary" in dbx.ok("queue", "retry").out
    kill_jobs(dbx.data_dir, "hook", 1)
    assert "cleared 1 dead job(s)" in dbx.ok("queue", "clear", input="clear\n").out
    deliver_jobs(dbx.data_dir, "hook", 1)
    res = dbx.ok("queue", "clear-done", "--older-than-hours", "0", input="clear\n")
    assert "cleared 1 done job(s) from the plugin queue" in res.out
