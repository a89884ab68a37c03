"""The adapter seam (sioserver.server.adapter and .protocols), as an adapter author uses it.

``sio.adapter(nsp)`` gives a namespace's adapter; an adapter written only against the declared
protocols (AdapterNamespace, Recipient, AckHandler) delivers to real python-socketio clients, waits for
their acks and hears when they expire or the socket leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver
from sioserver import BroadcastOptions, MemoryAdapter
from sioserver.proto.socketio import EVENT, Packet
from sioserver.server.adapter import SharedMessage
from sioserver.server.protocols import AdapterNamespace


class Recording(MemoryAdapter):
    """An adapter of a user's own: counts what it broadcasts, through the public interface only."""

    made: list[Recording] = []

    def __init__(self, namespace: AdapterNamespace) -> None:
        super().__init__(namespace)
        self.broadcasts: list[tuple[list[Any], BroadcastOptions, int]] = []
        self.inits = 0
        self.closes = 0
        Recording.made.append(self)

    async def init(self) -> None:
        self.inits += 1

    async def close(self) -> None:
        self.closes += 1

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> int:
        count = super().broadcast(packet, opts)
        self.broadcasts.append((list(packet.data), opts, count))
        return count


async def _slow(*args: Any) -> str:
    await asyncio.sleep(1.0)  # answers after the 0.3 s ack_timeout of the test that sends it
    return "too late"


class Handler:
    """An AckHandler: what happened to one awaited ack."""

    def __init__(self) -> None:
        self.outcome: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()

    def __call__(self, answer: list[Any]) -> None:
        self.outcome.set_result(("answer", answer))

    def expire(self) -> None:
        self.outcome.set_result(("expired", None))

    def fail(self, reason: str) -> None:
        self.outcome.set_result(("failed", reason))


Setup = Callable[..., Any]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    made: list[tuple[sioserver.AsyncServer, TestServer, list[socketio.AsyncClient]]] = []

    async def make(count: int = 1, **options: Any) -> tuple[sioserver.AsyncServer, list[socketio.AsyncClient]]:
        sio = sioserver.AsyncServer(**options)
        sio.on("connect", lambda sid, environ: None)
        app = web.Application()
        sio.attach(app)
        server = TestServer(app)
        await server.start_server()
        clients = []
        for _ in range(count):
            client = socketio.AsyncClient(reconnection=False)
            client.on("question", lambda *args: ["yes", *args])
            client.on("slow", _slow)
            await client.connect(str(server.make_url("/")), transports=["websocket"], wait_timeout=5)
            clients.append(client)
        made.append((sio, server, clients))
        return sio, clients

    yield make
    for sio, server, clients in made:
        for client in clients:
            if client.connected:
                await client.disconnect()
        await sio.shutdown()
        await server.close()


async def test_sio_adapter_gives_the_namespace_adapter(setup: Setup) -> None:
    sio, (client,) = await setup(namespaces=["/extra"])
    sid = client.get_sid("/")
    adapter = sio.adapter()
    assert isinstance(adapter, MemoryAdapter) and adapter is sio.adapter("/")
    await sio.enter_room(sid, "lobby")
    assert adapter.rooms["lobby"] == {sid} and adapter.sids[sid] == {sid, "lobby"}
    assert adapter.sockets(["lobby"]) == {sid} and adapter.socket_rooms(sid) == {sid, "lobby"}
    assert isinstance(sio.adapter("/extra"), MemoryAdapter), "a namespace served without handlers"
    with pytest.raises(KeyError, match="/nobody"):
        sio.adapter("/nobody")


async def test_a_users_adapter_sees_every_broadcast(setup: Setup) -> None:
    Recording.made.clear()
    sio, (_, c2) = await setup(2, adapter=Recording)
    got: list[Any] = []
    c2.on("news", lambda *args: got.append(args))
    adapter = sio.adapter()
    assert isinstance(adapter, Recording) and adapter.inits == 1
    await sio.to(c2.get_sid("/")).emit("news", {"n": 1})
    await sio.emit("news", ("all", 2))
    async with asyncio.timeout(5):
        while len(got) < 2:
            await asyncio.sleep(0.01)
    assert got == [({"n": 1},), ("all", 2)]
    assert [(data, count) for data, _, count in adapter.broadcasts] == [(["news", {"n": 1}], 1), (["news", "all", 2], 2)]
    assert adapter.broadcasts[0][1].rooms == {c2.get_sid("/")}
    await sio.close_adapters()
    assert adapter.closes == 1


async def test_an_adapter_reaches_sockets_through_the_protocols(setup: Setup) -> None:
    sio, (client,) = await setup(ack_timeout=0.3)
    adapter = sio.adapter()
    namespace = adapter.namespace
    sid = client.get_sid("/")
    recipient = namespace.sockets[sid]
    assert recipient.sid == sid and recipient.rooms == {sid} and recipient.session == {}
    assert recipient.handshake["query"]["transport"] == "websocket"

    # write one packet with an ack id, the way a broadcast with acks does
    answered = Handler()
    ack_id = namespace.next_ack_id()
    recipient.expect_ack(ack_id, answered, None)
    recipient.write_shared(SharedMessage(namespace.encode(Packet(EVENT, "/", ["question", 1], ack_id))), False)
    assert await asyncio.wait_for(answered.outcome, 5) == ("answer", [["yes", 1]])  # one argument: a list

    # no answer within the namespace's ack_timeout (0.3 s here): expire()
    expired = Handler()
    ack_id = namespace.next_ack_id()
    recipient.expect_ack(ack_id, expired, None)
    recipient.write_shared(SharedMessage(namespace.encode(Packet(EVENT, "/", ["slow"], ack_id))), False)
    assert await asyncio.wait_for(expired.outcome, 5) == ("expired", None)
    assert namespace.ack_timeout == 0.3

    # the socket leaves first: fail(reason)
    failed = Handler()
    recipient.expect_ack(namespace.next_ack_id(), failed, 60)
    await client.disconnect()
    outcome, reason = await asyncio.wait_for(failed.outcome, 5)
    # python-socketio's client may close its WebSocket before its DISCONNECT packet is out
    assert outcome == "failed" and reason in ("client disconnect", "transport close")
    assert sid not in namespace.sockets


async def test_server_side_event_answers_through_the_namespace(setup: Setup) -> None:
    sio, _ = await setup()

    @sio.on_server_event("ping-srv")
    async def ping(*args: Any) -> dict[str, Any]:
        return {"pong": list(args)}

    @sio.on_server_event("boom")
    def boom() -> None:
        raise RuntimeError("handler bug")

    namespace = sio.adapter().namespace
    answers: asyncio.Queue[Any] = asyncio.Queue()
    namespace.server_side_event(["ping-srv", 1, "a"], answers.put_nowait)
    namespace.server_side_event(["nobody"], answers.put_nowait)
    namespace.server_side_event(["boom"], answers.put_nowait)
    got = [await asyncio.wait_for(answers.get(), 5) for _ in range(3)]
    assert sorted(got, key=repr) == sorted([{"pong": [1, "a"]}, None, None], key=repr), \
        "a handler's answer; None when nobody handles it or the handler fails (a Node peer waits for one)"
