"""sioserver.Emitter: the wire of @socket.io/redis-emitter 5.x byte for byte, its errors, and delivery to a
sioserver's clients. (Delivery to Node servers, and the npm emitter to sioserver: test_redis_interop.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import socketio  # type: ignore[import-untyped]

import sioserver
from sioserver.adapters import MessageTooLargeError, RedisUnavailableError
from tests._support.ports import free_port
from tests._support.redis import RedisServer

from .conftest import Wire, settle

# Captured from @socket.io/redis-emitter 5.1.0 (see /work/shared/reference/redis-adapter-wire.txt, section 13).
REF_ROOM = "93a7656d697474657283a47479706502a46461746192ac66726f6d2d656d697474657201a36e7370a12f83a5726f6f6d7391a5726f6f6d31a5666c61677380a665786365707490"
REF_CUSTOM = "93a7656d697474657283a47479706502a46461746191b366726f6d2d656d69747465722d637573746f6da36e7370a72f637573746f6d83a5726f6f6d7390a5666c61677380a665786365707490"
REF_SSE = '{"uid":"emitter","type":6,"data":["ping-srv","from-emitter"]}'
REF_JOIN = '{"type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["room-e"]}'
REF_VOLATILE = "93a7656d697474657283a47479706502a46461746191a3766f6ca36e7370a12f83a5726f6f6d7390a5666c61677381a8766f6c6174696c65c3a665786365707490"


async def test_wire_is_byte_exact(redis_server: RedisServer, wire: Wire) -> None:
    async with sioserver.Emitter(redis_server.url) as emitter:
        assert emitter.namespace == "/"
        await emitter.to("room1").emit("from-emitter", 1)
        assert await wire.next("socket.io#") == ("socket.io#/#room1#", bytes.fromhex(REF_ROOM))
        await emitter.of("custom").emit("from-emitter-custom")
        assert await wire.next("socket.io#") == ("socket.io#/custom#", bytes.fromhex(REF_CUSTOM))
        await emitter.server_side_emit("ping-srv", "from-emitter")
        assert await wire.next("socket.io-request#") == ("socket.io-request#/#", REF_SSE.encode())
        await emitter.to("room1").sockets_join("room-e")
        assert await wire.next("socket.io-request#") == ("socket.io-request#/#", REF_JOIN.encode())
        await emitter.volatile.emit("vol")
        assert await wire.next("socket.io#") == ("socket.io#/#", bytes.fromhex(REF_VOLATILE))
        # operators are immutable: a prepared one can be reused
        room = emitter.to("a")
        both = room.to("b").except_("c").compress(False)
        await room.emit("x")
        assert (await wire.next("socket.io#"))[0] == "socket.io#/#a#"
        await both.emit("y")
        assert (await wire.next("socket.io#"))[0] == "socket.io#/#"


async def test_errors_are_clear(redis_server: RedisServer) -> None:
    async with sioserver.Emitter(redis_server.url, publish_max_bytes=100) as emitter:
        with pytest.raises(ValueError, match="reserved"):
            await emitter.emit("disconnect")
        with pytest.raises(MessageTooLargeError, match="publish_max_bytes=100"):
            await emitter.emit("big", "x" * 200)
    started = time.monotonic()
    async with sioserver.Emitter(f"redis://127.0.0.1:{free_port()}/0", timeout=2) as emitter:
        with pytest.raises(RedisUnavailableError, match="could not be published"):
            await emitter.emit("nowhere")
    assert time.monotonic() - started < 3


async def test_reaches_a_sioserver_client(redis_server: RedisServer, local_sio: Any) -> None:
    sio, _, url = await local_sio()
    received: list[Any] = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("*", lambda event, *args: received.append((event, args)))
    await client.connect(url, transports=["websocket"], wait_timeout=5)
    sid = client.get_sid("/")
    await sio.enter_room(sid, "room1")
    server_events: list[Any] = []
    sio.on_server_event("ping-srv", lambda *args: server_events.append(args))
    async with sioserver.Emitter(redis_server.url) as emitter:
        assert await emitter.to("room1").emit("hello", b"\x00\x01", {"k": [1]}) == 1
        await emitter.to("other-room").emit("not-for-me")
        await emitter.except_("room1").emit("excluded")
        await emitter.to(sid).emit("direct")
        await emitter.server_side_emit("ping-srv", 42)
        await emitter.to("room1").sockets_join("joined")
        deadline = time.monotonic() + 3
        while (len(received) < 2 or not server_events or "joined" not in sio.rooms(sid)) and \
                time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await settle()
        assert received == [("hello", (b"\x00\x01", {"k": [1]})), ("direct", ())]
        assert server_events == [(42,)]
        await emitter.to("joined").disconnect_sockets()
        deadline = time.monotonic() + 3
        while client.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not client.connected
