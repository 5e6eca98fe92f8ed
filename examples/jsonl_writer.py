#!/usr/bin/env python3
"""Example process plugin: append every event as one JSON line to a file.

    dbx plugin install jsonl 0.1.0 --source examples/jsonl_writer.py
    dbx plugin config process jsonl --payload all --ack --env EVENTS_FILE=/tmp/events.jsonl
"""

import json
import os

from eventdbx.plugin import Plugin

plugin = Plugin()
path = os.environ.get("EVENTS_FILE", "events.jsonl")


@plugin.on_event
def write(event):
    record = {"event_id": event.event_id, "aggregate": f"{event.aggregate_type}::{event.aggregate_id}",
              "version": event.version, "event_type": event.event_type, "payload": event.payload,
              "state": dict(event.state.entries) if event.state else None}
    with open(path, "a", encoding="utf-8") as out:   # one line per delivery (at-least-once)
        out.write(json.dumps(record, sort_keys=True) + "\n")


if __name__ == "__main__":
    plugin.run()
