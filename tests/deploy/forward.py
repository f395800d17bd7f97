"""A TCP forwarder for the two-host test: ``python forward.py LISTEN=TARGET ...``.

Each argument is ``host:port=host:port``. The test's PostgreSQL and Redis listen only on
the root namespace's 127.0.0.1, which the app hosts' namespaces cannot reach; this
listens on an address they can (the "database host" of the test network) and passes
bytes both ways. It prints ``ready`` once every listener is bound, and runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

CHUNK = 65536  # bytes read at a time


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` into ``writer`` until either side closes."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def handler(host: str, port: int):  # type: ignore[no-untyped-def]
    """A connection handler that opens a connection to ``host:port`` and joins the two."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, target_w), pipe(target_r, client_w))

    return handle


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def main(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        listen, _, target = pair.partition("=")
        servers.append(await asyncio.start_server(handler(*split(target)), *split(listen)))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
