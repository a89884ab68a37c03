"""A Node socket.io 4.8 server with @socket.io/redis-adapter 8.x and sioserver processes in one Redis:
broadcasts cross both ways; Node's fetchSockets(), serverSideEmitWithAck() and emitWithAck() complete
without timeouts with sioserver in the cluster, and the same calls from sioserver with Node in it;
@socket.io/redis-emitter reaches sioserver's clients and sioserver.Emitter reaches Node's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests._support.redis import RedisServer

from .conftest import Cluster, ClusterNode, Peer, Peers, settle
from .test_redis import expect

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def mixed(redis_server: RedisServer, cluster: Cluster, interop_node_modules: Path) -> list[ClusterNode]:
    return cluster.start(("js", "N"), ("py", "S"), ("py", "T"), redis=redis_server.url, key="mixed")


async def four(peers: Peers, nodes: list[ClusterNode]) -> tuple[Peer, ...]:
    n, s, t = nodes
    return tuple(await asyncio.gather(
        peers.connect("n1", n, ["r1"]), peers.connect("n2", n),
        peers.connect("s1", s, ["r1"]), peers.connect("t1", t, ["r2"]),
    ))


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def test_broadcasts_cross_both_ways(mixed: list[ClusterNode], peers: Peers) -> None:
    everyone = n1, n2, s1, t1 = await four(peers, mixed)
    for sender in (n2, s1):
        tag = sender.node.name
        await sender.do("broadcast", {"event": f"all-{tag}", "args": ["é", {"$bytes": "00ff10"}, 1.5, None]})
        assert await expect(everyone, f"all-{tag}", list(everyone), sender) == [["é", b"\x00\xff\x10", 1.5, None]] * 4
        await sender.do("broadcast", {"event": f"room-{tag}", "to": "r1", "args": [tag]})
        assert await expect(everyone, f"room-{tag}", [n1, s1], sender) == [[tag]] * 2
        await sender.do("broadcast", {"event": f"except-{tag}", "except": "r1"})
        await expect(everyone, f"except-{tag}", [n2, t1], sender)
        await sender.do("broadcast", {"event": f"multi-{tag}", "to": ["r1", "r2"], "except": n1.sid})
        await expect(everyone, f"multi-{tag}", [s1, t1], sender)
        target = t1 if sender is n2 else n1
        await sender.do("broadcast", {"event": f"sid-{tag}", "to": target.sid})
        await expect(everyone, f"sid-{tag}", [target], sender)


async def test_cluster_calls_complete_both_ways(mixed: list[ClusterNode], peers: Peers) -> None:
    everyone = n1, n2, s1, t1 = await four(peers, mixed)
    all_sids = sorted(p.sid for p in everyone)
    for asker in (n1, s1):
        started = time.monotonic()
        fetched = await asker.do("fetch")
        assert time.monotonic() - started < 1.0, f"{asker}: fetchSockets waited for a missing answer"
        assert sorted(s["id"] for s in fetched) == all_sids
        by_id = {s["id"]: s for s in fetched}
        assert by_id[s1.sid]["data"] == {"name": "s1"} and by_id[n1.sid]["data"] == {"name": "n1"}
        assert by_id[s1.sid]["rooms"] == sorted([s1.sid, "r1"]) and by_id[n1.sid]["rooms"] == sorted([n1.sid, "r1"])
        assert by_id[t1.sid]["auth"] == {"name": "t1", "rooms": ["r2"]}
        assert {"headers", "address", "query", "auth", "time", "issued"} <= set(by_id[n2.sid]["handshake"])
        assert sorted(s["id"] for s in await asker.do("fetch", {"to": "r1"})) == sorted([n1.sid, s1.sid])

        result = await asker.do("sse-ack", {"event": "ping-srv", "args": [asker.name]})
        assert result["ok"] and result["elapsed"] < 1.0, result
        others = sorted(n.name for n in mixed if n is not asker.node)
        assert sorted(a["node"] for a in result["answers"]) == others
        assert all(a["pong"] == [asker.name] for a in result["answers"])

        result = await asker.do("emit-ack", {"event": "survey", "timeout": 3})
        assert result["ok"] and result["elapsed"] < 1.5, result
        assert sorted(a["from"] for a in result["answers"]) == ["n1", "n2", "s1", "t1"]
        result = await asker.do("emit-ack", {"event": "survey", "to": "r2", "timeout": 3})
        assert [a["from"] for a in result["answers"]] == ["t1"] and result["elapsed"] < 1.5, result

        rooms = await asker.do("all-rooms")
        assert {"r1", "r2", *all_sids} <= set(rooms)

    # an event no sioserver handler takes is still answered (null): Node does not wait 5 s for it
    result = await n1.do("sse-ack", {"event": "nobody-handles-this", "args": []})
    assert result["ok"] and result["elapsed"] < 1.0 and result["answers"] == [None, None], result

    # server-side events without acks, both ways
    await n1.do("sse", {"event": "note", "args": ["from-node"]})
    await s1.do("sse", {"event": "note", "args": ["from-sio"]})

    async def noted(peer: Peer, args: list[str]) -> bool:
        return args in await peer.do("server-events")

    await until(lambda: noted(s1, ["note", "from-node"]), "Node's serverSideEmit reached sioserver")
    await until(lambda: noted(n1, ["note", "from-sio"]), "sioserver's server_side_emit reached Node")
    await until(lambda: noted(t1, ["note", "from-sio"]), "and the other sioserver")

    # joins, leaves and disconnects, each side acting on the other's sockets
    async def members(room: str) -> list[str]:
        return sorted(s["id"] for s in await n2.do("fetch", {"to": room}))

    await n1.do("sockets-join", {"to": "r1", "rooms": ["j1"]})
    await until(lambda: _eq(members("j1"), sorted([n1.sid, s1.sid])), "Node's socketsJoin on a sioserver socket")
    await s1.do("sockets-join", {"to": "r2", "rooms": ["j1"]})
    await until(lambda: _eq(members("j1"), sorted([n1.sid, s1.sid, t1.sid])), "sioserver's sockets_join")
    await t1.do("remote", {"id": n2.sid, "action": "join", "args": ["j2"]})
    await until(lambda: _eq(members("j2"), [n2.sid]), "sioserver RemoteSocket.join on a Node socket")
    await n2.do("remote", {"id": t1.sid, "action": "emit", "args": ["hi", 1]})
    assert await expect(everyone, "hi", [t1], n2) == [[1]]
    await s1.do("sockets-leave", {"to": "j1", "rooms": "j1"})
    await until(lambda: _eq(members("j1"), []), "sioserver's sockets_leave on Node sockets")
    await n1.do("disconnect-sockets", {"to": "j2"})
    await n2.wait_disconnected()
    await s1.do("remote", {"id": t1.sid, "action": "disconnect"})
    await t1.wait_disconnected()
    await settle()
    assert n1.sio.connected and s1.sio.connected
    for node in mixed:
        assert node.alive and "Traceback" not in node.log() and "timeout reached" not in node.log(), node.log()


async def _eq(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def test_emitters_reach_the_other_kind(mixed: list[ClusterNode], peers: Peers) -> None:
    everyone = n1, n2, s1, t1 = await four(peers, mixed)
    # @socket.io/redis-emitter (npm), run in the Node process, to sioserver clients (and Node's)
    await n2.do("npm-emitter", {"event": "npm", "to": "r1", "args": [{"$bytes": "ff00"}, "x"]})
    assert await expect(everyone, "npm", [n1, s1], None) == [[b"\xff\x00", "x"]] * 2
    await n2.do("npm-emitter", {"event": "npm-except", "except": "r1"})
    await expect(everyone, "npm-except", [n2, t1], None)
    await n2.do("npm-emitter", {"action": "sockets-join", "to": "r2", "rooms": ["from-npm"]})
    await n2.do("npm-emitter", {"action": "server-side-emit", "event": "note", "args": ["npm-emitter"]})

    async def joined() -> bool:
        return [s["id"] for s in await s1.do("fetch", {"to": "from-npm"})] == [t1.sid]

    await until(joined, "npm emitter socketsJoin on a sioserver socket")

    async def noted() -> bool:
        return ["note", "npm-emitter"] in await t1.do("server-events")

    await until(noted, "npm emitter serverSideEmit reached sioserver")

    # sioserver.Emitter to Node clients (and sioserver's)
    receivers = await s1.do("emitter", {"event": "py-emitter", "to": "r1", "args": [{"$bytes": "01"}]})
    assert receivers == 3, "every server of the namespace got the message from Redis"
    assert await expect(everyone, "py-emitter", [n1, s1], s1) == [[b"\x01"]] * 2
    await s1.do("emitter", {"action": "sockets-join", "to": "r1", "rooms": ["from-py"]})
    await s1.do("emitter", {"action": "server-side-emit", "event": "note", "args": ["py-emitter"]})

    async def node_joined() -> bool:
        return sorted(s["id"] for s in await n2.do("fetch", {"to": "from-py"})) == sorted([n1.sid, s1.sid])

    await until(node_joined, "sioserver.Emitter sockets_join on Node sockets")

    async def node_noted() -> bool:
        return ["note", "py-emitter"] in await n1.do("server-events")

    await until(node_noted, "sioserver.Emitter server_side_emit reached Node")
    await t1.do("emitter", {"action": "disconnect-sockets", "to": "from-py"})
    await n1.wait_disconnected()
    await s1.wait_disconnected()
