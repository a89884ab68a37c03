"""Two sioserver processes on a Sentinel-watched Redis (a master, a replica, three sentinels, all real
redis-server processes), with a ``redis+sentinel://`` URL: they find the master through the sentinels,
and when it is killed mid-stream the sentinels promote the replica and the nodes follow it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import sioserver
from sioserver.adapters.registry import NodeRegistry, registry_for
from tests._support.redis import RedisSentinels
from tests._support.wait import wait_until

from .conftest import Cluster, ClusterNode, Peers
from .test_redis import expect, fence


@pytest.fixture(scope="module")
def sentinels(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinels]:
    watched = RedisSentinels(redis_binary, tmp_path_factory.mktemp("sentinel"))
    try:
        watched.start()
        yield watched
    finally:
        watched.stop()


@pytest.fixture(scope="module")
def pair(sentinels: RedisSentinels, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "S"), ("py", "T"), redis=sentinels.url, key="sentinel")


async def test_a_failover_is_followed(pair: list[ClusterNode], peers: Peers, sentinels: RedisSentinels,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    s, t = pair
    everyone = s1, t1 = await asyncio.gather(peers.connect("s1", s, ["r"]), peers.connect("t1", t))
    for node in pair:
        assert f"master 'mymaster' (at 127.0.0.1:{sentinels.master.port}) of sentinels" in node.log()
    await s1.do("broadcast", {"event": "before", "to": "r"})
    await expect(everyone, "before", [s1], s1)
    result = await t1.do("sse-ack", {"event": "ping-srv", "args": [1]})
    assert result["ok"] and result["answers"] == [{"pong": [1], "node": "S"}], result

    # sioserver.Emitter with the same URL publishes on the master the sentinels name
    assert await t1.do("emitter", {"event": "emitted", "args": [1]}) == 2
    await expect(everyone, "emitted", list(everyone), None)

    before = await s1.do("stats")
    count = 300
    assert await s1.do("stream", {"event": "tick", "count": count, "interval": 0.02}) == "started"
    await t1.wait_for("tick", count=25)
    old = sentinels.master.port
    killed = time.monotonic()
    sentinels.master.kill()
    await wait_until(lambda: sentinels.master_port() != old, timeout=20, what="the sentinels promoted the replica")
    promoted = time.monotonic()
    seen = len(t1.got("tick"))
    await t1.wait_for("tick", count=seen + 1, timeout=10)
    resumed = time.monotonic() - promoted
    await t1.wait_for("stream-done", timeout=20)
    after = await s1.do("stats")
    counted = {k: after.get(k, 0) - before.get(k, 0) for k in ("messages_lost", "messages_short",
                                                                "messages_uncertain")}
    got = [args[0] for args in t1.got("tick")]
    assert got == sorted(set(got)), "no duplicates, no reordering"
    missing = len(set(range(count)) - set(got))
    with capsys.disabled():
        print(f"\nSentinel failover: master killed, replica promoted {promoted - killed:.2f}s later; delivery "
              f"across nodes resumed {resumed * 1000:.0f} ms after the sentinels named the new master; the other "
              f"node missed {missing} of {count}; sender counted {counted}")
    lost_short = counted["messages_lost"] + counted["messages_short"]
    assert lost_short <= missing <= lost_short + counted["messages_uncertain"], (missing, counted)

    await fence(t1, everyone)
    result = await s1.do("sse-ack", {"event": "ping-srv", "args": [2]})
    assert result["ok"] and result["answers"] == [{"pong": [2], "node": "T"}], result
    await t1.do("broadcast", {"event": "after", "to": "r"})
    await expect(everyone, "after", [s1], t1)

    async def emitted_again() -> bool:  # its first publish may meet the dead master's connection
        try:
            reply = await t1.do("emitter", {"event": "emitted-after", "args": [2]})
        except AssertionError:  # RedisUnavailableError, reported by the node
            return False
        return bool(reply == 2)

    await wait_until(emitted_again, timeout=10, interval=0.2, what="the Emitter publishes on the new master")
    await s1.wait_for("emitted-after")
    for node in pair:
        assert node.alive and "Traceback" not in node.log(), node.log()[-3000:]
        assert f"(at 127.0.0.1:{sentinels.replica.port})" in node.log(), "connected to the promoted replica"
    assert (await s1.do("stats"))["healthy"] and (await t1.do("stats"))["healthy"]


def test_sentinel_urls_are_parsed() -> None:
    from sioserver.adapters._target import SentinelEndpoint, parse_target

    endpoint = parse_target("redis+sentinel://:secret@h1:26379,h2/svc/3", {})
    assert isinstance(endpoint, SentinelEndpoint)
    assert endpoint.sentinels == [("h1", 26379), ("h2", 26379)] and endpoint.service == "svc"
    assert endpoint.options["db"] == 3 and endpoint.options["password"] == "secret"
    with pytest.raises(ValueError, match="service name"):
        parse_target("redis+sentinel://h1:26379", {})
    sioserver.RedisAdapter("redis+sentinel://h1:26379/svc/0")  # no connection before the first namespace


async def test_the_node_registry_on_the_master_the_sentinels_name(sentinels: RedisSentinels) -> None:
    registry = registry_for(sioserver.RedisAdapter(sentinels.url))
    other = NodeRegistry(sentinels.url)
    assert registry is not None
    try:
        await registry.register("5e471e1a", "10.9.8.7:8000")
        assert await other.resolve("5e471e1a") == ("10.9.8.7", 8000)
    finally:
        await registry.close()
        await other.close()
