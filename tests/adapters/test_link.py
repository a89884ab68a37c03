"""Losing Redis: workers stay up, deliver locally, count and log what could not cross, reconnect with
backoff, resubscribe, and deliver again. Redis is killed (SIGKILL) and restarted in the middle of a
stream of broadcasts, frozen (SIGSTOP), and absent when the server starts."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import socketio  # type: ignore[import-untyped]

import sioserver
from sioserver.server.adapter import BroadcastOptions
from tests._support import serving
from tests._support.redis import RedisServer

from .conftest import Cluster, ClusterNode, Peers, settle

STREAM = 300
INTERVAL = 0.01


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer, cluster: Cluster) -> list[ClusterNode]:
    return cluster.start(("py", "A"), ("py", "B"), redis=redis_server.url, key="fault")


async def test_kill_and_restart_redis_mid_stream(pair: list[ClusterNode], peers: Peers, redis_server: RedisServer,
                                                 record_property: Any, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = pair
    a1, b1 = await asyncio.gather(peers.connect("a1", a), peers.connect("b1", b))
    await a1.do("broadcast", {"event": "warm-up"})
    await b1.wait_for("warm-up")

    assert await a1.do("stream", {"event": "tick", "count": STREAM, "interval": INTERVAL}) == "started"
    await asyncio.sleep(1.0)
    killed_at = time.monotonic()
    redis_server.kill()
    await asyncio.sleep(0.5)
    redis_server.start()
    restarted_at = time.monotonic()

    await a1.wait_for("stream-done", timeout=15)
    await b1.wait_for("stream-done", timeout=15)
    await settle()
    local = [args[0] for args in a1.got("tick")]
    remote = [args[0] for args in b1.got("tick")]
    assert local == list(range(STREAM)), "local clients get every message, Redis or not"
    assert len(remote) == len(set(remote)) and remote == sorted(remote), "no duplicates, no reordering"
    missing = sorted(set(range(STREAM)) - set(remote))
    gap = (missing[0], missing[-1]) if missing else None

    stats_a = await a1.do("stats")
    stats_b = await b1.do("stats")
    lost, short = stats_a.get("messages_lost", 0), stats_a.get("messages_short", 0)
    log_a = a.log()
    logged = sum(int(n) for n in re.findall(r"in total (\d+) message\(s\) not published", log_a))
    report = (f"redis killed {1.0:.1f}s into a stream of {STREAM} broadcasts (one every {INTERVAL * 1000:.0f} ms), "
              f"down {restarted_at - killed_at:.2f}s: {len(missing)} missed by the other node {gap}; "
              f"sender counted {lost} not published + {short} reaching fewer servers; logged {logged} not published")
    record_property("redis_fault", report)
    with capsys.disabled():
        print("\n" + report)

    assert missing, "Redis was down for 0.5 s during the stream: some messages must have missed B"
    assert lost > 0 and logged == lost, log_a[-3000:]
    # Every missed message is counted and logged by the sender, except what Redis had already queued to B's
    # socket when it was SIGKILLed: PUBLISH counted B as a receiver, so no sender can know (B logs the lost
    # connection instead). That is at most the one or two messages in flight at the kill instant.
    in_flight_at_kill = 2
    assert len(missing) <= lost + short + in_flight_at_kill, (
        f"every missed message is counted and logged by the sender\n{log_a}")
    assert "not published to Redis" in log_a and "publishing to" in log_a
    for node, log in ((a, log_a), (b, b.log())):
        assert node.alive
        assert "lost the subscriber connection" in log and "subscriber connected to" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
    assert stats_a["healthy"] and stats_b["healthy"]
    assert stats_a["reconnects"] >= 1 and stats_b["reconnects"] >= 1

    # both ways again, after the restart
    await b1.do("broadcast", {"event": "after-b"})
    await a1.wait_for("after-b")
    await a1.do("broadcast", {"event": "after-a"})
    await b1.wait_for("after-a")
    result = await a1.do("emit-ack", {"event": "survey", "timeout": 3})
    assert sorted(x["from"] for x in result["answers"]) == ["a1", "b1"] and result["elapsed"] < 1.5


async def test_frozen_redis_never_blocks(redis_binary: str, tmp_path: Path) -> None:
    """SIGSTOP: connections stay open but nothing answers. Emits return at once (local delivery), the
    PING health check replaces the subscriber, cluster calls answer locally; SIGCONT: healthy again."""
    redis = RedisServer(redis_binary, tmp_path)
    redis.start()
    factory = sioserver.RedisAdapter(redis.url, health_check_interval=0.4, command_timeout=0.5, connect_timeout=0.5,
                                     reconnect_max_delay=0.5, request_timeout=1)
    sio = sioserver.AsyncServer(adapter=factory)
    try:
        sio._cluster_namespace("/")
        assert await factory.wait_ready(5)
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            for i in range(20):
                await sio.emit("while-frozen", i)
            assert time.monotonic() - started < 0.1, "emitting never waits for Redis"
            deadline = time.monotonic() + 5
            while factory.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not factory.healthy, "the health check noticed"
            started = time.monotonic()
            assert await sio.fetch_sockets() == [] and await sio.server_count() == 1
            assert time.monotonic() - started < 2.0
            assert factory.stats["degraded"] >= 1
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert await factory.wait_ready(10), factory.stats
        await sio.emit("after")
        deadline = time.monotonic() + 3
        while factory.stats["published"] < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert factory.stats["messages_lost"] == 20 and factory.stats["published"] >= 1, factory.stats
    finally:
        await sio.shutdown()
        redis.stop()


async def test_starts_without_redis_and_joins_later(redis_binary: str, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """No Redis at start: the server serves its own clients, counts what it cannot publish, and joins
    the cluster when Redis appears (backoff with jitter, capped)."""
    redis = RedisServer(redis_binary, tmp_path)  # not started yet
    factory = sioserver.RedisAdapter(redis.url, reconnect_min_delay=0.05, reconnect_max_delay=0.3)
    sio = sioserver.AsyncServer(adapter=factory)
    server = await serving.attached(sio)
    client = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    client.on("news", lambda *args: got.append(args))
    try:
        await client.connect(server.url, transports=["websocket"], wait_timeout=5)
        await sio.emit("news", 1)
        assert await sio.all_rooms() == {client.get_sid("/")}
        opts = BroadcastOptions()
        assert len(await sio._namespaces["/"].adapter.fetch_sockets(opts)) == 1
        await asyncio.sleep(0.5)  # a few reconnect attempts
        assert not factory.healthy and got == [(1,)]
        assert factory.stats["messages_lost"] == 1 and factory.stats["degraded"] >= 1
        redis.start()
        assert await factory.wait_ready(5)
        await sio.emit("news", 2)
        await asyncio.sleep(0.3)
        assert got == [(1,), (2,)] and factory.stats["published"] == 1
        messages = [r.getMessage() for r in caplog.records if r.name == "sioserver.redis"]
        assert any("could not open the subscriber connection" in m for m in messages), messages
        assert any("subscriber connected to" in m and "again" in m for m in messages), messages
    finally:
        await client.disconnect()
        await sio.shutdown()
        await server.close()
        redis.stop()


async def test_resp_reader_parses_split_replies() -> None:
    """The subscriber's own RESP2 parser: replies split anywhere, several per chunk, every type."""
    from redis.exceptions import ResponseError

    from sioserver.adapters._link import RespReader

    big = bytes(range(256)) * 400
    wire = (b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
            b"*4\r\n$8\r\npmessage\r\n$3\r\np:*\r\n$3\r\np:1\r\n$" + str(len(big)).encode() + b"\r\n" + big + b"\r\n"
            b"+PONG\r\n-ERR unknown command\r\n$-1\r\n*-1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\na\r\nb\x00\r\n")
    expected = [[b"subscribe", b"ch", 1], [b"pmessage", b"p:*", b"p:1", big], b"PONG", "ERR unknown command",
                None, None, [b"pong", b""], [b"message", b"ch", b"a\r\nb\x00"]]
    for step in (1, 7, 4096, len(wire)):
        stream = asyncio.StreamReader()
        for i in range(0, len(wire), step):
            stream.feed_data(wire[i:i + step])
        stream.feed_eof()
        reader = RespReader(stream)
        got: list[object] = []
        while len(got) < len(expected):
            got += await reader.read()
        assert [str(g) if isinstance(g, ResponseError) else g for g in got] == expected, step
        with pytest.raises(ConnectionError):
            await reader.read()
