"""Broadcast operators and RemoteSocket (sioserver.server.broadcast), as python-socketio clients see them.

``sio.to(..).except_(..).volatile.timeout(..)``: who receives (each target once), immutability,
``emit_with_ack`` answers (partial after the deadline, not waiting for a client that left),
``fetch_sockets`` / ``sockets_join`` / ``sockets_leave`` / ``disconnect_sockets``, and what a
RemoteSocket does to its socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver
from sioserver import AckTimeoutError, BroadcastOperator, BroadcastOptions


class Peer:
    """A python-socketio client that records its events; ``until`` waits for a condition on them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[tuple[str, str, list[Any]]] = []
        self.changed = asyncio.Event()
        self.hold = asyncio.Event()  # "stall" handlers wait on it: no ack until it is set
        self.sio = socketio.AsyncClient(reconnection=False)
        for nsp in ("/", "/chat"):
            self.sio.on("*", self._recorder(nsp), namespace=nsp)
            self.sio.on("disconnect", self._wake, namespace=nsp)

    def _wake(self, *args: Any) -> None:
        self.changed.set()

    def _recorder(self, nsp: str) -> Callable[..., Any]:
        async def record(event: str, *args: Any) -> Any:
            self.events.append((nsp, event, list(args)))
            self.changed.set()
            if event == "survey":
                return {"from": self.name}
            if event == "stall":
                await self.hold.wait()
                return "late"
            return None

        return record

    def got(self, event: str, nsp: str = "/") -> list[list[Any]]:
        return [args for n, e, args in self.events if e == event and n == nsp]

    def sid(self, nsp: str = "/") -> str:
        return str(self.sio.get_sid(nsp))

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self.changed.clear()
                await self.changed.wait()


Setup = Callable[..., Any]


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    servers: list[TestServer] = []
    peers: list[Peer] = []
    sios: list[sioserver.AsyncServer] = []

    async def make(*specs: tuple[str, tuple[str, ...]], namespaces: tuple[str, ...] = ("/",),
                   **options: Any) -> tuple[sioserver.AsyncServer, TestServer, list[Peer]]:
        sio = sioserver.AsyncServer(namespaces=["/chat"], **options)

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            for room in (auth or {}).get("rooms", []):
                await sio.enter_room(sid, room)

        app = web.Application()
        sio.attach(app)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        sios.append(sio)
        made = []
        for name, rooms in specs:
            peer = Peer(name)
            await peer.sio.connect(str(server.make_url("/")), transports=["websocket"], namespaces=list(namespaces),
                                   auth={"rooms": list(rooms)}, wait_timeout=5)
            peers.append(peer)
            made.append(peer)
        return sio, server, made

    yield make
    for peer in peers:
        peer.hold.set()
        await peer.sio.disconnect()
    for sio in sios:
        await sio.shutdown()
    for server in servers:
        await server.close()


async def fence(sio: sioserver.AsyncServer, peers: list[Peer], nsp: str = "/") -> None:
    """Everything the server sent before has arrived: one connection delivers in order."""
    await sio.of(nsp).emit("fence")
    await asyncio.gather(*(p.until(lambda p=p: bool(p.got("fence", nsp))) for p in peers if p.sio.connected))
    for p in peers:
        p.events = [e for e in p.events if e[1] != "fence"]


def receivers(peers: list[Peer], event: str, nsp: str = "/") -> dict[str, int]:
    return {p.name: len(p.got(event, nsp)) for p in peers if p.got(event, nsp)}


# ----------------------------------------------------------------------------------------- targets


async def test_targets_receive_once_and_others_nothing(setup: Setup) -> None:
    sio, _, peers = await setup(("a", ("r1",)), ("b", ("r1", "r2")), ("c", ("r2", "muted")), ("d", ()))
    a, _b, c, d = peers
    await sio.to(["r1", "r2"]).emit("both", 1)
    await sio.in_("r2").except_("muted").emit("r2-not-muted")
    await sio.to("r1").to("r2").except_(["muted", a.sid()]).emit("chained")
    await sio.except_("r1").emit("not-r1", "x", b"\x01")
    await sio.to(d.sid()).emit("direct")
    await sio.of("/").send({"text": "hi"})
    await fence(sio, peers)
    assert receivers(peers, "both") == {"a": 1, "b": 1, "c": 1}, "b is in both rooms and receives once"
    assert receivers(peers, "r2-not-muted") == {"b": 1}
    assert receivers(peers, "chained") == {"b": 1}
    assert receivers(peers, "not-r1") == {"c": 1, "d": 1} and c.got("not-r1") == [["x", b"\x01"]]
    assert receivers(peers, "direct") == {"d": 1}
    assert receivers(peers, "message") == {"a": 1, "b": 1, "c": 1, "d": 1} and a.got("message") == [[{"text": "hi"}]]


async def test_operators_are_immutable_and_reusable(setup: Setup) -> None:
    sio, _, peers = await setup(("a", ("r1",)), ("b", ("r2",)))
    base = sio.to("r1")
    wider = base.to("r2")
    narrower = wider.except_("r2")
    assert isinstance(wider, BroadcastOperator) and wider is not base
    assert base.options == BroadcastOptions(rooms=frozenset({"r1"}))
    assert wider.options.rooms == {"r1", "r2"} and narrower.options.except_rooms == {"r2"}
    assert wider.volatile.options.volatile and not wider.options.volatile
    assert wider.local.options.local and wider.timeout(3).options.timeout == 3
    assert not wider.compress(False).options.compress and wider.options.compress
    await base.emit("one")
    await base.emit("two")
    await wider.emit("wide")
    await narrower.emit("narrow")
    await fence(sio, peers)
    assert receivers(peers, "one") == receivers(peers, "two") == {"a": 1}, "a prepared operator serves twice"
    assert receivers(peers, "wide") == {"a": 1, "b": 1} and receivers(peers, "narrow") == {"a": 1}


async def test_namespaces_are_apart(setup: Setup) -> None:
    sio, _, peers = await setup(("a", ()), ("b", ()), namespaces=("/", "/chat"))
    a, _b = peers
    await sio.enter_room(a.sid("/chat"), "room", namespace="/chat")
    await sio.of("/chat").emit("chat-all")
    await sio.to("room", namespace="/chat").emit("chat-room")
    await sio.of("/").emit("main")
    await sio.of("/nowhere").emit("lost")  # a namespace nobody serves: nothing, no error
    await fence(sio, peers, "/chat")
    await fence(sio, peers, "/")
    assert receivers(peers, "chat-all", "/chat") == {"a": 1, "b": 1} and not receivers(peers, "chat-all")
    assert receivers(peers, "chat-room", "/chat") == {"a": 1}
    assert receivers(peers, "main") == {"a": 1, "b": 1} and not receivers(peers, "main", "/chat")


async def test_volatile_is_dropped_for_a_client_not_ready(setup: Setup) -> None:
    sio, server, _ = await setup()
    async with aiohttp.ClientSession() as http:
        base = "/socket.io/?EIO=4&transport=polling"
        async with http.get(server.make_url(base)) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        url = server.make_url(f"{base}&sid={sid}")
        async with http.post(url, data="40") as resp:
            assert await resp.text() == "ok"
        async with http.get(url) as resp:
            assert (await resp.text()).startswith("40{")
        # no GET is waiting: a volatile message cannot go out now and is dropped; the next one waits
        await sio.of("/").volatile.emit("dropped")
        await sio.emit("kept", 1)
        async with http.get(url) as resp:
            assert await resp.text() == '42["kept",1]'
    assert sio.stats["volatile_dropped"] == 1


async def test_volatile_goes_out_to_a_ready_client(setup: Setup) -> None:
    sio, _, (peer,) = await setup(("w", ()))
    await sio.of("/").volatile.emit("fresh")
    await peer.until(lambda: bool(peer.got("fresh")))
    assert sio.stats["volatile_dropped"] == 0


# ------------------------------------------------------------------------------------------- acks


async def test_emit_with_ack_collects_every_answer(setup: Setup) -> None:
    sio, _, peers = await setup(("a", ("r1",)), ("b", ("r1",)), ("c", ()))
    answers = await sio.timeout(5).emit_with_ack("survey")
    assert sorted(x["from"] for x in answers) == ["a", "b", "c"]
    answers = await sio.to("r1").timeout(5).emit_with_ack("survey", "question?")
    assert sorted(x["from"] for x in answers) == ["a", "b"]
    assert peers[0].got("survey") == [[], ["question?"]]
    assert await sio.to("empty-room").timeout(5).emit_with_ack("survey") == []


async def test_emit_with_ack_returns_what_came_by_the_deadline(setup: Setup) -> None:
    sio, _, (a, _b) = await setup(("a", ()), ("b", ()))
    answers = await sio.timeout(0.5).emit_with_ack("survey")
    assert sorted(x["from"] for x in answers) == ["a", "b"]
    answers = await sio.timeout(0.5).emit_with_ack("stall")  # nobody answers before the deadline
    assert answers == []
    a.hold.set()
    answers = await sio.timeout(0.5).emit_with_ack("stall")
    assert answers == ["late"], "a answers at once now; b still holds its answer"


async def test_emit_with_ack_does_not_wait_for_a_client_that_leaves(setup: Setup) -> None:
    sio, _, (a, b) = await setup(("a", ()), ("b", ()))
    a.hold.set()
    waiting = asyncio.ensure_future(sio.timeout(60).emit_with_ack("stall"))
    await b.until(lambda: bool(b.got("stall")))
    await b.sio.disconnect()
    async with asyncio.timeout(10):  # far less than the 60 s deadline: b's answer is not awaited
        assert await waiting == ["late"]


# --------------------------------------------------------------------------------- cluster operations


async def test_fetch_sockets_and_remote_socket(setup: Setup) -> None:
    sio, _, (a, b, c) = await setup(("a", ("r1",)), ("b", ("r1", "r2")), ("c", ()))
    await sio.save_session(b.sid(), {"user": "bob"})
    found = {s.id: s for s in await sio.to("r1").except_("r2").fetch_sockets()}
    assert list(found) == [a.sid()]
    (rb,) = [s for s in await sio.fetch_sockets() if s.id == b.sid()]
    assert (rb.sid, rb.rooms, rb.data, rb.local, rb.namespace) == (b.sid(), {b.sid(), "r1", "r2"},
                                                                   {"user": "bob"}, True, "/")
    assert rb.handshake["auth"] == {"rooms": ["r1", "r2"]} and "user-agent" in rb.handshake["headers"]
    assert repr(rb) == f"<RemoteSocket {b.sid()} / local>"
    assert await sio.of("/nowhere").fetch_sockets() == []

    await rb.emit("to-b", 1)
    await b.until(lambda: bool(b.got("to-b")))
    assert await rb.call("survey", timeout=5) == {"from": "b"}
    with pytest.raises(AckTimeoutError):
        await rb.call("stall", timeout=0.3)
    await rb.join(["j1", "j2"])
    assert sio.rooms(b.sid()) == sorted([b.sid(), "r1", "r2", "j1", "j2"])
    await rb.leave("j1")
    assert "j1" not in sio.rooms(b.sid())
    await rb.disconnect()
    await b.until(lambda: not b.sio.connected)
    assert a.sio.connected and c.sio.connected


async def test_sockets_join_leave_and_disconnect(setup: Setup) -> None:
    sio, _, peers = await setup(("a", ("r1",)), ("b", ("r2",)), ("c", ()), namespaces=("/", "/chat"))
    a, b, c = peers
    await sio.to("r1").sockets_join(["x", "y"])
    await sio.sockets_join("all")
    assert sio.rooms(a.sid()) == sorted([a.sid(), "r1", "x", "y", "all"])
    assert sio.rooms(c.sid()) == sorted([c.sid(), "all"])
    await sio.in_("x").sockets_leave("y")
    await sio.sockets_leave(["all"])
    assert sio.rooms(a.sid()) == sorted([a.sid(), "r1", "x"]) and sio.rooms(b.sid()) == sorted([b.sid(), "r2"])
    await sio.of("/nowhere").sockets_join("z")  # nothing served there: nothing happens
    await sio.of("/nowhere").disconnect_sockets()

    # disconnect from one namespace: the connection and its other namespace stay
    await sio.to("r1").disconnect_sockets()
    await a.until(lambda: a.sid("/") == "None" or "/" not in a.sio.namespaces)
    await fence(sio, peers, "/chat")
    assert "/chat" in a.sio.namespaces and a.sio.connected
    # close=True: the whole connection goes
    await sio.to("r2").disconnect_sockets(close=True)
    await b.until(lambda: not b.sio.connected)
    assert c.sio.connected
    await sio.disconnect_sockets()
    await c.until(lambda: "/" not in c.sio.namespaces)
