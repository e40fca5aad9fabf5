"""Real local HTTP servers for the PSP adapter's tests: raw sockets, so each can misbehave on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# (method, raw request target) -> (status, body)
Answer = Callable[[str, str], tuple[int, bytes]]


@asynccontextmanager
async def raw_server(behaviour: Behaviour) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that treats every connection with ``behaviour``; yields its base URL."""
    server = await asyncio.start_server(behaviour, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request, head and body (Content-Length only: that is what the adapter sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def answering(answer: Answer) -> Behaviour:
    """A well-behaved server: each request on a connection gets ``answer(method, raw target)``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
                status, body = answer(method, target)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return serve
