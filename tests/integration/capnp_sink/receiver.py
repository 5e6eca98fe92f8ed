"""A Cap'n Proto plugin receiver in its own process, built from the tests' copy of plugin.capnp.

(pycapnp aborts when two schema files with the same file id load in one process, and a real receiver is
another process anyway.) Prints its port, then one JSON line per received event on stdout.
Policy (argv[1]): `ack`, `none`, `close`, `bogus-first` (first connection answers an unknown sequence),
or `errors:<seq>=<message>;…` (ack the rest).
"""

import asyncio
import json
import sys
from pathlib import Path

import capnp

SCHEMA = capnp.load(str(Path(__file__).with_name("receiver_plugin.capnp")))
POLICY = sys.argv[1]
ERRORS = (
    dict(item.split("=", 1) for item in POLICY[7:].split(";"))
    if POLICY.startswith("errors:")
    else {}
)
state = {"connections": 0}


def answer(seq: int) -> str:
    if POLICY == "bogus-first" and state["connections"] == 1:
        return "bogus"
    if str(seq) in ERRORS:
        return "error:" + ERRORS[str(seq)]
    return {"none": "none", "close": "close"}.get(POLICY, "ack")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    state["connections"] += 1
    try:
        while True:
            head = await reader.readexactly(4)
            segments = int.from_bytes(head, "little") + 1
            table = await reader.readexactly(4 * segments + (4 if segments % 2 == 0 else 0))
            words = sum(int.from_bytes(table[i * 4 : i * 4 + 4], "little") for i in range(segments))
            body = await reader.readexactly(8 * words)
            with SCHEMA.PluginEnvelope.from_bytes(head + table + body) as env:
                event = env.event.to_dict() if env.which() == "event" else {"variant": env.which()}
            event["connection"] = state["connections"]
            print(json.dumps(event), flush=True)
            reply = SCHEMA.PluginEnvelope.new_message()
            kind = answer(event.get("sequence", 0))
            if kind == "none":
                continue
            if kind == "close":
                return
            if kind == "bogus":
                reply.init("ack").sequence = 999
            elif kind.startswith("error:"):
                err = reply.init("error")
                err.sequence = event["sequence"]
                err.message = kind[6:]
            else:
                reply.init("ack").sequence = event["sequence"]
            writer.write(reply.to_bytes())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(asyncio.get_running_loop().create_future(), 120)  # bounded lifetime


asyncio.run(main())
