"""Reconnection (server processes killed and restarted on the same port), the emit-while-disconnected
policy, and heartbeat timeouts."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sioclient
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests._support.ports import free_port
from tests.clients import sio_app
from tests.clients.conftest import ProcessFactory
from tests.clients.helpers import Recorder

DELAY, DELAY_MAX = 0.2, 0.8


def recording_backoff(client: sioclient.AsyncClient) -> list[tuple[int, float, float]]:
    """(attempt, wait drawn, monotonic time drawn) for every reconnection wait."""
    draws: list[tuple[int, float, float]] = []
    duration = client.backoff.duration

    def record(attempt: int) -> float:
        wait = duration(attempt)
        draws.append((attempt, wait, time.monotonic()))
        return wait

    client.backoff.duration = record  # type: ignore[method-assign]
    return draws


@pytest.mark.parametrize("kind", ["sioserver", "node"])
async def test_server_restarted_on_the_same_port(server_process: ProcessFactory, kind: str) -> None:
    proc = server_process(kind)
    client = sioclient.AsyncClient(reconnection_delay=DELAY, reconnection_delay_max=DELAY_MAX)
    draws = recording_backoff(client)
    rec = Recorder(client)
    auth_calls = 0

    def auth() -> dict[str, Any]:
        nonlocal auth_calls
        auth_calls += 1
        return {"token": f"n{auth_calls}"}

    await client.connect(proc.url, auth=auth)
    try:
        await rec.next("connect")
        first_sid = client.sid
        assert await client.call("auth") == {"token": "n1"}

        await asyncio.to_thread(proc.kill, signal.SIGKILL)
        reason = (await rec.next("disconnect"))[0]
        assert reason in ("transport close", "transport error")
        # while it is down: emits are buffered (and a call waits), in order
        await client.emit("echo", "buffered-1")
        pending = asyncio.ensure_future(client.call("echo", "buffered-2", timeout=15))
        await asyncio.sleep(1.0)  # a few attempts fail: connection refused
        failed_attempts = len(draws)
        ready = await asyncio.to_thread(proc.start)  # same port
        await rec.next("connect", timeout=DELAY_MAX + 5)
        back = time.monotonic() - ready

        assert client.connected and client.sid != first_sid
        # every wait inside its backoff interval, and the client back within one maximum wait plus a handshake
        for attempt, wait, _ in draws:
            low, high = client.backoff.bounds(attempt)
            assert low <= wait <= high <= DELAY_MAX
        assert [a for a, _, _ in draws] == list(range(len(draws)))
        assert failed_attempts >= 2
        assert back <= DELAY_MAX + 1.0, f"reconnected {back:.2f} s after the server was ready"
        # auth was evaluated again for the new CONNECT; buffered packets went out first, in order
        assert auth_calls == 2  # once per CONNECT: the first session and the new one
        assert await client.call("auth") == {"token": f"n{auth_calls}"}
        assert await rec.next("echo") == ["buffered-1"]
        assert await rec.next("echo") == ["buffered-2"]
        assert await asyncio.wait_for(pending, 5) == "buffered-2"
        assert await client.call("echo", "flowing") == "flowing"
        print(
            f"\n[{kind}] back {back:.3f} s after the restarted server was ready (bound {DELAY_MAX + 1.0:.1f} s); "
            f"waits {[round(w, 3) for _, w, _ in draws]}"
        )
    finally:
        await client.disconnect()


async def test_emit_policy_while_reconnecting() -> None:
    app, _ = sio_app.make_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    client = sioclient.AsyncClient(reconnection_delay=30, reconnection_delay_max=30, max_buffered_emits=3)
    rec = Recorder(client)
    with pytest.raises(sioclient.NotConnectedError):
        await client.emit("echo", "before connect")
    await client.connect(url, transports=["websocket"])
    try:
        hanging = asyncio.ensure_future(client.call("hang", timeout=20))
        await asyncio.sleep(0.1)
        await server.close()
        assert (await rec.next("disconnect"))[0] == "transport close"
        # an ack that was due can never come: the call fails at once
        with pytest.raises(sioclient.DisconnectedError):
            await asyncio.wait_for(hanging, 2)
        # reconnecting (next attempt in 15-30 s): buffered, up to max_buffered_emits
        await client.emit("echo", "e1")
        buffered_call = asyncio.ensure_future(client.call("echo", "c1", timeout=20))
        await asyncio.sleep(0)
        with pytest.raises(sioclient.AckTimeoutError):  # the timeout covers time in the buffer...
            await client.call("echo", "timed out", timeout=0.1)
        await client.emit("echo", "e2")  # ...and a timed-out call leaves it: 3 buffered now
        with pytest.raises(sioclient.EmitBufferFullError):
            await client.emit("echo", "one too many")
        with pytest.raises(ValueError):
            await client.emit("connect")  # reserved names are refused whatever the state
        await client.disconnect()
        with pytest.raises(sioclient.DisconnectedError):
            await asyncio.wait_for(buffered_call, 2)
        with pytest.raises(sioclient.NotConnectedError):
            await client.emit("echo", "after disconnect")
        await asyncio.wait_for(client.wait(), 1)
    finally:
        await client.disconnect()
        await server.close()


async def test_reconnection_attempts_exhausted() -> None:
    app, _ = sio_app.make_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = sioclient.AsyncClient(
        reconnection_delay=0.05, reconnection_delay_max=0.1, reconnection_attempts=3, randomization_factor=0
    )
    rec = Recorder(client)
    await client.connect(f"http://127.0.0.1:{server.port}", transports=["polling"])
    await server.close()
    await asyncio.wait_for(client.wait(), 5)
    assert rec.count("connect_error") == 3  # one per failed attempt
    assert not client.connected
    with pytest.raises(sioclient.NotConnectedError):
        await client.emit("echo")


class SilentEngine:
    """An Engine.IO server over WebSocket that accepts the Socket.IO CONNECT and then sends pings only
    if told to (``ping_every``); it records what the client sends."""

    def __init__(self, ping_interval_ms: int, ping_timeout_ms: int, ping_every: float | None) -> None:
        self.open = {
            "sid": "s1",
            "upgrades": [],
            "pingInterval": ping_interval_ms,
            "pingTimeout": ping_timeout_ms,
            "maxPayload": 1000000,
        }
        self.ping_every = ping_every
        self.received: list[str] = []
        self._pong = asyncio.Event()

    async def pongs(self, count: int, timeout: float) -> None:
        """Returns once the client has answered ``count`` pings in all."""
        async with asyncio.timeout(timeout):
            while self.received.count("3") < count:
                self._pong.clear()
                await self._pong.wait()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("0" + json.dumps(self.open))

        async def pinger() -> None:
            while self.ping_every is not None:
                await asyncio.sleep(self.ping_every)
                await ws.send_str("2")

        task = asyncio.ensure_future(pinger())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                self.received.append(msg.data)
                if msg.data == "3":
                    self._pong.set()
                if msg.data == "40":
                    await ws.send_str('40{"sid":"n1"}')
        finally:
            task.cancel()
        return ws


@pytest.fixture
async def silent_engine() -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def start(**kwargs: Any) -> tuple[str, SilentEngine]:
        engine = SilentEngine(**kwargs)
        app = web.Application()
        app.router.add_get("/socket.io/", engine.handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}", engine

    yield start
    for server in servers:
        await server.close()


async def test_dead_server_detected_at_ping_interval_plus_timeout(silent_engine: Callable[..., Any]) -> None:
    url, _ = await silent_engine(ping_interval_ms=200, ping_timeout_ms=150, ping_every=None)
    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client)
    await client.connect(url, transports=["websocket"])
    start = time.monotonic()
    assert await rec.next("disconnect", timeout=3) == ["ping timeout"]
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed <= 0.35 + 0.25, elapsed  # interval + timeout after the handshake
    print(f"\nping timeout detected {elapsed:.3f} s after connect (pingInterval + pingTimeout = 0.350 s)")
    await client.disconnect()


async def test_pings_answered_keep_the_session(silent_engine: Callable[..., Any]) -> None:
    url, engine = await silent_engine(ping_interval_ms=100, ping_timeout_ms=100, ping_every=0.1)
    client = sioclient.AsyncClient(reconnection=False)
    rec = Recorder(client)
    await client.connect(url, transports=["websocket"])
    await engine.pongs(7, timeout=5)  # a ping every 0.1 s: 0.7 s, more than three times interval + timeout
    assert client.connected and rec.count("disconnect") == 0
    await client.disconnect()


async def test_connect_retry_waits_for_the_server() -> None:
    port = free_port()
    app, _ = sio_app.make_app()
    server = TestServer(app, host="127.0.0.1", port=port)
    client = sioclient.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.2)
    rec = Recorder(client)
    connecting = asyncio.ensure_future(
        client.connect(f"http://127.0.0.1:{port}", retry=True, transports=["websocket"])
    )
    try:
        assert (await rec.next("connect_error"))[0]["message"]  # a retry found no server
        assert not connecting.done() and not client.connected
        await server.start_server()
        await asyncio.wait_for(connecting, 5)
        assert client.connected
        assert await client.call("echo", "late") == "late"
    finally:
        connecting.cancel()
        await client.disconnect()
        await server.close()
