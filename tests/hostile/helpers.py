"""Clients for the hostile suite: byte-level HTTP and WebSocket, Engine.IO polling, and the
well-behaved client that must still get through after every attack.

Everything here talks to a real socket; nothing reaches into the server except through its
``/_debug`` routes (see ``app.py``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
SEP = "\x1e"


# ----------------------------------------------------------------------------- raw HTTP


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)


class ConnectionClosed(Exception):
    """The server closed the TCP connection before a complete answer."""


async def read_http_response(reader: asyncio.StreamReader, timeout: float = 2.0, *, head_request: bool = False
                             ) -> HttpAnswer:
    """One HTTP/1.1 response (Content-Length or close-delimited; chunked is decoded; no body for
    ``head_request``, the answer to a HEAD request)."""
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed(f"closed after {len(exc.partial)} bytes: {exc.partial[:200]!r}") from None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if status == 101 or head_request:
            return HttpAnswer(status, headers, b"", time.monotonic() - start)
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        else:
            body = await reader.read()
    return HttpAnswer(status, headers, body, time.monotonic() - start)


async def open_tcp(port: int, rcvbuf: int | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if rcvbuf is None:
        return await asyncio.open_connection("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, limit=2**20)


async def raw_http(port: int, data: bytes, timeout: float = 2.0) -> HttpAnswer:
    """Send ``data`` as is on a fresh connection and read one response."""
    reader, writer = await open_tcp(port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_http_response(reader, timeout)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 2.0) -> bool:
    """True if the server closes (EOF or reset) within ``timeout``; what it still sends is skipped."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:  # before OSError: TimeoutError is one
        return False
    except (ConnectionError, OSError):
        return True


def request(method: str, target: str, port: int, headers: list[tuple[str, str]] | None = None,
            body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---------------------------------------------------------------------------- raw WebSocket


def ws_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True,
             length: int | None = None) -> bytes:
    """A client frame, valid or not: ``rsv`` is the three RSV bits (0-7), ``length`` overrides the
    declared payload length (for frames that lie about their size)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ stream).to_bytes(n, "big")


@dataclass
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        if self.opcode != OP_CLOSE:
            return None
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else 1005


class RawWS:
    """A WebSocket client written by hand: handshake, arbitrary frames out, frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handshake: HttpAnswer) -> None:
        self.reader = reader
        self.writer = writer
        self.handshake = handshake
        self.eio_sid = ""
        self.open: dict[str, Any] = {}

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    @classmethod
    async def connect(cls, port: int, query: str = "EIO=4&transport=websocket", *, rcvbuf: int | None = None,
                      extra_headers: list[tuple[str, str]] | None = None, read_open: bool = True,
                      path: str = "/socket.io/") -> RawWS:
        reader, writer = await open_tcp(port, rcvbuf)
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                   ("Sec-WebSocket-Version", "13"), *(extra_headers or [])]
        writer.write(request("GET", f"{path}?{query}", port, headers))
        answer = await read_http_response(reader)
        if answer.status != 101:
            writer.close()
            raise ConnectionError(f"handshake answered {answer.status}: {answer.body[:200]!r}")
        ws = cls(reader, writer, answer)
        if read_open:
            opening = await ws.recv_text()
            assert opening.startswith("0"), opening
            ws.open = json.loads(opening[1:])
            ws.eio_sid = ws.open["sid"]
        return ws

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send_text(self, text: str) -> None:
        self.writer.write(ws_frame(OP_TEXT, text.encode()))

    def send_binary(self, data: bytes) -> None:
        self.writer.write(ws_frame(OP_BINARY, data))

    async def recv_frame(self, timeout: float = 2.0) -> Frame:
        async with asyncio.timeout(timeout):
            try:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                if b1 & 0x80:
                    raise AssertionError("the server masked a frame")
                if b0 & 0x70:
                    raise AssertionError("the server set reserved bits without compression")
                payload = await self.reader.readexactly(n)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionClosed(f"EOF after {len(exc.partial)} bytes") from None
        return Frame(b0 & 0x0F, payload, bool(b0 & 0x80))

    async def recv_message(self, timeout: float = 2.0) -> str | bytes:
        """The next text or binary message; Engine.IO pings (``2``) are answered; a close frame raises."""
        while True:
            frame = await self.recv_frame(timeout)
            if frame.opcode == OP_TEXT:
                text = frame.payload.decode()
                if text == "2":
                    self.send_text("3")
                    continue
                return text
            if frame.opcode == OP_BINARY:
                return frame.payload
            if frame.opcode == OP_CLOSE:
                raise ConnectionClosed(f"close frame {frame.close_code}")

    async def recv_text(self, timeout: float = 2.0) -> str:
        message = await self.recv_message(timeout)
        assert isinstance(message, str), message
        return message

    async def expect_close(self, timeout: float = 2.0) -> int:
        """Read until the server's Close frame, echo it, and check the server then closes TCP.
        Returns the close code; Engine.IO text before it is skipped (``1`` close packets too)."""
        while True:
            try:
                frame = await self.recv_frame(timeout)
            except ConnectionClosed:
                return 1006
            if frame.opcode == OP_CLOSE:
                code = frame.close_code
                assert code is not None
                with _suppress():
                    self.writer.write(ws_frame(OP_CLOSE, frame.payload[:2]))
                assert await closed_by_server(self.reader, timeout), "no TCP close after the Close frame"
                self.writer.close()
                return code

    async def sio_connect(self, nsp: str = "/", auth: Any = None) -> str:
        prefix = "" if nsp == "/" else nsp + ","
        self.send_text("40" + prefix + ("" if auth is None else json.dumps(auth)))
        reply = await self.recv_text()
        head = "40" + prefix
        assert reply.startswith(head + "{"), reply
        return str(json.loads(reply[len(head):])["sid"])

    async def close(self) -> None:
        with _suppress():
            self.writer.write(ws_frame(OP_CLOSE, struct.pack("!H", 1000)))
            await self.writer.drain()
        self.writer.close()
        with _suppress():
            await self.writer.wait_closed()

    def abort(self) -> None:
        transport = self.writer.transport
        transport.abort()


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], (OSError, ConnectionError, RuntimeError))


# ------------------------------------------------------------------------------- polling


class Polling:
    """An Engine.IO long-polling session over aiohttp."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = session
        self.sid = ""
        self.open: dict[str, Any] = {}

    @classmethod
    async def connect(cls, port: int) -> Polling:
        session = aiohttp.ClientSession()
        self = cls(f"http://127.0.0.1:{port}/socket.io/", session)
        async with session.get(self.base, params={"EIO": "4", "transport": "polling"}) as resp:
            text = await resp.text()
            assert resp.status == 200, (resp.status, text)
        assert text.startswith("0"), text
        self.open = json.loads(text[1:])
        self.sid = self.open["sid"]
        return self

    def url(self, transport: str = "polling") -> str:
        return f"{self.base}?EIO=4&transport={transport}&sid={self.sid}"

    async def get(self, timeout: float = 2.0) -> tuple[int, str]:
        async with self.http.get(self.url(), timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return resp.status, await resp.text()

    async def post(self, body: str | bytes, timeout: float = 2.0) -> tuple[int, str]:
        data = body.encode() if isinstance(body, str) else body
        async with self.http.post(self.url(), data=data, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            return resp.status, await resp.text()

    async def packets(self, timeout: float = 2.0) -> list[str]:
        """One GET's packets (pings answered with a POSTed pong)."""
        status, body = await self.get(timeout)
        assert status == 200, (status, body)
        packets = body.split(SEP)
        if "2" in packets:
            await self.post("3")
        return [p for p in packets if p != "2"]

    async def sio_connect(self) -> str:
        assert (await self.post("40")) == (200, "ok")
        for _ in range(3):
            for packet in await self.packets():
                if packet.startswith("40{"):
                    return str(json.loads(packet[2:])["sid"])
        raise AssertionError("no CONNECT reply")

    async def reset_long_poll(self, settle: float) -> None:
        """A GET of this session on a raw connection, reset (RST) ``settle`` seconds after it is sent; the
        HTTP client is dropped too. Whether the GET was parked by then is not observed: either way the
        server must clean up."""
        port = int(urllib.parse.urlsplit(self.base).port or 80)
        _reader, writer = await open_tcp(port)
        writer.write(request("GET", self.url()[len(f"http://127.0.0.1:{port}"):], port))
        await writer.drain()
        await asyncio.sleep(settle)
        writer.transport.abort()
        await self.http.close()

    async def close(self) -> None:
        """Leave (a CLOSE packet, best effort) and drop the HTTP client."""
        try:
            async with self.http.post(self.url(), data=b"1", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            pass
        await self.http.close()


# ------------------------------------------------------------------------ the good client


@dataclass
class RoundTrip:
    connect: float
    ack: float
    transport: str
    extra: dict[str, Any] = field(default_factory=dict)


async def good_client(port: int, *, transport: str = "websocket", nsp: str = "/", timeout: float = 2.0) -> RoundTrip:
    """A well-behaved Socket.IO client: connect, emit ``echo`` with an ack, check the answer, leave.
    Everything within ``timeout`` seconds, or it fails."""
    token = base64.urlsafe_b64encode(os.urandom(9)).decode()
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        if transport == "websocket":
            ws = await RawWS.connect(port)
            try:
                await ws.sio_connect(nsp)
                connected = time.monotonic()
                prefix = "" if nsp == "/" else nsp + ","
                ws.send_text(f'42{prefix}7["echo",{{"token":"{token}"}},[1,2]]')
                answer = await ws.recv_text()
                assert answer == f'43{prefix}7[{{"token":"{token}"}},[1,2]]', answer
                done = time.monotonic()
            finally:
                await ws.close()
        else:
            poll = await Polling.connect(port)
            try:
                await poll.sio_connect()
                connected = time.monotonic()
                assert (await poll.post(f'427["echo","{token}"]')) == (200, "ok")
                packets: list[str] = []
                while not packets:
                    packets = await poll.packets()
                assert packets == [f'437["{token}"]'], packets
                done = time.monotonic()
                await poll.post("1")
            finally:
                await poll.close()
    return RoundTrip(connected - start, done - connected, transport)


def find(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None
