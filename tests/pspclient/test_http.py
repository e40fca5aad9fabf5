"""The PSP transport's failure classification against real sockets: only a connection that was never made
is "not sent"; every failure after connecting may have reached the PSP."""

from __future__ import annotations

import asyncio
import socket
import struct
from contextlib import suppress

import pytest

from payments.devstack.ports import free_port
from payments.pspclient.http import MaybeSent, NotSent, PspHttp, PspStatusError, Reply
from payments.pspclient.money import AnswerKind, PspClient, build_call
from payments.schemas.psp import PspRequest, PspRequestKind
from tests.pspclient.support import Behaviour, raw_server, read_request


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await reader.read()  # until the client gives up and closes
    writer.close()


async def reset_after_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    writer.transport.abort()


async def truncated_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    writer.close()


async def garbage_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"this is not HTTP\r\n\r\n")
    await writer.drain()
    writer.close()


def req() -> PspRequest:
    return PspRequest(
        op_id="pay_1", account_id="acct_1", kind=PspRequestKind.TRANSFER, amount=100, currency="EUR",
        payee="shop", issued_at=1, deadline_at=2, seq=1,
    )  # fmt: skip


async def post(url: str, timeout_s: float = 2.0) -> Reply:
    http = PspHttp(url, timeout_s=timeout_s, max_connections=4)
    try:
        return await http.request("POST", "/v1/transfers", body={"amount": 1})
    finally:
        await http.aclose()


async def test_a_refused_connection_is_not_sent() -> None:
    with pytest.raises(NotSent) as caught:
        await post(f"http://127.0.0.1:{free_port()}")
    assert caught.value.detail == "ClientConnectorError"


async def test_a_name_that_does_not_resolve_is_not_sent() -> None:
    with pytest.raises(NotSent) as caught:
        await post("http://psp.does-not-exist.invalid", timeout_s=5.0)
    assert caught.value.detail == "ClientConnectorDNSError"


async def test_a_connect_time_out_is_not_sent() -> None:
    # A listener that never accepts, with its backlog filled: further connections hang in SYN-SENT.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        with pytest.raises(NotSent) as caught:
            await post(f"http://127.0.0.1:{port}", timeout_s=0.3)
        assert caught.value.detail == "ConnectionTimeoutError"
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.mark.parametrize(
    ("behaviour", "detail"),
    [
        # Closed before or while the request is written: which error depends on the race.
        (close_at_once, {"ServerDisconnectedError", "ClientOSError"}),
        (never_answer, {"SocketTimeoutError"}),
        (reset_after_reading, {"ClientOSError"}),
        (truncated_answer, {"ClientPayloadError"}),
        (garbage_answer, {"ClientResponseError"}),
    ],
)
async def test_failures_after_connecting_may_have_been_sent(behaviour: Behaviour, detail: set[str]) -> None:
    async with raw_server(behaviour) as url:
        with pytest.raises(MaybeSent) as caught:
            await post(url, timeout_s=0.3)
    assert caught.value.detail in detail


async def test_the_money_client_maps_not_sent_to_unavailable_and_maybe_sent_to_ambiguous() -> None:
    call = build_call(req())
    refused = PspClient(PspHttp(f"http://127.0.0.1:{free_port()}", timeout_s=1, max_connections=1))
    try:
        down = await refused.attempt(call)
    finally:
        await refused.aclose()
    assert (down.kind, down.status_code) == (AnswerKind.UNAVAILABLE, None)
    async with raw_server(never_answer) as url:
        client = PspClient(PspHttp(url, timeout_s=0.3, max_connections=1))
        try:
            lost = await client.attempt(call)
        finally:
            await client.aclose()
    assert (lost.kind, lost.status_code, lost.detail) == (AnswerKind.AMBIGUOUS, None, "SocketTimeoutError")


async def test_get_json_needs_a_200() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        status = b"200 OK" if b" /ok " in request else b"503 Service Unavailable"
        writer.write(b"HTTP/1.1 " + status + b'\r\nContent-Length: 8\r\n\r\n{"a": 1}')
        await writer.drain()
        writer.close()

    async with raw_server(answer) as url:
        http = PspHttp(url, timeout_s=2, max_connections=2)
        try:
            assert await http.get_json("/ok") == {"a": 1}
            with pytest.raises(PspStatusError) as caught:
                await http.get_json("/down")
        finally:
            await http.aclose()
    assert caught.value.status == 503
