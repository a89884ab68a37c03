"""sioclient.websocket: the client WebSocket on aiohttp's handshake and sioserver's RFC 6455 core."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_proto import ResponseHandler
from aiohttp.test_utils import TestServer
from sioclient.exceptions import WebSocketClosed, WebSocketHandshakeError
from sioclient.websocket import DeflateOffer, connect

from sioserver.proto.websocket import OP_TEXT, encode_frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def echo_handler(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(compress=request.query.get("compress") == "1", max_msg_size=8 * 2**20)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            if msg.data == "close-me":
                await ws.close(code=4001, message=b"bye")
                break
            await ws.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def refuse_handler(request: web.Request) -> web.StreamResponse:
    return web.json_response({"code": 3, "message": "Bad request"}, status=400)


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/echo", echo_handler)
    app.router.add_get("/refuse", refuse_handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"ws://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[RawHandler], Awaitable[str]]]:
    """A hand-written server: the handler gets the client's Sec-WebSocket-Key after the request head."""
    servers: list[asyncio.Server] = []

    async def start(handler: RawHandler) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            try:
                await handler(reader, writer, key)
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def switching(key: str, extra: str = "") -> bytes:
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


def test_aiohttp_takeover_hook_is_there() -> None:
    """The connection is taken over with ResponseHandler.set_parser(parser, payload), as ws_connect does."""
    params = list(inspect.signature(ResponseHandler.set_parser).parameters)
    assert params[:3] == ["self", "parser", "payload"]
    assert callable(getattr(ResponseHandler, "_drain_helper", None))


async def test_echo_text_binary_and_large(echo_url: str, session: aiohttp.ClientSession) -> None:
    ws = await connect(f"{echo_url}/echo", session=session, compression=False)
    assert not ws.deflate
    await ws.send("héllo")
    assert await ws.recv() == "héllo"
    await ws.send(b"\x00\xff" * 10)
    assert await ws.recv() == b"\x00\xff" * 10
    big = bytes(range(256)) * 4096  # 1 MiB: 64-bit length, streamed in pieces
    await ws.send(big)
    assert await ws.recv() == big
    await ws.close()
    assert ws.close_code == 1000
    with pytest.raises(WebSocketClosed):
        await ws.send("late")


async def test_permessage_deflate_with_aiohttp(echo_url: str, session: aiohttp.ClientSession) -> None:
    ws = await connect(f"{echo_url}/echo?compress=1", session=session)
    assert ws.deflate
    assert "permessage-deflate" in ws.response_headers["Sec-WebSocket-Extensions"]
    text = "sioclient " * 20000
    for _ in range(3):  # context takeover across messages
        await ws.send(text)
        assert await ws.recv() == text
    await ws.close()


async def test_ping_and_server_close(echo_url: str, session: aiohttp.ClientSession) -> None:
    ws = await connect(f"{echo_url}/echo", session=session)
    pong = await ws.ping(b"abc")
    await asyncio.wait_for(pong, 2)
    await ws.send("close-me")
    with pytest.raises(WebSocketClosed) as info:
        await asyncio.wait_for(ws.recv(), 2)
    assert (info.value.code, info.value.reason) == (4001, "bye")
    await asyncio.wait_for(ws.wait_closed(), 3)


async def test_handshake_refused_carries_status_and_body(echo_url: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(WebSocketHandshakeError) as info:
        await connect(f"{echo_url}/refuse", session=session)
    assert info.value.status == 400
    assert b"Bad request" in info.value.body


async def test_frames_right_behind_the_101_are_not_lost(
    raw_server: Callable[[RawHandler], Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        # the 101 and two frames in one segment: they land in aiohttp's tail before the takeover
        writer.write(switching(key) + encode_frame(OP_TEXT, b"first") + encode_frame(OP_TEXT, b"second"))
        await writer.drain()
        await reader.read(100)  # the client's Close frame
        writer.write(encode_frame(0x8, b"\x03\xe8"))
        await writer.drain()

    url = await raw_server(handler)
    ws = await connect(url, session=session)
    assert await ws.recv() == "first"
    assert await ws.recv() == "second"
    await ws.close()


async def test_bad_accept_key_fails(
    raw_server: Callable[[RawHandler], Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        writer.write(switching("x" + key))
        await writer.drain()

    with pytest.raises(WebSocketHandshakeError, match="Sec-WebSocket-Accept"):
        await connect(await raw_server(handler), session=session)


async def test_masked_frame_from_server_fails_with_1002(
    raw_server: Callable[[RawHandler], Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    got: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        writer.write(switching(key) + encode_frame(OP_TEXT, b"masked", mask=True))
        await writer.drain()
        got.append(await reader.read(100))

    ws = await connect(await raw_server(handler), session=session)
    with pytest.raises(WebSocketClosed) as info:
        await asyncio.wait_for(ws.recv(), 2)
    assert info.value.code == 1002
    await ws.close()
    frame = got[0]
    assert frame[0] == 0x88 and frame[1] & 0x80  # a masked Close frame from the client
    payload = bytes(b ^ frame[2 + (i % 4)] for i, b in enumerate(frame[6:]))
    assert payload[:2] == (1002).to_bytes(2, "big")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n", "server_max_window_bits"),
        ("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", "not offered"),
        ("Sec-WebSocket-Protocol: chat\r\n", "subprotocol"),
    ],
)
async def test_a_101_the_client_must_refuse_fails_the_handshake(
    raw_server: Callable[[RawHandler], Awaitable[str]], session: aiohttp.ClientSession, extra: str, match: str
) -> None:
    """The checks of sioserver.proto.websocket.validate_handshake_response, on a real connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        writer.write(switching(key, extra))
        await writer.drain()
        await reader.read(100)  # until the client drops the connection

    with pytest.raises(WebSocketHandshakeError, match=match) as info:
        await connect(await raw_server(handler), session=session)
    assert info.value.status == 101


async def test_a_deflate_offer_of_ones_own_is_negotiated(echo_url: str, session: aiohttp.ClientSession) -> None:
    offer = DeflateOffer(client_no_context_takeover=True, server_no_context_takeover=True)
    ws = await connect(f"{echo_url}/echo?compress=1", session=session, compression=offer)
    assert ws.deflate
    assert "server_no_context_takeover" in ws.response_headers["Sec-WebSocket-Extensions"]
    text = "no context " * 5000
    for _ in range(2):
        await ws.send(text)
        assert await ws.recv() == text
    await ws.close()
