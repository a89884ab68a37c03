"""Losing Redis in one process: emits never wait, cluster calls answer locally, what waits in the queue is
bounded by age and counted when dropped, and a server started without Redis joins when it appears.
The faults under two processes that broadcast to each other are tests/adapters/test_faults.py."""

from __future__ import annotations

import asyncio
import os
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
from tests._support.wait import wait_until


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
            await sio.emit("in-flight", 0)
            await asyncio.sleep(0.05)  # written to the frozen Redis: its fate is unknown until it answers
            for i in range(19):
                await sio.emit("while-frozen", i)
            assert time.monotonic() - started < 0.2, "emitting never waits for Redis"
            deadline = time.monotonic() + 5
            while factory.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not factory.healthy, "the health check noticed"
            started = time.monotonic()
            assert await sio.fetch_sockets() == [] and await sio.server_count() == 1
            assert time.monotonic() - started < 2.0
            assert factory.stats["degraded"] >= 1
            await wait_until(lambda: factory.stats["messages_uncertain"] == 1, timeout=5,
                             what=lambda: f"the batch in flight counted as uncertain: {factory.stats}")
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert await factory.wait_ready(10), factory.stats
        await sio.emit("after")
        await wait_until(lambda: factory.stats["published"] >= 20, timeout=5,
                         what=lambda: f"the backlog kept through the timeout and flushed: {factory.stats}")
        assert factory.stats["messages_lost"] == 0 and factory.stats["messages_uncertain"] == 1, factory.stats
    finally:
        await sio.shutdown()
        redis.stop()


async def test_the_queue_is_bounded_by_age(redis_binary: str, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Redis away longer than max_queue_age: what waited longer is dropped, counted and logged."""
    redis = RedisServer(redis_binary, tmp_path)
    redis.start()
    factory = sioserver.RedisAdapter(redis.url, max_queue_age=0.3)
    sio = sioserver.AsyncServer(adapter=factory)
    try:
        sio._cluster_namespace("/")
        assert await factory.wait_ready(5)
        redis.kill()
        await wait_until(lambda: not factory.healthy, timeout=5, what="the adapter noticed")
        for i in range(5):
            await sio.emit("news", i)
        await wait_until(lambda: factory.stats["messages_lost"] == 5, timeout=5,
                         what=lambda: f"the 5 messages dropped once 0.3 s old: {factory.stats}")
        redis.start()
        assert await factory.wait_ready(5)
        await sio.emit("news", 5)
        await wait_until(lambda: factory.stats["published"] == 1, timeout=5, what=lambda: f"{factory.stats}")
        assert factory.stats["messages_lost"] == 5
        messages = [r.getMessage() for r in caplog.records if r.name == "sioserver.redis"]
        assert any("waited more than max_queue_age=0.3s" in m for m in messages), messages
        assert any("in total 5 message(s) not published" in m for m in messages), messages
    finally:
        await sio.shutdown()
        redis.stop()


async def test_starts_without_redis_and_joins_later(redis_binary: str, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """No Redis at start: the server serves its own clients, queues what it publishes (for up to
    max_queue_age), and joins the cluster when Redis appears."""
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
        assert factory.stats["degraded"] >= 1 and factory.stats["messages_lost"] == 0, factory.stats
        redis.start()
        assert await factory.wait_ready(5)
        await sio.emit("news", 2)
        await wait_until(lambda: factory.stats["published"] == 2, timeout=5,
                         what=lambda: f"the one queued while Redis was away, then the new one: {factory.stats}")
        assert got == [(1,), (2,)] and factory.stats["messages_lost"] == 0
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


def test_retry_delays() -> None:
    """A dropped connection is reopened at once; then the delays double from the first to the last."""
    from sioserver.adapters._resp import retry_delay

    assert [retry_delay(n, (0.05, 0.2)) for n in range(1, 7)] == [0.0, 0.05, 0.1, 0.2, 0.2, 0.2]
    assert [retry_delay(n, (0.1, 5.0)) for n in range(1, 5)] == [0.0, 0.1, 0.2, 0.4]


async def test_a_broadcast_nobody_heard_is_published_again(local_sio: Any, redis_server: RedisServer) -> None:
    """Redis drops every subscriber just before a server publishes: the broadcast reaches no one
    (PUBLISH answers 0), so it is published once more, after the gate, and the other server gets it once."""
    from tests._support.redis import command

    sio_a, factory_a, _ = await local_sio()
    _, _, url_b = await local_sio()
    client = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    client.on("news", lambda *args: got.append(args))
    await client.connect(url_b, transports=["websocket"], wait_timeout=5)
    try:
        await sio_a.emit("news", 0)  # B is seen: the other servers' count is known
        await wait_until(lambda: got == [(0,)], timeout=5, what=lambda: f"the first broadcast: {got}")
        assert command(redis_server.port, "CLIENT", "KILL", "TYPE", "pubsub").startswith(b":")  # blocking
        await sio_a.emit("news", 1)  # queued before this loop has seen its subscriber go
        await wait_until(lambda: len(got) == 2, timeout=5, what=lambda: f"the broadcast after the drop: {got}")
        await sio_a.emit("news", 2)
        await wait_until(lambda: len(got) == 3, timeout=5, what=lambda: f"the next one: {got}")
        assert got == [(0,), (1,), (2,)], got
        assert not factory_a.stats["messages_short"] and not factory_a.stats["messages_lost"], factory_a.stats
        # the kill is a blocking call: this loop sends the PUBLISH before it reads its subscriber's EOF
        assert factory_a.stats["republished"] == 1, factory_a.stats
    finally:
        await client.disconnect()
