#!/usr/bin/env python3
"""Example process plugin: a SQLite read model that applies each event exactly once.

The read model stores the last applied version per aggregate in the same transaction as the
projection, so a redelivered event (delivery is at-least-once) is recognised and skipped.

    dbx plugin install orders 0.1.0 --source examples/sqlite_read_model.py
    dbx plugin config process orders --payload all --ack --env READ_MODEL_DB=/tmp/orders.db
"""

import os
import sqlite3

from eventdbx.plugin import Plugin, Reject

plugin = Plugin()
db = sqlite3.connect(os.environ.get("READ_MODEL_DB", "read_model.db"))
db.execute("create table if not exists aggregates(aggregate_type text, aggregate_id text, version integer,"
           " status text, total text, applied integer default 0, primary key (aggregate_type, aggregate_id))")
db.commit()


@plugin.on_init
def started(init):
    plugin.log.info("started %s %s on %s", init.plugin_name, init.version, init.target)


@plugin.on_event
def project(event):
    if event.state is None:
        raise Reject("needs --payload all or state-only")
    with db:
        row = db.execute("select version from aggregates where aggregate_type=? and aggregate_id=?",
                         (event.aggregate_type, event.aggregate_id)).fetchone()
        if row is not None and row[0] >= event.version:
            return  # already applied: redelivery after a crash or a retry
        db.execute(
            "insert into aggregates values (?,?,?,?,?,1) on conflict(aggregate_type, aggregate_id) do update"
            " set version=excluded.version, status=excluded.status, total=excluded.total,"
            " applied=aggregates.applied+1",
            (event.aggregate_type, event.aggregate_id, event.version,
             event.state.entries.get("status"), event.state.entries.get("total")))


if __name__ == "__main__":
    plugin.run()
