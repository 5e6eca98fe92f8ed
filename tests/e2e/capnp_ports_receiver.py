"""A Cap'n Proto receiver process listening on several ports, built from the tests' own copy of plugin.capnp.

Run as a script: argv = one policy per port (`ack` answers every event, `none` never answers). Prints one
JSON line with the ports, then one JSON line per received envelope: the decoded PluginEvent fields plus
`listener` (index of the port) and `connection`. (pycapnp aborts when two schemas with the same file id load in one process, so
this must not share a process with eventdbx's own schema.)
"""

import asyncio
import itertools
import json
import sys
from pathlib import Path

import capnp

SCHEMA = capnp.load(
    str(Path(__file__).parents[1] / "integration" / "capnp_sink" / "receiver_plugin.capnp")
)
CONNECTIONS = itertools.count(1)


def serve(port_no: int, policy: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = next(CONNECTIONS)
        try:
            while True:
                head = await reader.readexactly(4)
                segments = int.from_bytes(head, "little") + 1
                table = await reader.readexactly(4 * segments + (4 if segments % 2 == 0 else 0))
                words = sum(
                    int.from_bytes(table[i * 4 : i * 4 + 4], "little") for i in range(segments)
                )
                body = await reader.readexactly(8 * words)
                with SCHEMA.PluginEnvelope.from_bytes(head + table + body) as env:
                    which = env.which()
                    record = env.event.to_dict() if which == "event" else {}
                record.update(variant=which, listener=port_no, connection=connection)
                print(json.dumps(record), flush=True)
                if policy == "ack" and which == "event":
                    reply = SCHEMA.PluginEnvelope.new_message()
                    reply.init("ack").sequence = record["sequence"]
                    writer.write(reply.to_bytes())
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def main() -> None:
    servers = []
    for policy in sys.argv[1:]:
        server = await asyncio.start_server(serve(len(servers), policy), "127.0.0.1", 0)
        servers.append(server)
    print(json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    await asyncio.wait_for(asyncio.get_running_loop().create_future(), 300)  # bounded lifetime


if __name__ == "__main__":
    asyncio.run(main())
