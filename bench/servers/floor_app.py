"""The floor of a Python Socket.IO server on this machine: the least a server can do per echo.

uvloop, one ``asyncio.Protocol`` per connection, httptools for HTTP/1.1 (keep-alive), the Engine.IO
endpoints answered directly: a polling handshake, parked GETs, POSTs whose ``42N["echo",ARGS]`` is
answered ``43N[ARGS]`` by slicing the string (no JSON), a WebSocket handshake and the same echo over
frames. No sessions beyond a dict, no heartbeat, no limits, no validation: what is left is the
parser, the syscalls and the event loop. Scenarios B and E are reported against it as well as
against Node: ``sioserver.run`` costs the floor plus its own Engine.IO/Socket.IO work.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import itertools
import struct

import httptools
import uvloop

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n\r\n"
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Length: 2\r\n\r\nok"
_SEQ = itertools.count()


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + struct.pack("!H", n) + payload
    return bytes((0x81, 127)) + struct.pack("!Q", n) + payload


def open_packet(sid: str, upgrades: str) -> bytes:
    return (b'0{"sid":"%s","upgrades":%s,"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
            % (sid.encode(), upgrades.encode()))


def answer(packet: bytes) -> bytes | None:
    """What the server sends for one client packet (None: nothing)."""
    if packet.startswith(b"42"):
        bracket = packet.index(b"[")
        ack = packet[2:bracket]
        if packet[bracket:].startswith(b'["echo",'):
            return b"43" + ack + b"[" + packet[bracket + 8:]
        if packet[bracket:] == b'["gc"]':
            gc.collect()
            return b"43" + ack + b"[]"
        return None
    if packet == b"40":
        return b'40{"sid":"floor"}'
    return None


class Session:
    __slots__ = ("parked", "queue")

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.parked: Conn | None = None


SESSIONS: dict[bytes, Session] = {}


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.key = b""
        self.ws = False
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.ws:
            self.buf += data
            self.frames()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.key = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"sec-websocket-key":
            self.key = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        assert transport is not None
        url = self.url
        sid_at = url.find(b"sid=")
        if b"transport=websocket" in url:
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
            transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + frame(open_packet("ws", "[]")))
            self.ws = True
            return
        if sid_at < 0:
            sid = str(next(_SEQ))
            SESSIONS[sid.encode()] = Session()
            body = open_packet(sid, '["websocket"]')
            transport.write(_TEXT % len(body) + body)
            return
        session = SESSIONS[url[sid_at + 4:].split(b"&", 1)[0]]
        if self.parser.get_method() == b"POST":
            for packet in b"".join(self.body).split(b"\x1e"):
                reply = answer(packet)
                if reply is not None:
                    session.queue.append(reply)
            transport.write(_OK)
            parked = session.parked
            if parked is not None and session.queue:
                session.parked = None
                parked.flush(session)
        elif session.queue:
            self.flush(session)
        else:
            session.parked = self

    def flush(self, session: Session) -> None:
        body = b"\x1e".join(session.queue)
        session.queue = []
        assert self.transport is not None
        self.transport.write(_TEXT % len(body) + body)

    # WebSocket frames (client frames are masked)
    def frames(self) -> None:
        buf = self.buf
        out: list[bytes] = []
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
            mask = buf[pos:pos + 4]
            masked = buf[pos + 4:pos + 4 + n]
            buf = buf[pos + 4 + n:]
            key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
            payload = (int.from_bytes(masked, "big") ^ key).to_bytes(n, "big")
            if opcode == 8:
                assert self.transport is not None
                self.transport.close()
                return
            reply = answer(payload)
            if reply is not None:
                out.append(frame(reply))
        self.buf = buf
        if out:
            assert self.transport is not None
            self.transport.write(b"".join(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", args.port, backlog=1024)
        print(f"floor server on {args.port}", flush=True)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
