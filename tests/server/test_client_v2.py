"""Socket.IO protocol v4 (socket.io-client 2.x, over Engine.IO v3 with ``allow_eio3=True``), on the wire: the
server connects "/" at the handshake, CONNECT replies without payload, ids from the Engine.IO sid, auth from
the query, CONNECT_ERROR as Node writes it for v3 clients, binary with the type byte. The same client against
Node is in tests/interop/eio3."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver

from .conftest import RawClient

V2Factory = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def v2_client() -> AsyncIterator[Callable[[sioserver.AsyncServer], Awaitable[V2Factory]]]:
    servers: list[TestServer] = []
    clients: list[RawClient] = []

    async def make(sio: sioserver.AsyncServer) -> V2Factory:
        app = web.Application()
        sio.attach(app)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)

        async def client(query: str = "") -> RawClient:
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(server.make_url(f"/socket.io/?EIO=3&transport=websocket{query}"))
            raw = RawClient(ws, session)
            opening = str(await raw.recv())
            raw.open = json.loads(opening[1:])
            clients.append(raw)
            return raw

        return client

    yield make
    for c in clients:
        await c.close()
    for s in servers:
        await s.close()


async def test_root_is_connected_by_the_server_with_the_query_as_auth(v2_client: Any) -> None:
    sio = sioserver.AsyncServer(allow_eio3=True)
    seen: list[Any] = []

    @sio.event
    def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        seen.append((sid, auth))

    client = await (await v2_client(sio))("&token=abc&user=z%C3%B6")
    assert await client.recv() == "40"  # no payload (engine "4", Socket.IO "0")
    assert seen == [(client.open["sid"], {"token": "abc", "user": "zö"})]


async def test_namespace_connect_reply_id_and_auth(v2_client: Any) -> None:
    sio = sioserver.AsyncServer(allow_eio3=True)
    seen: list[Any] = []

    @sio.on("connect", namespace="/custom")
    def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        seen.append((sid, auth))

    @sio.on("whoami", namespace="/custom")
    def whoami(sid: str) -> str:
        return sid

    client = await (await v2_client(sio))()
    assert await client.recv() == "40"
    await client.send("40/custom?token=t%201,")
    assert await client.recv() == "40/custom,"
    sid = client.open["sid"]
    assert seen == [(f"/custom#{sid}", {"token": "t 1"})]
    await client.send('42/custom,7["whoami"]')
    assert await client.recv() == f'43/custom,7["/custom#{sid}"]'
    await client.send("40/custom,")  # a second CONNECT for the namespace: a violation, as in v5
    assert await client.closed()


@pytest.mark.parametrize(("refusal", "wire"), [
    (sioserver.ConnectionRefusedError("not authorized"), '44/custom,"not authorized"'),
    (sioserver.ConnectionRefusedError("not authorized", {"retry": False}), '44/custom,{"retry":false}'),
    (sioserver.ConnectionRefusedError("not authorized", 0), '44/custom,"not authorized"'),
    (sioserver.ConnectionRefusedError("not authorized", {}), "44/custom,{}"),  # {} is true in JavaScript
    (sioserver.ConnectionRefusedError("not authorized", ""), '44/custom,"not authorized"'),
])
async def test_connect_error_is_data_or_message(v2_client: Any, refusal: Exception, wire: str) -> None:
    sio = sioserver.AsyncServer(allow_eio3=True)

    @sio.on("connect", namespace="/custom")
    def connect(sid: str, environ: dict[str, Any]) -> None:
        raise refusal

    client = await (await v2_client(sio))()
    assert await client.recv() == "40"
    await client.send("40/custom,")
    assert await client.recv() == wire
    await client.send("40/nope,")
    assert await client.recv() == '44/nope,{"message":"Invalid namespace"}'


async def test_binary_event_and_ack_carry_the_type_byte(v2_client: Any) -> None:
    sio = sioserver.AsyncServer(allow_eio3=True)

    @sio.event
    def echo(sid: str, data: bytes) -> bytes:
        return data[::-1]

    client = await (await v2_client(sio))()
    assert await client.recv() == "40"
    await client.send('451-3["echo",{"_placeholder":true,"num":0}]')
    await client.send(b"\x04\x01\x02")
    assert await client.recv() == '461-3[{"_placeholder":true,"num":0}]'
    assert await client.recv() == b"\x04\x02\x01"


async def test_v4_clients_are_unchanged_beside_v2_ones(sio_app: Any) -> None:
    _, client_factory = await sio_app(sioserver.AsyncServer(allow_eio3=True))
    client = await client_factory()
    assert await client.silent()  # nothing before the client's CONNECT
    sid = await client.connect("/")
    assert sid != client.open["sid"]


async def test_a_broadcast_reaches_v2_and_v5_clients_each_in_its_format(v2_client: Any, sio_app: Any) -> None:
    sio = sioserver.AsyncServer(allow_eio3=True)
    _, v5_factory = await sio_app(sio)
    v2 = await (await v2_client(sio))()
    assert await v2.recv() == "40"
    v5 = await v5_factory()
    await v5.connect("/")
    await sio.emit("news", {"text": "hé", "blob": b"\x01\x02"})
    head = '451-["news",{"text":"hé","blob":{"_placeholder":true,"num":0}}]'
    assert [await v5.recv(), await v5.recv()] == [head, b"\x01\x02"]
    assert [await v2.recv(), await v2.recv()] == [head, b"\x04\x01\x02"]
