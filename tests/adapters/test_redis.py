"""RedisAdapter: the wire, byte for byte, against the reference capture; then three sioserver processes
as one cluster (broadcasts, rooms, fetch_sockets, sockets_join/leave, disconnect_sockets,
server-side events, broadcasts with acks); then the sharded variant, with a Node server in it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis
import socketio  # type: ignore[import-untyped]

import sioserver
from sioserver.adapters import AdapterError, ClusterTimeoutError, MessageTooLargeError
from sioserver.adapters._link import numsub_count
from tests._support import serving
from tests._support.redis import RedisServer
from tests._support.wait import wait_until

from .conftest import Cluster, ClusterNode, Peer, Peers, Wire, settle

# Bytes captured between two Node servers (socket.io 4.8.4, @socket.io/redis-adapter 8.3.0), uid "02TGly"
# on "/" and "vlnl-r" on "/custom" (see /work/shared/reference/redis-adapter-wire.txt).
REF_EMIT = "93a6303254476c7983a47479706502a46461746194a568656c6c6fa5776f726c640181a161c3a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380"
REF_ROOM_BINARY = "93a6303254476c7983a47479706502a46461746192a7746f2d726f6f6dc403010203a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380"
REF_MULTI = "93a6303254476c7983a47479706502a46461746191a56d756c7469a36e7370a12f83a5726f6f6d7392a5726f6f6d31a5726f6f6d32a665786365707491a5726f6f6d33a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2"
REF_CUSTOM = "93a6766c6e6c2d7283a47479706502a46461746192a9637573746f6d2d657601a36e7370a72f637573746f6d83a5726f6f6d7390a665786365707490a5666c61677380"
REF_BROADCAST_ACK = "85a3756964a6303254476c79a9726571756573744964a62d354630384ba47479706507a67061636b657483a47479706502a46461746192a961636b2d6576656e74a171a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8"
REF_FETCH = '{"uid":"02TGly","requestId":"YlAQ8n","type":5,"opts":{"rooms":[],"except":[]}}'
REF_JOIN = '{"uid":"02TGly","type":2,"opts":{"rooms":[],"except":[]},"rooms":["room9"]}'
REF_LEAVE = '{"uid":"02TGly","type":3,"opts":{"rooms":["room1"],"except":[]},"rooms":["room9"]}'
REF_SSE = '{"uid":"02TGly","type":6,"data":["ping-srv",42]}'
REF_SSE_ACK = '{"uid":"02TGly","requestId":"hrrmWy","type":6,"data":["ping-srv",43]}'
REF_ALL_ROOMS = '{"uid":"02TGly","requestId":"hdh6AO","type":1}'
REF_DISCONNECT = '{"uid":"02TGly","type":4,"opts":{"rooms":[],"except":[]},"close":true}'


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0, what: str = "") -> None:
    """State on the other side of Redis and another process: polled (see tests/_support/wait.py)."""
    await wait_until(check, timeout=timeout, what=what)


# ------------------------------------------------------------------------------------ in-process wire


def _uid(sio: sioserver.AsyncServer, nsp: str, uid: str) -> None:
    sio._cluster_namespace(nsp)
    sio._namespaces[nsp].adapter.uid = uid  # type: ignore[attr-defined]


async def test_broadcasts_are_byte_exact(local_sio: Any, wire: Wire) -> None:
    sio, _, _ = await local_sio()
    _uid(sio, "/", "02TGly")
    sio.on("anything", lambda sid: None, namespace="/custom")
    _uid(sio, "/custom", "vlnl-r")
    assert await sio.adapter("/custom").wait_ready(5)  # type: ignore[attr-defined]
    await sio.emit("hello", ("world", 1, {"a": True}))
    assert await wire.next("socket.io#") == ("socket.io#/#", bytes.fromhex(REF_EMIT))
    await sio.to("room1").emit("to-room", b"\x01\x02\x03")
    assert await wire.next("socket.io#") == ("socket.io#/#room1#", bytes.fromhex(REF_ROOM_BINARY))
    await sio.to(["room1", "room2"]).except_("room3").volatile.compress(False).emit("multi")
    assert await wire.next("socket.io#") == ("socket.io#/#", bytes.fromhex(REF_MULTI))
    await sio.of("/custom").emit("custom-ev", 1)
    assert await wire.next("socket.io#") == ("socket.io#/custom#", bytes.fromhex(REF_CUSTOM))
    await sio.local.emit("local-only")
    await sio.emit("after-local")
    _channel, data = await wire.next("socket.io#")
    assert msgpack.unpackb(data)[1]["data"] == ["after-local"], "a local emit must not be published"


async def test_requests_are_byte_exact_and_answered(local_sio: Any, wire: Wire) -> None:
    sio, _, _ = await local_sio()
    _uid(sio, "/", "02TGly")
    answers: dict[int, Callable[[dict[str, Any]], list[bytes]]] = {
        5: lambda r: [json.dumps({"requestId": r["requestId"], "sockets": [{"id": "x" * 20, "handshake": {},
                                                                          "rooms": ["x" * 20, "r"], "data": 1}]}
                                 ).encode()],
        6: lambda r: [json.dumps({"type": 6, "requestId": r["requestId"], "data": {"pong": r["data"][1:]}}).encode()],
        1: lambda r: [json.dumps({"requestId": r["requestId"], "rooms": ["remote-room"]}).encode()],
        7: lambda r: [json.dumps({"type": 8, "requestId": r["requestId"], "clientCount": 1}).encode(),
                      msgpack.packb({"type": 9, "requestId": r["requestId"], "packet": {"clientGot": "q"}})],
    }

    async def answer(channel: str, data: bytes) -> None:
        request = json.loads(data) if data[:1] == b"{" else msgpack.unpackb(data)
        if request.get("uid") == "02TGly" and request.get("requestId") and request["type"] in answers:
            for payload in answers[request["type"]](request):
                await wire.redis.publish("socket.io-response#/#", payload)

    wire.answer = answer
    assert await sio.server_count() == 2  # the test's own subscription counts as a server

    def same(data: bytes, reference: str, request_id: str | None = None) -> None:
        got = json.loads(data)
        if request_id is not None:
            got["requestId"] = request_id
        assert json.dumps(got, separators=(",", ":")) == reference
        assert data == json.dumps(json.loads(data), separators=(",", ":")).encode(), "compact JSON, as Node writes"

    sockets = await sio.fetch_sockets()
    assert [(s.id, s.rooms, s.data, s.local) for s in sockets] == [("x" * 20, {"x" * 20, "r"}, 1, False)]
    same((await wire.next("socket.io-request#"))[1], REF_FETCH, "YlAQ8n")
    await sio.sockets_join("room9")
    same((await wire.next("socket.io-request#"))[1], REF_JOIN)
    await sio.in_("room1").sockets_leave("room9")
    same((await wire.next("socket.io-request#"))[1], REF_LEAVE)
    await sio.server_side_emit("ping-srv", 42)
    same((await wire.next("socket.io-request#"))[1], REF_SSE)
    assert await sio.server_side_emit_with_ack("ping-srv", 43) == [{"pong": [43]}]
    same((await wire.next("socket.io-request#"))[1], REF_SSE_ACK, "hrrmWy")
    assert await sio.all_rooms() == {"remote-room"}
    same((await wire.next("socket.io-request#"))[1], REF_ALL_ROOMS, "hdh6AO")
    answers_got = await sio.timeout(1).emit_with_ack("ack-event", "q")
    assert answers_got == [{"clientGot": "q"}]
    _channel, data = await wire.next("socket.io-request#")
    request = msgpack.unpackb(data)
    request["requestId"] = "-5F08K"
    assert msgpack.packb(request) == bytes.fromhex(REF_BROADCAST_ACK)
    await sio.disconnect_sockets(close=True)
    same((await wire.next("socket.io-request#"))[1], REF_DISCONNECT)

    # one subscription per channel per server: Node peers count servers with PUBSUB NUMSUB
    counts = dict(await wire.redis.pubsub_numsub("socket.io-request#/#", "socket.io-response#/#"))
    assert counts == {b"socket.io-request#/#": 2, b"socket.io-response#/#": 2}

    # a request nobody answers: ClusterTimeoutError, with what came
    wire.answer = None
    factory = sio._namespaces["/"].adapter.factory
    factory.request_timeout = 0.3
    with pytest.raises(ClusterTimeoutError) as err:
        await sio.fetch_sockets()
    assert (err.value.expected, err.value.received, err.value.responses) == (2, 1, [])


async def test_incoming_filters_and_answers(local_sio: Any, wire: Wire) -> None:
    """Own uid, other namespaces and rooms not held are dropped; every request type is answered."""
    sio, factory, url = await local_sio()
    _uid(sio, "/", "myuid1")
    client = socketio.AsyncClient(reconnection=False)
    got: list[tuple[str, Any]] = []
    arrived = asyncio.Event()

    def record(event: str, *args: Any) -> None:
        got.append((event, args))
        if event == "fence":
            arrived.set()

    client.on("*", record)
    await client.connect(url, transports=["websocket"], auth={"x": 1}, wait_timeout=5)
    sid = client.get_sid("/")
    await sio.enter_room(sid, "held")
    await sio.save_session(sid, {"user": "alice"})

    def bcast(uid: str, event: str, nsp: str = "/", rooms: list[str] | None = None) -> bytes:
        return msgpack.packb([uid, {"type": 2, "data": [event, b"\x00"], "nsp": nsp},
                              {"rooms": rooms or [], "except": [], "flags": {}}])

    await wire.redis.publish("socket.io#/#", bcast("myuid1", "own"))
    await wire.redis.publish("socket.io#/#", bcast("other1", "other-nsp", "/else"))
    await wire.redis.publish("socket.io#/#notheld#", bcast("other1", "not-held", rooms=["notheld"]))
    await wire.redis.publish("socket.io#/#held#", bcast("other1", "held", rooms=["held"]))
    await wire.redis.publish("socket.io#/#", msgpack.packb(["emitter", {"type": 2, "data": ["from-emitter"]},
                                                              {"rooms": [], "except": []}]))
    await wire.redis.publish("socket.io#/#", b"\xc1garbage")
    # Redis hands one subscriber its messages in publish order, and one WebSocket delivers in order: once
    # this last one is in, every message before it has been handled
    await wire.redis.publish("socket.io#/#", bcast("other1", "fence"))
    await asyncio.wait_for(arrived.wait(), 5)
    assert got == [("held", (b"\x00",)), ("from-emitter", ()), ("fence", (b"\x00",))]
    assert factory.stats["malformed"] == 1

    async def ask(request: dict[str, Any]) -> dict[str, Any]:
        await wire.redis.publish("socket.io-request#/#", json.dumps(request))
        _, data = await wire.next("socket.io-response#/#")
        return json.loads(data) if data[:1] == b"{" else msgpack.unpackb(data)

    assert await ask({"uid": "peer", "requestId": "r1", "type": 0, "rooms": []}) == {"requestId": "r1",
                                                                                    "sockets": [sid]}
    rooms = await ask({"uid": "peer", "requestId": "r2", "type": 1})
    assert sorted(rooms["rooms"]) == sorted([sid, "held"])
    fetched = await ask({"uid": "peer", "requestId": "r3", "type": 5, "opts": {"rooms": ["held"], "except": []}})
    (details,) = fetched["sockets"]
    assert (details["id"], details["rooms"], details["data"]) == (sid, [sid, "held"], {"user": "alice"})
    assert details["handshake"]["auth"] == {"x": 1} and details["handshake"]["address"] == "127.0.0.1"
    assert set(details["handshake"]) == {"headers", "time", "address", "xdomain", "secure", "issued", "url",
                                         "query", "auth"}
    # a server-side event nobody handles is answered null, so that the asker does not time out
    assert await ask({"uid": "peer", "requestId": "r4", "type": 6, "data": ["nobody", 1]}) == {
        "type": 6, "requestId": "r4", "data": None}
    # a broadcast with acks from a peer: the client count (JSON), then each client's ack (msgpack)
    client.on("survey", lambda *args: "yes")
    await wire.redis.publish("socket.io-request#/#", msgpack.packb({
        "uid": "peer", "requestId": "r5", "type": 7, "packet": {"type": 2, "data": ["survey"], "nsp": "/"},
        "opts": {"rooms": [], "except": [], "flags": {"timeout": 1000}}}))
    _, count = await wire.next("socket.io-response#/#")
    assert count == b'{"type":8,"requestId":"r5","clientCount":1}'
    _, ack = await wire.next("socket.io-response#/#")
    assert msgpack.unpackb(ack) == {"type": 9, "requestId": "r5", "packet": "yes"}
    # remote join / leave / disconnect, as the emitter sends them (no uid)
    await wire.redis.publish("socket.io-request#/#", json.dumps(
        {"type": 2, "opts": {"rooms": ["held"], "except": []}, "rooms": ["joined"]}))
    await eventually(lambda: _async(sio.rooms(sid) == sorted([sid, "held", "joined"])), what="remote join")
    await wire.redis.publish("socket.io-request#/#", json.dumps(
        {"type": 4, "opts": {"rooms": ["joined"], "except": []}, "close": False}))
    await eventually(lambda: _async(not client.connected), what="remote disconnect")
    await client.disconnect()


async def _async(value: bool) -> bool:
    return value


async def test_size_cap_and_local_delivery(local_sio: Any, wire: Wire) -> None:
    sio, factory, url = await local_sio(publish_max_bytes=1000)
    client = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    two = asyncio.Event()

    def big(*args: Any) -> None:
        got.append(args)
        if len(got) == 2:
            two.set()

    client.on("big", big)
    await client.connect(url, transports=["websocket"], wait_timeout=5)
    with pytest.raises(MessageTooLargeError, match=r"publish_max_bytes=1000") as err:
        await sio.emit("big", "x" * 2000)
    assert err.value.size > 2000 and factory.stats["too_large"] == 1
    await sio.emit("big", "small")
    await sio.local.emit("big", "x" * 2000)  # nothing published: no limit
    await asyncio.wait_for(two.wait(), 5)
    assert got == [("small",), ("x" * 2000,)], "a refused emit reaches nobody, not even local clients"
    await client.disconnect()


async def test_sharded_size_cap_and_answers_that_must_go_out(local_sio: Any, redis_server: RedisServer) -> None:
    """Sharded: an emit over publish_max_bytes raises before anything is sent; an answer over it goes out
    empty, so that the asking server does not wait for it until its deadline."""
    sio, factory, url = await local_sio(sharded=True, publish_max_bytes=2000)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=5)
    await sio.save_session(client.get_sid("/"), {"blob": "x" * 5000})
    with pytest.raises(MessageTooLargeError, match=r"publish_max_bytes=2000"):
        await sio.emit("big", "x" * 3000)
    peer = aioredis.from_url(redis_server.url, protocol=2)
    pubsub = peer.pubsub()
    try:
        await pubsub.ssubscribe("socket.io#/#peer-uid#")  # a server's own response channel
        request = {"type": 7, "data": {"opts": {"rooms": [], "except": []}, "requestId": "q1"},
                   "uid": "peer-uid", "nsp": "/"}
        await peer.execute_command("SPUBLISH", "socket.io#/#", json.dumps(request))

        async def answer() -> dict[str, Any] | None:
            message = await pubsub.get_message(timeout=0.1)
            if message is None or message["type"] != "smessage":
                return None
            decoded: dict[str, Any] = json.loads(message["data"])
            return decoded

        got = await wait_until(answer, timeout=5, what="an answer to FETCH_SOCKETS")
        assert got["type"] == 8 and got["data"] == {"requestId": "q1", "sockets": []} and got["nsp"] == "/"
        assert factory.stats["too_large"] == 2
    finally:
        await pubsub.aclose()
        await peer.aclose()
        await client.disconnect()


async def test_sharded_all_rooms_is_refused(local_sio: Any) -> None:
    sio, _, _ = await local_sio(sharded=True)
    with pytest.raises(AdapterError, match="sharded"):
        await sio.all_rooms()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="URL"):
        sioserver.RedisAdapter("localhost:6379")
    with pytest.raises(ValueError, match="subscription_mode"):
        sioserver.RedisAdapter("redis://x", subscription_mode="sometimes")


# ------------------------------------------------------------------------------- three sioservers


@pytest.fixture(scope="module")
def three(redis_server: RedisServer, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "A"), ("py", "B"), ("py", "C"), redis=redis_server.url, key="three")


async def six_peers(peers: Peers, nodes: list[ClusterNode]) -> tuple[Peer, ...]:
    a, b, c = nodes
    return tuple(await asyncio.gather(
        peers.connect("a1", a, ["r1"]), peers.connect("a2", a),
        peers.connect("b1", b, ["r1", "r2"]), peers.connect("b2", b),
        peers.connect("c1", c, ["r2"]), peers.connect("c2", c, ["r1"]),
    ))


_fences = 0


async def fence(via: Peer, peers: tuple[Peer, ...]) -> None:
    """What ``via``'s server published before has been delivered everywhere: ``via``'s server publishes
    a marker to everyone after it, Redis hands each subscriber its messages in publish order, and each
    client's connection delivers in order."""
    global _fences
    _fences += 1
    marker = f"fence-{_fences}"
    await via.do("broadcast", {"event": marker})
    for peer in peers:
        if peer.sio.connected:
            await peer.wait_for(marker)


async def expect(everyone: tuple[Peer, ...], event: str, receivers: list[Peer],
                 via: Peer | None) -> list[list[Any]]:
    """Every receiver gets ``event`` exactly once, nobody else gets it. ``via``: the peer whose server
    published it (or published it through an emitter whose publish it awaited), for a barrier; None when
    it came some other way, and a pause must do."""
    for peer in receivers:
        await peer.wait_for(event)
    if via is None:
        await settle()
    else:
        await fence(via, everyone)
    counts = {p.name: len(p.got(event)) for p in everyone}
    assert counts == {p.name: (1 if p in receivers else 0) for p in everyone}, event
    return [p.got(event)[0] for p in receivers]


async def test_three_nodes_broadcast(three: list[ClusterNode], peers: Peers) -> None:
    everyone = a1, a2, b1, b2, c1, c2 = await six_peers(peers, three)
    assert await a1.do("server-count") == 3
    await a2.do("broadcast", {"event": "all", "args": [1, {"é": [True, None]}]})
    assert await expect(everyone, "all", list(everyone), a2) == [[1, {"é": [True, None]}]] * 6
    await b2.do("broadcast", {"event": "room", "to": "r1", "args": [{"$bytes": "00ff"}]})
    assert await expect(everyone, "room", [a1, b1, c2], b2) == [[b"\x00\xff"]] * 3
    await c1.do("broadcast", {"event": "multi", "to": ["r1", "r2"]})
    await expect(everyone, "multi", [a1, b1, c1, c2], c1)
    await a1.do("broadcast", {"event": "except", "except": "r1"})
    await expect(everyone, "except", [a2, b2, c1], a1)
    await a1.do("broadcast", {"event": "room-except", "to": "r2", "except": "r1"})
    await expect(everyone, "room-except", [c1], a1)
    await a1.do("broadcast", {"event": "to-sid", "to": c2.sid, "args": ["direct"]})
    await expect(everyone, "to-sid", [c2], a1)
    await b1.do("broadcast", {"event": "local", "local": True})
    await expect(everyone, "local", [b1, b2], b1)


async def test_three_nodes_cluster_operations(three: list[ClusterNode], peers: Peers) -> None:
    everyone = a1, a2, b1, b2, c1, c2 = await six_peers(peers, three)
    fetched = await a1.do("fetch")
    assert {s["id"]: (s["data"]["name"], s["local"]) for s in fetched} == {
        p.sid: (p.name, p.node.name == "A") for p in everyone}
    by_id = {s["id"]: s for s in fetched}
    assert by_id[b1.sid]["rooms"] == sorted([b1.sid, "r1", "r2"])
    assert by_id[c1.sid]["auth"] == {"name": "c1", "rooms": ["r2"]} and "headers" in by_id[c1.sid]["handshake"]
    assert sorted(s["id"] for s in await c2.do("fetch", {"to": "r1"})) == sorted(p.sid for p in (a1, b1, c2))
    assert sorted(s["id"] for s in await c2.do("fetch", {"to": "r1", "local": True})) == [c2.sid]

    async def members(room: str) -> set[str]:
        return {s["id"] for s in await a2.do("fetch", {"to": room})}

    await b1.do("sockets-join", {"to": "r2", "rooms": ["r9"]})
    await eventually(lambda: _eq(members("r9"), {b1.sid, c1.sid}), what="sockets_join across nodes")
    assert "r9" in await c2.do("all-rooms")
    await a2.do("broadcast", {"event": "r9", "to": "r9"})
    await expect(everyone, "r9", [b1, c1], a2)
    await c2.do("sockets-leave", {"to": "r9", "rooms": "r9"})
    await eventually(lambda: _eq(members("r9"), set()), what="sockets_leave across nodes")
    assert "r9" not in await a1.do("all-rooms")

    # RemoteSocket: emit / join / leave / disconnect on a socket of another node
    assert await a1.do("remote", {"id": c1.sid, "action": "emit", "args": ["direct", 5]}) == "ok"
    assert await expect(everyone, "direct", [c1], a1) == [[5]]
    await a1.do("remote", {"id": b2.sid, "action": "join", "args": ["solo"]})
    await eventually(lambda: _eq(members("solo"), {b2.sid}), what="RemoteSocket.join")
    await a1.do("remote", {"id": b2.sid, "action": "leave", "args": ["solo"]})
    await eventually(lambda: _eq(members("solo"), set()), what="RemoteSocket.leave")
    await c2.do("remote", {"id": a2.sid, "action": "disconnect"})
    await a2.wait_disconnected()

    # server-side events: to the other nodes, not the sender; with acks: one answer per other node
    await a1.do("sse", {"event": "note", "args": ["hello"]})

    async def noted(peer: Peer) -> bool:
        return ["note", "hello"] in await peer.do("server-events")

    await eventually(lambda: noted(b1), what="server_side_emit reached B")
    await eventually(lambda: noted(c1), what="server_side_emit reached C")
    assert not await noted(a1)
    result = await a1.do("sse-ack", {"event": "ping-srv", "args": [7]})
    assert result["ok"] and result["elapsed"] < 1.0, result
    assert sorted(result["answers"], key=lambda a: a["node"]) == [{"pong": [7], "node": "B"},
                                                                  {"pong": [7], "node": "C"}]

    # a broadcast with acks collects the answers of clients on every node
    result = await b1.do("emit-ack", {"event": "survey", "timeout": 3})
    assert result["elapsed"] < 1.5, "every node reported its count and every client answered: no timeout"
    assert sorted(a["from"] for a in result["answers"]) == ["a1", "b1", "b2", "c1", "c2"]
    result = await c1.do("emit-ack", {"event": "survey", "to": "r1", "timeout": 3})
    assert sorted(a["from"] for a in result["answers"]) == ["a1", "b1", "c2"] and result["elapsed"] < 1.5

    # disconnect_sockets across nodes
    await a1.do("disconnect-sockets", {"to": "r2"})
    await b1.wait_disconnected()
    await c1.wait_disconnected()
    await fence(a1, everyone)  # a wrong disconnect would have reached its client before this marker
    assert [p.sio.connected for p in (a1, b2, c2)] == [True, True, True]
    for node in three:
        assert node.alive and "Traceback" not in node.log(), node.log()[-3000:]


async def _eq(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


# ----------------------------------------------------------------------------------------- sharded


@pytest.fixture(scope="module")
def sharded(redis_server: RedisServer, cluster: Cluster, interop_node_modules: Path) -> list[ClusterNode]:
    return cluster.start(("py", "S1"), ("py", "S2"), ("js", "SN"), redis=redis_server.url, key="shard",
                         sharded=True)


@pytest.mark.interop
async def shard_subscribers(url: str, channel: str, count: int, timeout: float = 5.0) -> None:
    """Wait until ``count`` servers have subscribed ``channel`` (Redis itself is asked)."""
    client = aioredis.from_url(url)

    async def subscribed() -> bool:
        return numsub_count(await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)) >= count

    try:
        await wait_until(subscribed, timeout=timeout, what=f"{count} subscribers of {channel}")
    finally:
        await client.aclose()


async def test_sharded_cluster_with_node(sharded: list[ClusterNode], peers: Peers, redis_server: RedisServer) -> None:
    s1, s2, sn = sharded
    everyone = p1, p2, n1 = await asyncio.gather(
        peers.connect("p1", s1, ["r1"]), peers.connect("p2", s2, ["r2"]), peers.connect("n1", sn, ["r1"]))
    assert await p1.do("server-count") == 3
    assert await n1.do("server-count") == 3
    for sender in everyone:  # from each kind of server: to all, to a public room (its own channel), to a sid
        event = f"all-{sender.name}"
        await sender.do("broadcast", {"event": event, "args": [{"$bytes": "0102"}]})
        assert await expect(everyone, event, list(everyone), sender) == [[b"\x01\x02"]] * 3
        event = f"room-{sender.name}"
        await sender.do("broadcast", {"event": event, "to": "r1"})
        await expect(everyone, event, [p1, n1], sender)
        event = f"sid-{sender.name}"
        await sender.do("broadcast", {"event": event, "to": p2.sid})
        await expect(everyone, event, [p2], sender)
    for asker in (p1, n1):
        fetched = await asker.do("fetch")
        assert sorted(s["id"] for s in fetched) == sorted(p.sid for p in everyone), asker
        result = await asker.do("sse-ack", {"event": "ping-srv", "args": [asker.name]})
        assert result["ok"] and result["elapsed"] < 1.0, result
        assert sorted(a["node"] for a in result["answers"]) == sorted(n.name for n in sharded if n is not asker.node)
        result = await asker.do("emit-ack", {"event": "survey", "timeout": 3})
        assert sorted(a["from"] for a in result["answers"]) == ["n1", "p1", "p2"] and result["elapsed"] < 1.5
    await n1.do("sockets-join", {"to": "r2", "rooms": ["shared"]})
    await p2.do("sockets-join", {"to": "r1", "rooms": ["shared"]})
    # every server now holds "shared" (r1 is on S1 and SN, r2 on S2): each subscribes its dynamic channel
    await shard_subscribers(redis_server.url, "shard#/#shared#", 3)
    await p1.do("broadcast", {"event": "shared-room", "to": "shared"})
    await expect(everyone, "shared-room", list(everyone), p1)
    await p2.do("disconnect-sockets", {"to": "shared", "except": "r2"})
    await p1.wait_disconnected()
    await n1.wait_disconnected()
    assert p2.sio.connected


# ------------------------------------------------------------------------ the same API, one process


async def test_cluster_api_on_one_process() -> None:
    """With the default memory adapter the cluster API acts on this server alone."""
    sio = sioserver.AsyncServer()
    server = await serving.attached(sio)
    client = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    client.on("news", lambda *args: got.append(args))
    client.on("question", lambda *args: ("answer", *args))
    try:
        await client.connect(server.url, transports=["websocket"], auth={"a": 1}, wait_timeout=5)
        sid = client.get_sid("/")
        await sio.save_session(sid, {"user": "bob"})
        (s,) = await sio.fetch_sockets()
        assert (s.id, s.sid, s.rooms, s.data, s.local) == (sid, sid, {sid}, {"user": "bob"}, True)
        assert s.handshake["auth"] == {"a": 1} and s.handshake["query"]["EIO"] == "4"
        assert await s.call("question", 1, timeout=2) == ["answer", 1]
        await s.join("r1")
        await sio.sockets_join("r2")
        assert await sio.all_rooms() == {sid, "r1", "r2"}
        assert [x.id for x in await sio.to("r1").fetch_sockets()] == [sid]
        await sio.in_("r1").sockets_leave(["r1", "r2"])
        assert sio.rooms(sid) == [sid]
        await sio.local.emit("news", 1)
        await s.emit("news", 2)
        assert await sio.server_count() == 1
        assert await sio.server_side_emit_with_ack("anything") == []
        await sio.server_side_emit("anything")
        await wait_until(lambda: len(got) >= 2, timeout=3, what=lambda: f"news 1 and 2; got {got}")
        assert got == [(1,), (2,)]
        await sio.disconnect_sockets()
        await wait_until(lambda: not client.connected, timeout=3, what="the client is still connected")
    finally:
        await client.disconnect()
        await sio.shutdown()
        await server.close()
