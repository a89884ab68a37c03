"""``emit(..., compress=False)`` (Node's ``socket.compress(false)``): with permessage-deflate negotiated, the
message goes out uncompressed (RSV1 clear), where a message of the same size is compressed by default.
Read on the wire: a client written here sends the upgrade and reads the raw frame headers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver


class RawWS:
    """An upgrade with permessage-deflate offered, then frames as (rsv1, opcode, payload)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawWS:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"permessage-deflate" in head.lower(), head
        return cls(reader, writer)

    async def frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 5)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        return bool(b0 & 0x40), b0 & 0x0F, await self.reader.readexactly(length)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        self.writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[sioserver.AsyncServer, int]]:
    sio = sioserver.AsyncServer(compression=True, compression_threshold=64)
    app = web.Application()
    sio.attach(app)
    server = TestServer(app)
    await server.start_server()
    assert server.port is not None
    yield sio, server.port
    await server.close()


async def test_compress_false_sends_the_message_uncompressed(served: tuple[sioserver.AsyncServer, int]) -> None:
    sio, port = served
    ws = await RawWS.open(port)
    try:
        await ws.frame()  # the opening packet (compressed: it is over the threshold)
        ws.send_text("40")
        rsv1, _, connected = await ws.frame()
        assert not rsv1  # under the threshold
        sid = json.loads(connected[2:])["sid"]
        big = "x" * 5000
        frames: list[Any] = []
        for compress in (True, False, True):
            await sio.emit("big", big, to=sid, compress=compress)
            frames.append(await ws.frame())
        await sio.to(sid).compress(False).emit("big", big)  # the operator's flag, as Node's
        frames.append(await ws.frame())
        assert [rsv1 for rsv1, _, _ in frames] == [True, False, True, False]
        assert frames[1][2] == frames[3][2] == ('42["big","' + big + '"]').encode()
        assert len(frames[0][2]) < 200  # compressed
    finally:
        ws.close()
