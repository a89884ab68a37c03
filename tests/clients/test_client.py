"""AsyncClient against sioserver (in process) and the Node reference server (socket.io 4.8)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sioclient

from tests.clients.helpers import Recorder

Server = Callable[..., Awaitable[str]]

TRANSPORTS = {
    "upgrade": (["polling", "websocket"], "websocket"),
    "websocket": (["websocket"], "websocket"),
    "polling": (["polling"], "polling"),
}


async def wait_for_transport(client: sioclient.AsyncClient, name: str, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while client.transport != name:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("mode", list(TRANSPORTS))
async def test_transports_events_and_acks(server: Server, mode: str) -> None:
    transports, final = TRANSPORTS[mode]
    url = await server()
    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client)
    await client.connect(url, transports=transports, auth={"token": "t1"})
    try:
        welcome = (await rec.next("welcome"))[0]
        assert welcome == {"sid": client.sid, "nsp": "/", "auth": {"token": "t1"}}
        await wait_for_transport(client, final)
        assert await client.call("transport") == final  # the server's view agrees
        # client -> server with an ack: several arguments come back as a tuple
        assert await client.call("echo", ("a", 1, {"k": [True, None]})) == ("a", 1, {"k": [True, None]})
        assert await rec.next("echo") == ["a", 1, {"k": [True, None]}]
        # the callback form
        answered: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        await client.emit("echo", "cb", callback=lambda *args: answered.set_result(args))
        assert await asyncio.wait_for(answered, 5) == ("cb",)
        assert await rec.next("echo") == ["cb"]
        # server -> client with an ack: the handler's return value is the answer
        client.on("question", lambda q: {"double": q * 2})
        assert await client.call("ask", 21) == {"double": 42}

        # async handlers answer too
        async def question(q: Any) -> Any:
            await asyncio.sleep(0.01)
            return [q, "async"]

        client.on("question", question)
        assert await client.call("ask", "x") == ["x", "async"]
        # binary anywhere, both ways
        blob = bytes(range(256))
        answer = await client.call("echo", (blob, {"nested": [b"\x00", "text"]}))
        assert answer == (blob, {"nested": [b"\x00", "text"]})
        assert await rec.next("echo") == [blob, {"nested": [b"\x00", "text"]}]
    finally:
        await client.disconnect()
    assert await rec.next("disconnect") == ["io client disconnect"]
    assert client.sid is None and client.transport is None


async def test_namespaces(server: Server) -> None:
    url = await server()
    client = sioclient.AsyncClient(reconnection=False)
    main, chat = Recorder(client, "/"), Recorder(client, "/chat")
    await client.connect(url, namespaces=["/", "/chat"], transports=["websocket"])
    try:
        assert client.namespaces == ["/", "/chat"]
        assert client.get_sid("/chat") not in (None, client.sid)
        assert (await chat.next("welcome"))[0]["nsp"] == "/chat"
        assert (await main.next("welcome"))[0]["nsp"] == "/"
        await client.emit("echo", "to chat", namespace="/chat")
        assert await chat.next("echo") == ["to chat"]
        assert main.count("echo") == 0
        # the server disconnects one namespace: the other stays
        await client.emit("kick", namespace="/chat")
        assert await chat.next("disconnect") == ["io server disconnect"]
        assert client.namespaces == ["/"]
        with pytest.raises(sioclient.NotConnectedError):
            await client.emit("echo", "x", namespace="/chat")
        assert await client.call("echo", "still here") == "still here"
    finally:
        await client.disconnect()


async def test_msgpack(server: Server) -> None:
    url = await server(serializer="msgpack")
    client = sioclient.AsyncClient(serializer="msgpack", reconnection=False)
    rec = Recorder(client)
    client.on("question", lambda q: {"q": q, "bin": b"\x01\x02"})
    await client.connect(url)
    try:
        assert (await rec.next("welcome"))[0]["sid"] == client.sid
        payload = {"int": 2**40, "float": 1.5, "bin": b"\x00" * 100, "list": [None, True, "é"]}
        assert await client.call("echo", payload) == payload
        assert await client.call("ask", 7) == {"q": 7, "bin": b"\x01\x02"}
    finally:
        await client.disconnect()


async def test_refused_namespace_and_bad_auth(server: Server) -> None:
    url = await server()
    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client, "/private")
    with pytest.raises(sioclient.ConnectionError) as info:
        await client.connect(url, namespaces=["/private"])
    expected = {"message": "not allowed", "data": {"reason": "private"}}
    assert info.value.data == expected
    assert await rec.next("connect_error") == [expected]
    assert not client.connected

    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client)
    with pytest.raises(sioclient.ConnectionError, match="bad token") as info:
        await client.connect(url, auth={"token": "bad"}, transports=["websocket"])
    assert info.value.data == {"message": "bad token", "data": {"code": 4001}}
    assert await rec.next("connect_error") == [{"message": "bad token", "data": {"code": 4001}}]


async def test_server_disconnect_is_final(server: Server) -> None:
    url = await server()
    client = sioclient.AsyncClient(reconnection_delay=0.05)
    rec = Recorder(client)
    await client.connect(url, transports=["websocket"])
    await client.emit("kick")
    assert await rec.next("disconnect") == ["io server disconnect"]
    await asyncio.wait_for(client.wait(), 5)  # no reconnection after a server-side disconnect
    assert not client.connected
    with pytest.raises(sioclient.NotConnectedError):
        await client.emit("echo")


async def test_catch_all_and_auth_callable(server: Server) -> None:
    url = await server()
    client = sioclient.AsyncClient(reconnection=False)
    seen: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    client.on("*", lambda event, *args: seen.put_nowait((event, *args)))
    calls = 0

    async def auth() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"token": f"n{calls}"}

    await client.connect(url, auth=auth)
    try:
        event, data = await asyncio.wait_for(seen.get(), 5)
        assert event == "welcome" and data["auth"] == {"token": "n1"}
        await client.emit("echo", (1, 2))
        assert await asyncio.wait_for(seen.get(), 5) == ("echo", 1, 2)
        assert await client.call("auth") == {"token": "n1"}
    finally:
        await client.disconnect()


async def test_polling_batches_respect_max_payload(sio_url: Callable[..., Awaitable[str]]) -> None:
    """Many emits queued at once go out in several POSTs, each within the server's maxPayload."""
    url = await sio_url(max_http_buffer_size=20_000)
    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client)
    await client.connect(url, transports=["polling"])
    try:
        chunk = "x" * 3000
        for i in range(20):  # 60 kB queued: at least 3 POSTs
            await client.emit("echo", (i, chunk))
        for i in range(20):
            assert await rec.next("echo") == [i, chunk]
        assert client.transport == "polling"
    finally:
        await client.disconnect()


async def test_order_kept_through_the_upgrade(server: Server) -> None:
    """Emits and acks in flight while polling pauses and the WebSocket takes over keep their order."""
    url = await server()
    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client)
    await client.connect(url)  # polling, then the upgrade starts at once
    try:
        calls = []
        for i in range(60):
            await client.emit("echo", i)
            if i % 10 == 0:
                calls.append(asyncio.ensure_future(client.call("echo", ("call", i))))
            await asyncio.sleep(0.002)
        await wait_for_transport(client, "websocket")
        got = [(await rec.next("echo"))[0] for _ in range(60 + len(calls))]
        assert [g for g in got if isinstance(g, int)] == list(range(60))
        assert [await c for c in calls] == [("call", i) for i in range(0, 60, 10)]
    finally:
        await client.disconnect()
