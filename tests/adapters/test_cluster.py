"""The cluster protocol on its own (sioserver.adapters.cluster): sioservers in one process, each with
python-socketio clients, joined by an in-memory transport that carries every message through msgpack
on a later turn of the loop, as a socket or Redis would.

What a user of a cluster sees: broadcasts, rooms and disconnects that cross servers, fetch_sockets,
server-side events with answers, broadcasts with acks collected from every server; with heartbeats,
the server count follows servers that start, stop or fall silent, and a request stops waiting for a
server that went away instead of timing out.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver
from sioserver.adapters import AdapterError, ClusterTimeoutError
from sioserver.adapters._wire import pack, unpack
from sioserver.adapters.cluster import (
    ClusterAdapter,
    ClusterAdapterWithHeartbeat,
    ClusterMessage,
    ClusterNode,
    MessageType,
)
from sioserver.server.protocols import AdapterNamespace

# ------------------------------------------------------------------------------ the in-memory transport


class Bus:
    """Carries cluster messages between the nodes of one process; ``idle()`` is a barrier: every
    message published so far (and every message those caused) has been handled."""

    def __init__(self) -> None:
        self.nodes: dict[str, list[BusTransport]] = {}
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.carried: list[ClusterMessage] = []

    def transport(self, namespace: str) -> BusTransport:
        return BusTransport(self, namespace)

    def _deliver(self, target: Callable[[ClusterMessage], None], payload: bytes) -> None:
        self.in_flight += 1
        self._idle.clear()

        def run() -> None:
            try:
                message = unpack(payload)
                self.carried.append(message)
                target(message)
            finally:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self._idle.set()

        asyncio.get_running_loop().call_soon(run)

    async def idle(self) -> None:
        while True:
            await self._idle.wait()
            await asyncio.sleep(0)  # what the last delivery started (a handler's task) runs too
            if self.in_flight == 0:
                return


class BusTransport:
    """A ClusterTransport over :class:`Bus`; ``cut`` drops everything to and from this node."""

    def __init__(self, bus: Bus, namespace: str) -> None:
        self.bus = bus
        self.namespace = namespace
        self.node: ClusterNode | None = None
        self.cut = False
        self.counted_extra = 0  # a server the transport counts but that never answers

    @property
    def healthy(self) -> bool:
        return not self.cut

    def _peers(self) -> list[BusTransport]:
        return [t for t in self.bus.nodes.get(self.namespace, []) if t is not self and not t.cut]

    def start(self, node: ClusterNode) -> None:
        self.node = node
        self.bus.nodes.setdefault(self.namespace, []).append(self)

    def publish(self, message: ClusterMessage) -> None:
        payload = pack(message)  # what the wire would carry: bytes stay bytes
        if self.cut:
            return
        for peer in self._peers():
            assert peer.node is not None
            self.bus._deliver(peer.node.on_message, payload)

    def publish_response(self, requester: str, response: ClusterMessage) -> None:
        payload = pack(response)
        if self.cut:
            return
        for peer in self._peers():
            if peer.node is not None and peer.node.uid == requester:
                self.bus._deliver(peer.node.on_response, payload)

    async def server_count(self) -> int:
        return 1 + len(self._peers()) + self.counted_extra

    async def close(self) -> None:
        members = self.bus.nodes.get(self.namespace, [])
        if self in members:
            members.remove(self)


# ------------------------------------------------------------------------------------------ servers


class Client:
    """A python-socketio client that records its events and wakes whoever waits for one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[tuple[str, list[Any]]] = []
        self.changed = asyncio.Event()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._on_any)
        self.sio.on("disconnect", lambda *args: self.changed.set())

    async def _on_any(self, event: str, *args: Any) -> Any:
        self.events.append((event, list(args)))
        self.changed.set()
        return {"from": self.name} if event == "survey" else None

    @property
    def sid(self) -> str:
        return str(self.sio.get_sid("/"))

    def got(self, event: str) -> list[list[Any]]:
        return [args for e, args in self.events if e == event]

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self.changed.clear()
                await self.changed.wait()


class Node:
    def __init__(self, name: str, sio: sioserver.AsyncServer, server: TestServer) -> None:
        self.name = name
        self.sio = sio
        self.server = server

    @property
    def transport(self) -> BusTransport:
        adapter = self.sio.adapter("/")
        assert isinstance(adapter, ClusterAdapter)
        assert isinstance(adapter.transport, BusTransport)
        return adapter.transport


Make = Callable[..., Any]


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Bus, Make, Callable[..., Any]]]:
    bus = Bus()
    nodes: list[Node] = []
    clients: list[Client] = []

    async def node(name: str, heartbeat: bool = True, **options: Any) -> Node:
        def adapter(namespace: AdapterNamespace) -> ClusterAdapter:
            if heartbeat:
                return ClusterAdapterWithHeartbeat(namespace, bus.transport(namespace.name), **options)
            return ClusterAdapter(namespace, bus.transport(namespace.name), **options)

        sio = sioserver.AsyncServer(adapter=adapter)
        sio.on("connect", lambda sid, environ, auth: _join(sio, sid, auth))

        @sio.on_server_event("ping-srv")
        def ping_srv(*args: Any) -> dict[str, Any]:
            return {"pong": list(args), "node": name}

        app = web.Application()
        sio.attach(app)
        server = TestServer(app)
        await server.start_server()
        n = Node(name, sio, server)
        nodes.append(n)
        return n

    async def client(name: str, node: Node, rooms: tuple[str, ...] = ()) -> Client:
        c = Client(name)
        await c.sio.connect(str(node.server.make_url("/")), transports=["websocket"],
                            auth={"rooms": list(rooms)}, wait_timeout=5)
        clients.append(c)
        return c

    yield bus, node, client
    for c in clients:
        await c.sio.disconnect()
    for n in nodes:
        await n.sio.shutdown()
        await n.server.close()


_fences = 0


async def fence(bus: Bus, nodes: tuple[Node, ...], clients: tuple[Client, ...]) -> None:
    """Everything sent so far has arrived: the bus is idle, then every server writes a marker to its
    own clients and every client reads it (one connection delivers in order)."""
    global _fences
    _fences += 1
    mark = _fences
    await bus.idle()
    for n in nodes:
        await n.sio.local.emit("fence", mark)
    await asyncio.gather(*(c.until(lambda c=c: [mark] in c.got("fence")) for c in clients if c.sio.connected))


async def _join(sio: sioserver.AsyncServer, sid: str, auth: Any) -> None:
    for room in (auth or {}).get("rooms", []):
        await sio.enter_room(sid, room)


# ------------------------------------------------------------------------------------------- tests


async def test_broadcasts_and_rooms_cross_servers(cluster: Any) -> None:
    bus, node, client = cluster
    a, b = await node("A"), await node("B")
    a1, a2 = await client("a1", a, ("r1",)), await client("a2", a)
    b1, b2 = await client("b1", b, ("r1", "r2")), await client("b2", b)
    everyone = (a1, a2, b1, b2)
    await bus.idle()
    assert [await a.sio.server_count(), await b.sio.server_count()] == [2, 2]

    await a.sio.emit("news", ("hello", b"\x00\xff"))
    await asyncio.gather(*(c.until(lambda c=c: bool(c.got("news"))) for c in everyone))
    assert {c.name: c.got("news") for c in everyone} == {c.name: [["hello", b"\x00\xff"]] for c in everyone}

    await b.sio.to("r1").except_("r2").emit("room")
    await a1.until(lambda: bool(a1.got("room")))
    await b.sio.to(b2.sid).emit("direct", 1)
    await b2.until(lambda: bool(b2.got("direct")))
    await a.sio.local.emit("local-only")
    await fence(bus, (a, b), everyone)
    assert [c.name for c in everyone if c.got("room")] == ["a1"], "b1 is in r2, excluded"
    assert [c.name for c in everyone if c.got("direct")] == ["b2"]
    assert [c.name for c in everyone if c.got("local-only")] == ["a1", "a2"], "a local emit stays on A"

    # rooms changed from one server apply to the sockets of every server
    await a.sio.to("r2").sockets_join("r9")
    await bus.idle()
    assert b.sio.rooms(b1.sid) == sorted([b1.sid, "r1", "r2", "r9"])
    await a.sio.to("r9").emit("r9")
    await b1.until(lambda: bool(b1.got("r9")))
    await b.sio.in_("r9").sockets_leave("r9")
    await bus.idle()
    assert "r9" not in b.sio.rooms(b1.sid)
    await a.sio.to("r1").disconnect_sockets()
    await a1.until(lambda: not a1.sio.connected)
    await b1.until(lambda: not b1.sio.connected)
    assert a2.sio.connected and b2.sio.connected


async def test_requests_are_answered_by_every_server(cluster: Any) -> None:
    bus, node, client = cluster
    a, b, c = await node("A"), await node("B"), await node("C")
    a1, b1, c1 = await client("a1", a, ("r1",)), await client("b1", b, ("r1",)), await client("c1", c)
    await b.sio.save_session(b1.sid, {"user": "bob"})
    await bus.idle()
    assert await a.sio.server_count() == 3

    sockets = {s.id: s for s in await a.sio.fetch_sockets()}
    assert set(sockets) == {a1.sid, b1.sid, c1.sid}
    assert (sockets[a1.sid].local, sockets[b1.sid].local, sockets[b1.sid].data) == (True, False, {"user": "bob"})
    assert sockets[b1.sid].rooms == {b1.sid, "r1"} and sockets[c1.sid].handshake["query"]["EIO"] == "4"
    assert {s.id for s in await c.sio.to("r1").fetch_sockets()} == {a1.sid, b1.sid}

    answers = await a.sio.server_side_emit_with_ack("ping-srv", 7)
    assert sorted(answers, key=lambda x: x["node"]) == [{"node": "B", "pong": [7]}, {"node": "C", "pong": [7]}]
    # an event nobody handles is answered None: the asker does not wait for its deadline
    assert await a.sio.server_side_emit_with_ack("nobody", timeout=30) == [None, None]

    answers = await b.sio.timeout(5).emit_with_ack("survey")
    assert sorted(x["from"] for x in answers) == ["a1", "b1", "c1"]
    answers = await c.sio.to("r1").timeout(5).emit_with_ack("survey")
    assert sorted(x["from"] for x in answers) == ["a1", "b1"]

    # a RemoteSocket acts where its socket lives
    (remote,) = [s for s in await a.sio.fetch_sockets() if s.id == c1.sid]
    assert await remote.call("survey", timeout=5) == {"from": "c1"}
    await remote.disconnect()
    await c1.until(lambda: not c1.sio.connected)
    with pytest.raises(AdapterError, match="ClusterAdapter protocol"):
        await a.sio.all_rooms()


async def test_heartbeats_follow_servers_that_come_and_go(cluster: Any) -> None:
    bus, node, _ = cluster
    a = await node("A", heartbeat_interval=0.2, heartbeat_timeout=0.6)
    b = await node("B", heartbeat_interval=0.2, heartbeat_timeout=0.6)
    await bus.idle()  # A heard B's INITIAL_HEARTBEAT, B heard A's answer
    assert [await a.sio.server_count(), await b.sio.server_count()] == [2, 2]
    c = await node("C", heartbeat_interval=0.2, heartbeat_timeout=0.6)
    await bus.idle()
    assert [await n.sio.server_count() for n in (a, b, c)] == [3, 3, 3]

    # a server that stops says so: the others stop counting it at once
    await c.sio.shutdown()
    await bus.idle()
    assert [await a.sio.server_count(), await b.sio.server_count()] == [2, 2]
    closes = [m for m in bus.carried if m["type"] == MessageType.ADAPTER_CLOSE]
    assert len(closes) == 2 and {m["uid"] for m in closes} == {c.sio.adapter("/").uid}  # type: ignore[attr-defined]

    # a server that falls silent is waited for until heartbeat_timeout, not until the request's deadline
    b.transport.cut = True
    answers = await a.sio.server_side_emit_with_ack("ping-srv", 1, timeout=30)
    assert answers == []
    assert await a.sio.server_count() == 1


async def test_silent_server_is_forgotten_after_heartbeat_timeout(cluster: Any) -> None:
    bus, node, _ = cluster
    a = await node("A", heartbeat_interval=0.1, heartbeat_timeout=0.3)
    b = await node("B", heartbeat_interval=0.1, heartbeat_timeout=0.3)
    await bus.idle()
    assert await a.sio.server_count() == 2
    seen = len(bus.carried)
    # the passing of time is what is tested here: nothing but the adapters' heartbeats is published
    await asyncio.sleep(1.0)
    assert await a.sio.server_count() == 2, "heartbeats keep an idle server counted"
    assert any(m["type"] == MessageType.HEARTBEAT for m in bus.carried[seen:])
    b.transport.cut = True
    await asyncio.sleep(1.0)
    assert await a.sio.server_count() == 1, "a server not heard from for heartbeat_timeout is gone"


async def test_counted_server_that_never_answers_times_out(cluster: Any) -> None:
    bus, node, client = cluster
    a = await node("A", heartbeat=False, request_timeout=0.5)
    b = await node("B", heartbeat=False, request_timeout=0.5)
    b1 = await client("b1", b)
    await bus.idle()
    assert await a.sio.server_count() == 2
    a.transport.counted_extra = 1  # the transport counts a third server that is not there
    with pytest.raises(ClusterTimeoutError) as err:
        await a.sio.fetch_sockets()
    assert (err.value.expected, err.value.received) == (3, 2)
    assert [s["id"] for s in err.value.responses] == [b1.sid], "what did come is kept"
    with pytest.raises(ClusterTimeoutError):
        await a.sio.server_side_emit_with_ack("ping-srv")
    a.transport.counted_extra = 0
    assert [s.id for s in await a.sio.fetch_sockets()] == [b1.sid]


async def test_transport_down_answers_from_this_server_alone(cluster: Any) -> None:
    bus, node, client = cluster
    a, b = await node("A", heartbeat=False), await node("B", heartbeat=False)
    a1, b1 = await client("a1", a), await client("b1", b)
    await bus.idle()
    a.transport.cut = True
    assert [s.id for s in await a.sio.fetch_sockets()] == [a1.sid]
    assert await a.sio.server_side_emit_with_ack("ping-srv") == []
    assert a.sio.adapter("/").stats["degraded"] == 2  # type: ignore[attr-defined]
    await a.sio.emit("news")
    await fence(bus, (a, b), (a1, b1))
    assert a1.got("news") == [[]] and not b1.got("news")


def test_heartbeat_options_are_checked() -> None:
    sio = sioserver.AsyncServer(adapter=lambda nsp: ClusterAdapterWithHeartbeat(
        nsp, Bus().transport(nsp.name), heartbeat_interval=5, heartbeat_timeout=5))
    with pytest.raises(ValueError, match="heartbeat_interval < heartbeat_timeout"):
        sio.adapter("/")


def test_the_cluster_protocol_loads_no_redis_and_no_web_framework() -> None:
    """A transport of one's own (local sockets between workers) imports the protocol without redis-py."""
    code = ("import sys, sioserver.adapters.cluster as c, sioserver.adapters as a; "
            "assert c.ClusterAdapterWithHeartbeat is a.ClusterAdapterWithHeartbeat; "
            "print(sorted(m for m in ('redis', 'aiohttp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split("\n")[0] == "[]"
    from sioserver import adapters

    assert sorted(adapters._EXPORTS) == sorted(adapters.__all__)
