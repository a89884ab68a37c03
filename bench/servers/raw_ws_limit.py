"""The physical limit of a broadcast on this machine: a tiny asyncio (uvloop) server that writes the
same pre-framed bytes to every WebSocket.

It speaks just enough Engine.IO/Socket.IO for the load generator (OPEN, ``40`` -> ``40{sid}``, acked
``gc``). A ``42["bcast",...]`` message is framed once and written, unchanged, to every connection:
no JSON, no packet objects, no per-recipient Python beyond ``transport.write``. Scenario C is reported
as a fraction of what this server reaches.

``--batch``: the broadcasts completed by one read are framed and joined once, and that one buffer is
written to every connection (one write per connection per read instead of one per frame): the limit
for a server that coalesces the writes of a burst.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import struct

import uvloop

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OPEN = b'0{"sid":"raw","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
_CONNECTED = b'40{"sid":"raw"}'


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + struct.pack("!H", n) + payload
    return bytes((0x80 | opcode, 127)) + struct.pack("!Q", n) + payload


class Conn(asyncio.Protocol):
    peers: set[Conn] = set()
    batch = False

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        Conn.peers.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
            key = next(
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n" + frame(_OPEN)
            )
            self.upgraded = True
            Conn.peers.add(self)
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        bcasts: list[bytes] = []
        while len(buf) >= 6:
            opcode = buf[0] & 0x0F
            n = buf[1] & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 8:
                    break
                (n,) = struct.unpack_from("!H", buf, 2)
                pos = 4
            elif n == 127:
                if len(buf) < 14:
                    break
                (n,) = struct.unpack_from("!Q", buf, 2)
                pos = 10
            if len(buf) < pos + 4 + n:
                break
            mask = buf[pos : pos + 4]
            masked = buf[pos + 4 : pos + 4 + n]
            buf = buf[pos + 4 + n :]
            key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
            payload = (int.from_bytes(masked, "big") ^ key).to_bytes(n, "big")
            if Conn.batch and payload.startswith(b'42["bcast"'):
                bcasts.append(frame(payload))
            else:
                self._message(opcode, payload)
        self.buf = buf
        if bcasts:
            shared = b"".join(bcasts)  # framed and joined once, the same bytes to everyone
            for peer in tuple(Conn.peers):
                peer.transport.write(shared)  # type: ignore[union-attr]

    def _message(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if opcode == 8:
            transport.close()
        elif payload == b"40":
            transport.write(frame(_CONNECTED))
        elif payload.startswith(b'42["bcast"'):
            shared = frame(payload)  # framed once, the same bytes to everyone
            for peer in tuple(Conn.peers):
                peer.transport.write(shared)  # type: ignore[union-attr]
        elif payload.startswith(b"42") and payload.endswith(b'["gc"]'):
            gc.collect()
            transport.write(frame(b"43" + payload[2:-6] + b"[]"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--batch", action="store_true", help="one write per connection per read")
    args = parser.parse_args()
    Conn.batch = args.batch

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", args.port, backlog=1024)
        print(f"raw websocket limit server on {args.port}", flush=True)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
