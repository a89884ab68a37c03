"""The nodes of a Redis-backed cluster (sioserver/integrations/nodes.py, sioserver/adapters/registry.py):
the registration in Redis and its refresh, forwarding over TCP between two servers, and what is never done:
connecting to a node Redis does not name, forwarding twice, crashing when Redis is away.

Each test serves real ``sioserver.AsyncServer`` objects with a ``RedisAdapter`` through
``sioserver.integrations.standalone.serve`` in the test's loop, against a redis-server of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from redis.asyncio import Redis

import sioserver
from sioserver.adapters.registry import NodeRegistry, RegistryUnavailableError
from sioserver.integrations.forward import HOP
from sioserver.integrations.nodes import ClusterNode
from tests._support.ports import free_port
from tests._support.redis import RedisServer
from tests._support.wait import wait_until
from tests.integrations.test_http1 import running

Q = "/socket.io/?EIO=4&transport=polling"


@asynccontextmanager
async def node(redis_url: str, **options: object) -> AsyncIterator[tuple[sioserver.AsyncServer, str]]:
    """A server on a free port, a node of the cluster on ``redis_url``: (sio, its URL)."""
    sio = sioserver.AsyncServer(adapter=sioserver.RedisAdapter(redis_url))
    async with running(sio, **options) as port:
        yield sio, f"http://127.0.0.1:{port}"


def node_of(sio: sioserver.AsyncServer) -> str:
    return str(sio.eio.sid_prefix).rstrip(".")


async def get(http: aiohttp.ClientSession, url: str, method: str = "GET", body: bytes = b"",
              headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with http.request(method, url, data=body, headers=headers) as response:
        return response.status, await response.text()


async def test_a_poll_sent_to_another_node_is_forwarded_there_over_tcp(redis_server: RedisServer) -> None:
    async with node(redis_server.url) as (a, url_a), node(redis_server.url) as (b, url_b), \
            aiohttp.ClientSession() as http:
        assert re.fullmatch(r"[0-9a-f]{8}", node_of(a)) and node_of(a) != node_of(b)
        status, text = await get(http, url_a + Q)
        sid = json.loads(text[1:])["sid"]
        assert status == 200 and sid.startswith(node_of(a) + ".")
        assert await get(http, f"{url_b}{Q}&sid={sid}", "POST", b"40") == (200, "ok")  # at b, for a's session
        status, text = await get(http, f"{url_b}{Q}&sid={sid}")
        assert status == 200 and text.startswith("40{")
        assert b.eio.stats["forwarded"] == 2 and a.eio.stats["forwarded"] == 0
        client = Redis.from_url(redis_server.url)
        try:
            where = await client.get(f"sioserver:node:{node_of(a)}")
            assert where == url_a.removeprefix("http://").encode()
            assert 0 < await client.pttl(f"sioserver:node:{node_of(a)}") <= 15000
        finally:
            await client.aclose()
    client = Redis.from_url(redis_server.url)  # a node stopping deletes its own key
    try:
        assert await client.get(f"sioserver:node:{node_of(a)}") is None
    finally:
        await client.aclose()


async def test_the_registration_is_refreshed_within_its_ttl_and_written_again_after_a_loss(
        redis_server: RedisServer) -> None:
    registry = NodeRegistry(redis_server.url, ttl=0.5, refresh=0.15)
    client = Redis.from_url(redis_server.url)
    key = "sioserver:node:0123abcd"
    try:
        await registry.register("0123abcd", "10.1.2.3:8000")
        assert await client.get(key) == b"10.1.2.3:8000"
        assert 0 < await client.pttl(key) <= 500
        await asyncio.sleep(1.2)  # more than twice the TTL: still there, so it was set again
        assert await client.get(key) == b"10.1.2.3:8000"
        assert registry.stats["registered"] >= 5
        await client.delete(key)  # as after a Redis restart without persistence
        await wait_until(lambda: client.exists(key), timeout=2, what="the key written again")
        other = NodeRegistry(redis_server.url)
        try:
            assert await other.resolve("0123abcd") == ("10.1.2.3", 8000)
        finally:
            await other.close()
        await registry.close()
        assert await client.get(key) is None
    finally:
        await registry.close()
        await client.aclose()


async def test_an_id_redis_does_not_name_is_never_connected_to(redis_server: RedisServer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    registry = NodeRegistry(redis_server.url)
    try:
        for crafted in ("127", "evil-host", "0123ABCD", "0123abcd0", "localhost:6379"):
            assert await registry.resolve(crafted) is None  # not an id a node makes: not even looked up
        assert registry.stats["refused_ids"] == 5 and registry.stats["lookups"] == 0
        assert await registry.resolve("0badf00d") is None  # the form of one, but not registered
        assert await registry.resolve("0badf00d") is None  # the miss is cached
        assert registry.stats["lookups"] == 1 and registry.stats["unknown"] == 1
    finally:
        await registry.close()
    async with node(redis_server.url) as (a, url_a), aiohttp.ClientSession() as http:
        for sid in ("0badf00d.abcdefgh", "127.0.0.1:22.x", "evil.com.x"):
            status, text = await get(http, f"{url_a}{Q}&sid={sid}")
            assert (status, json.loads(text)) == (400, {"code": 1, "message": "Session ID unknown"})
        assert a.eio.stats["forwarded"] == 0  # no connection was opened to anyone
        assert a.eio.stats["refused:unknown_sid"] == 3
    assert "node '0badf00d' is not registered in Redis" in caplog.text
    assert "sid '0badf00d.abcdefgh' belongs to node 0badf00d, which this node cannot reach" in caplog.text


async def test_a_stale_address_and_a_second_hop_are_refused_not_looped(redis_server: RedisServer) -> None:
    async with node(redis_server.url) as (a, url_a), node(redis_server.url) as (b, url_b), \
            aiohttp.ClientSession() as http:
        client = Redis.from_url(redis_server.url)
        try:  # a gone node's entry naming the address a serves now
            await client.set("sioserver:node:0ddba11a", url_a.removeprefix("http://"), px=5000)
        finally:
            await client.aclose()
        status, _ = await get(http, f"{url_a}{Q}&sid=0ddba11a.abcdefgh")
        assert status == 400 and a.eio.stats["forwarded"] == 0
        status, text = await get(http, url_b + Q)
        sid = json.loads(text[1:])["sid"]
        status, _ = await get(http, f"{url_a}{Q}&sid={sid}", headers={HOP: "1"})  # forwarded once already
        assert status == 400 and a.eio.stats["forwarded"] == 0
        assert (await get(http, f"{url_a}{Q}&sid={sid}", "POST", b"40"))[0] == 200  # without it: forwarded
        assert a.eio.stats["forwarded"] == 1 and b.eio.stats["forwarded"] == 0


async def test_redis_away_is_the_400_and_a_log_line_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    async with node(nowhere) as (a, url_a), aiohttp.ClientSession() as http:
        assert re.fullmatch(r"[0-9a-f]{8}", node_of(a))  # a node all the same: its sids name it
        status, text = await get(http, f"{url_a}{Q}&sid=0badf00d.abcdefgh")
        assert (status, json.loads(text)) == (400, {"code": 1, "message": "Session ID unknown"})
        status, text = await get(http, url_a + Q)  # and it goes on serving
        assert status == 200 and json.loads(text[1:])["sid"].startswith(node_of(a) + ".")
    assert re.search(r"cannot forward sid '0badf00d\.abcdefgh' to node 0badf00d: Redis did not say where", caplog.text)
    assert "belongs to node 0badf00d, which this node cannot reach" in caplog.text
    assert re.search(rf"node {node_of(a)}: cannot register its address 127\.0\.0\.1:\d+ in Redis", caplog.text)
    registry = NodeRegistry(nowhere, timeout=0.3)
    try:
        with pytest.raises(RegistryUnavailableError):
            await registry.resolve("0badf00d")
        assert registry.stats["lookup_errors"] == 1
    finally:
        await registry.close()


def test_the_advertised_address_wins_over_the_bound_one() -> None:
    class Engine:
        sid_prefix = ""
        forward = None
        stats: dict[str, int] = {}

    async def check() -> None:
        registry = NodeRegistry("redis://127.0.0.1:1/0", timeout=0.2)
        for advertise, bound, door in [("10.0.0.7:9000", ("0.0.0.0", 8000), ("10.0.0.7", 9000)),
                                       ("10.0.0.7", ("127.0.0.1", 8000), ("10.0.0.7", 8000)),
                                       ("[fd00::1]:81", ("::", 8000), ("fd00::1", 81)),
                                       (None, ("127.0.0.1", 8000), ("127.0.0.1", 8000))]:
            cluster = ClusterNode(Engine(), registry, "0123abcd", advertise=advertise)
            assert cluster.prepare(bound[0]) == []
            await cluster.start([bound])
            assert cluster.door == door, advertise
        await registry.close()

    asyncio.run(check())


async def test_concurrent_lookups_of_one_id_are_one_get(redis_server: RedisServer) -> None:
    registry = NodeRegistry(redis_server.url)
    owner = NodeRegistry(redis_server.url)
    try:
        await owner.register("feedf00d", "10.1.1.1:80")
        answers = await asyncio.gather(*(registry.resolve("feedf00d") for _ in range(50)))
        assert answers == [("10.1.1.1", 80)] * 50 and registry.stats["lookups"] == 1
        waiting = [asyncio.ensure_future(registry.resolve("0badf00d")) for _ in range(3)]
        await asyncio.sleep(0)
        waiting[0].cancel()  # one request gone: the others still get the answer
        assert await asyncio.gather(*waiting[1:]) == [None, None] and registry.stats["lookups"] == 2
    finally:
        await registry.close()
        await owner.close()
