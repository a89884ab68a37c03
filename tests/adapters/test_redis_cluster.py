"""Three sioserver processes over a real Redis Cluster (three ``redis-server --cluster-enabled yes``
masters made by ``redis-cli --cluster create``), with ``redis+cluster://`` URLs and sharded Pub/Sub:
broadcasts, rooms and cluster operations across the nodes; the master serving the namespace's channel
restarted mid-stream; a slot moved to another master (MOVED, and Redis unsubscribing by itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

import sioserver
from sioserver.adapters._shards import ClusterLink
from sioserver.adapters.registry import NodeRegistry, registry_for
from tests._support.redis import RedisCluster, command
from tests._support.wait import wait_until

from .conftest import Cluster, ClusterNode, Peer, Peers
from .test_redis import expect, fence

KEY = "rc"
CHANNEL = f"{KEY}#/#".encode()


@pytest.fixture(scope="module")
def redis_cluster(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    rc = RedisCluster(redis_binary, tmp_path_factory.mktemp("redis-cluster"))
    try:
        rc.start()
        yield rc
    finally:
        rc.stop()


@pytest.fixture(scope="module")
def trio(redis_cluster: RedisCluster, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "A"), ("py", "B"), ("py", "C"), redis=redis_cluster.url, key=KEY, sharded=True)


async def six(peers: Peers, nodes: list[ClusterNode]) -> tuple[Peer, ...]:
    a, b, c = nodes
    return await asyncio.gather(
        peers.connect("a1", a, ["r1"]), peers.connect("a2", a),
        peers.connect("b1", b, ["r1", "r2"]), peers.connect("b2", b),
        peers.connect("c1", c, ["r2"]), peers.connect("c2", c, ["r1"]),
    )


async def check_everything(everyone: tuple[Peer, ...], tag: str) -> None:
    a1, a2, b1, b2, c1, c2 = everyone
    assert await a1.do("server-count") == 3
    await a2.do("broadcast", {"event": f"all-{tag}", "args": [1, {"é": [True, None]}]})
    assert await expect(everyone, f"all-{tag}", list(everyone), a2) == [[1, {"é": [True, None]}]] * 6
    await b2.do("broadcast", {"event": f"room-{tag}", "to": "r1", "args": [{"$bytes": "00ff"}]})
    assert await expect(everyone, f"room-{tag}", [a1, b1, c2], b2) == [[b"\x00\xff"]] * 3
    await c1.do("broadcast", {"event": f"except-{tag}", "except": "r1"})
    await expect(everyone, f"except-{tag}", [a2, b2, c1], c1)
    await a1.do("broadcast", {"event": f"to-sid-{tag}", "to": c2.sid})
    await expect(everyone, f"to-sid-{tag}", [c2], a1)
    fetched = await a1.do("fetch")
    assert {s["id"]: s["data"]["name"] for s in fetched} == {p.sid: p.name for p in everyone}
    assert sorted(s["id"] for s in await c2.do("fetch", {"to": "r2"})) == sorted(p.sid for p in (b1, c1))
    result = await a1.do("sse-ack", {"event": "ping-srv", "args": [tag]})
    assert result["ok"] and sorted(result["answers"], key=lambda x: x["node"]) == [
        {"pong": [tag], "node": "B"}, {"pong": [tag], "node": "C"}], result
    await b1.do("sse", {"event": f"note-{tag}"})
    for peer in (a1, c1):
        await wait_until(lambda p=peer: _noted(p, f"note-{tag}"), timeout=5, what=f"server_side_emit reached {peer}")
    result = await c1.do("emit-ack", {"event": "survey", "timeout": 3})
    assert sorted(x["from"] for x in result["answers"]) == sorted(p.name for p in everyone)
    assert result["elapsed"] < 1.5, result


async def _noted(peer: Peer, event: str) -> bool:
    return [event] in await peer.do("server-events")


async def test_three_nodes_over_the_cluster(trio: list[ClusterNode], peers: Peers,
                                            redis_cluster: RedisCluster) -> None:
    everyone = await six(peers, trio)
    await check_everything(everyone, "first")
    stats = await everyone[0].do("stats")
    assert stats["healthy"] and not stats.get("messages_lost") and not stats.get("messages_short"), stats


async def test_a_master_restarted_mid_stream(trio: list[ClusterNode], peers: Peers, redis_cluster: RedisCluster,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    everyone = await six(peers, trio)
    a1, b1, c1 = everyone[0], everyone[2], everyone[4]
    await fence(a1, everyone)
    before = await a1.do("stats")
    count = 150
    assert await a1.do("stream", {"event": "tick", "count": count, "interval": 0.02}) == "started"
    await b1.wait_for("tick", count=30)
    owner = redis_cluster.slot_owner(key_slot(CHANNEL))
    answered = await asyncio.to_thread(redis_cluster.restart, owner, 0.5)
    seen = len(b1.got("tick"))
    await b1.wait_for("tick", count=seen + 1)
    resumed = time.monotonic() - answered  # within the 10 ms of the poll
    for peer in (b1, c1):
        await peer.wait_for("stream-done", timeout=20)
    after = await a1.do("stats")
    counted = {k: after.get(k, 0) - before.get(k, 0) for k in ("messages_lost", "messages_short",
                                                                "messages_uncertain")}
    figures = []
    for peer in (b1, c1):
        got = [args[0] for args in peer.got("tick")]
        assert got == sorted(set(got)), f"{peer}: no duplicates, no reordering"
        missing = len(set(range(count)) - set(got))
        figures.append(f"{peer.node.name} missed {missing}")
        lost_short = counted["messages_lost"] + counted["messages_short"]
        assert missing <= lost_short + counted["messages_uncertain"], (peer, missing, counted)
    with capsys.disabled():
        print(f"\nRedis Cluster master {owner} (serving {CHANNEL!r}) restarted after 0.5 s: "
              f"delivery to B resumed {resumed * 1000:.0f} ms after it answered a PING; {', '.join(figures)}; "
              f"sender counted {counted}")
    redis_cluster.wait_ok()
    await wait_until(lambda: _healthy(everyone), timeout=10, what="every node healthy again")
    await check_everything(everyone, "after-restart")
    for node in trio:
        assert node.alive and "Traceback" not in node.log(), node.log()[-3000:]


async def _healthy(everyone: tuple[Peer, ...]) -> bool:
    return all([(await p.do("stats"))["healthy"] for p in everyone[::2]])


async def test_a_slot_moved_to_another_master(trio: list[ClusterNode], peers: Peers, redis_cluster: RedisCluster,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The namespace channel's slot is handed to another master (it holds no keys): Redis unsubscribes
    its subscribers, the old master answers SPUBLISH with MOVED; the nodes follow the slot."""
    everyone = await six(peers, trio)
    slot = key_slot(CHANNEL)
    old = redis_cluster.slot_owner(slot)
    new = (old + 1) % len(redis_cluster.nodes)
    new_id = redis_cluster.node_id(new)
    for i in (new, old, *(i for i in range(len(redis_cluster.nodes)) if i not in (new, old))):
        reply = command(redis_cluster.nodes[i].port, "CLUSTER", "SETSLOT", str(slot), "NODE", new_id)
        assert reply.startswith(b"+OK"), reply
    assert redis_cluster.slot_owner(slot) == new
    moved_at = time.monotonic()

    async def followed() -> bool:
        return all([await p.do("server-count") == 3 for p in everyone[::2]])

    await wait_until(followed, timeout=5, what="every node resubscribed on the slot's new master")
    followed_in = time.monotonic() - moved_at
    await check_everything(everyone, "after-move")
    stats = [await p.do("stats") for p in everyone[::2]]
    assert all(s["healthy"] for s in stats), stats
    with capsys.disabled():
        print(f"\nslot {slot} moved from master {old} to {new}: every node subscribed there within "
              f"{followed_in * 1000:.0f} ms; MOVED answers followed: {[s.get('moved', 0) for s in stats]}")
    for node in trio:
        assert node.alive and "Traceback" not in node.log(), node.log()[-3000:]

    # a server publishing on a stale slot map (its map says the slot is on another master, as it would
    # between a move and its refresh): that master answers MOVED, the message is published where it says
    factory = sioserver.RedisAdapter(redis_cluster.url, key=KEY)
    sio = sioserver.AsyncServer(adapter=factory)
    try:
        sio._cluster_namespace("/")
        assert await factory.wait_ready(10)
        link = factory.adapters[0].link
        assert isinstance(link, ClusterLink) and link.owner(CHANNEL) == ("127.0.0.1", redis_cluster.nodes[new].port)
        link._move_slot(slot, "127.0.0.1", redis_cluster.nodes[old].port)
        await sio.emit("while-moving", 1)
        await expect(everyone, "while-moving", list(everyone), None)
        assert factory.stats["moved"] == 1 and not factory.stats["messages_lost"], factory.stats
        assert link.owner(CHANNEL) == ("127.0.0.1", redis_cluster.nodes[new].port)
    finally:
        await sio.shutdown()


@pytest.fixture(scope="module")
def mixed(redis_cluster: RedisCluster, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "P"), ("js", "N"), redis=redis_cluster.url, key="rcmix", sharded=True)


async def test_a_node_server_on_the_same_cluster(mixed: list[ClusterNode], peers: Peers) -> None:
    """Node socket.io with createShardedAdapter over node-redis createCluster, and sioserver, on one
    Redis Cluster: the same shard channels on the same masters, each other's messages understood."""
    p, n = mixed
    everyone = p1, p2, n1 = await asyncio.gather(peers.connect("p1", p, ["r"]), peers.connect("p2", p),
                                                 peers.connect("n1", n, ["r"]))
    # Node's adapter subscribes to its shard channel on its own time after it listens (node-redis' cluster
    # client): the count (SHARDNUMSUB) says when it has; the full suite once asked a moment too early
    async def both_subscribed() -> bool:
        return bool(await p1.do("server-count") == 2)

    await wait_until(both_subscribed, timeout=5, what="the Node server subscribed to the shard channel")
    await n1.do("broadcast", {"event": "from-node", "args": [1]})
    assert await expect(everyone, "from-node", list(everyone), n1) == [[1]] * 3
    await p2.do("broadcast", {"event": "from-py", "to": "r", "args": [{"$bytes": "01"}]})
    assert await expect(everyone, "from-py", [p1, n1], p2) == [[b"\x01"]] * 2
    fetched = await n1.do("fetch")
    assert sorted(s["id"] for s in fetched) == sorted(x.sid for x in everyone)
    result = await p1.do("sse-ack", {"event": "ping-srv", "args": [3]})
    assert result["ok"] and result["answers"] == [{"pong": [3], "node": "N"}], result
    result = await n1.do("sse-ack", {"event": "ping-srv", "args": [4]})
    assert result["ok"] and result["answers"] == [{"pong": [4], "node": "P"}], result


def test_cluster_urls_need_the_sharded_adapter() -> None:
    with pytest.raises(ValueError, match="sharded"):
        sioserver.RedisAdapter("redis+cluster://127.0.0.1:7000", sharded=False)
    assert sioserver.RedisAdapter("redis+cluster://127.0.0.1:7000").sharded


async def test_the_node_registry_on_a_redis_cluster(redis_cluster: RedisCluster) -> None:
    """Where nodes take forwarded requests (sioserver/adapters/registry.py), kept on a Redis Cluster: the key
    lives on its slot's master, found by redis-py's cluster client from the URL's seeds."""
    registry = registry_for(sioserver.RedisAdapter(redis_cluster.url))
    other = NodeRegistry(redis_cluster.url)
    assert registry is not None
    try:
        await registry.register("c1a55e5a", "10.9.8.7:8000")
        assert await other.resolve("c1a55e5a") == ("10.9.8.7", 8000)
        assert await other.resolve("0badf00d") is None
    finally:
        await registry.close()
    other.forget("c1a55e5a")
    assert await other.resolve("c1a55e5a") is None  # deleted at close
    await other.close()
