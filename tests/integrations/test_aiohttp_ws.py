"""sioserver.integrations.aiohttp_ws: the handshake and the takeover of aiohttp's transport.

These tests pin what the takeover relies on in aiohttp's ``web_protocol.py`` (see the module
docstring of aiohttp_ws); they fail if a future aiohttp changes it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from sioserver.engine.websocket import WebSocketConfig, WebSocketConnection
from sioserver.exceptions import HandshakeError
from sioserver.integrations.aiohttp_ws import upgrade_websocket
from sioserver.proto.websocket import Close, Connection, DeflateParams, accept_key
from tests._support.wspeer import WSPeer


class Echo:
    def __init__(self) -> None:
        self.conns: list[WebSocketConnection] = []
        self.closes: list[tuple[int, str]] = []
        self.protocols: list[Any] = []  # aiohttp's RequestHandler of each upgraded request

    def on_ws_message(self, conn: WebSocketConnection, data: str | bytes) -> None:
        conn.send(data)

    def on_ws_close(self, conn: WebSocketConnection, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def on_ws_drain(self, conn: WebSocketConnection) -> None:
        pass


class Server:
    def __init__(self, runner: web.AppRunner, port: int, echo: Echo) -> None:
        self.runner, self.port, self.echo = runner, port, echo

    @property
    def aiohttp_connections(self) -> list[Any]:
        assert self.runner.server is not None
        return self.runner.server.connections


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    runners: list[web.AppRunner] = []

    async def start(config: WebSocketConfig | None = None, delay: float = 0.0, **runner_kwargs: Any) -> Server:
        echo = Echo()
        cfg = config or WebSocketConfig(close_timeout=0.5)

        async def handle(request: web.Request) -> web.StreamResponse:
            if delay:
                await asyncio.sleep(delay)  # let aiohttp buffer what follows the request
            try:
                conn, response = upgrade_websocket(request, echo, cfg, [("X-Extra", "1")])
            except HandshakeError as exc:
                return web.Response(status=exc.status, text=exc.reason, headers=exc.headers)
            echo.conns.append(conn)
            echo.protocols.append(request.protocol)
            return response

        async def close_all(app: web.Application) -> None:
            for conn in echo.conns:
                conn.close(1001)

        app = web.Application()
        app.router.add_get("/ws", handle)
        app.on_shutdown.append(close_all)
        runner = web.AppRunner(app, **runner_kwargs)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return Server(runner, port, echo)

    yield start
    for runner in runners:
        await runner.cleanup()


def upgrade_request(key: str, extra: str = "") -> bytes:
    return (
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def connect(server: Server, behind: bytes = b"", extra: str = "", deflate: bool = False) -> WSPeer:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(upgrade_request(key, extra) + behind)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head
    assert f"Sec-WebSocket-Accept: {accept_key(key)}\r\n".encode() in head
    return WSPeer(reader, writer, head=head, deflate=DeflateParams() if deflate else None)


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


class TestTakeover:
    async def test_echo_after_the_aiohttp_handler_returned(self, start_server: ServerFactory) -> None:
        server = await start_server()
        client = await connect(server)
        assert b"X-Extra: 1\r\n" in client.head
        assert b"Sec-WebSocket-Extensions" not in client.head  # compression is off by default
        await asyncio.sleep(0.05)  # RequestHandler.start() has finished by now
        for message in ("one", b"two", "three" * 10000):
            client.send(
                client.core.send_text(message) if isinstance(message, str) else client.core.send_binary(message)
            )
            assert await client.recv() == message

    async def test_aiohttp_forgets_the_connection(self, start_server: ServerFactory) -> None:
        server = await start_server()
        client = await connect(server)
        await eventually(lambda: not server.aiohttp_connections)
        (protocol,) = server.echo.protocols
        assert protocol.transport is None
        assert protocol._keepalive_handle is None
        assert protocol._task_handler is None or protocol._task_handler.done()
        client.send(client.core.send_text("still here"))
        assert await client.recv() == "still here"

    async def test_survives_aiohttp_keepalive_timeout(self, start_server: ServerFactory) -> None:
        server = await start_server(keepalive_timeout=0.1)
        client = await connect(server)
        client.send(client.core.send_text("early"))
        assert await client.recv() == "early"
        await asyncio.sleep(0.4)  # several keep-alive periods
        client.send(client.core.send_text("late"))
        assert await client.recv() == "late"

    async def test_handler_cancellation_does_not_cancel_the_upgrade(self, start_server: ServerFactory) -> None:
        server = await start_server(handler_cancellation=True)
        client = await connect(server)
        await asyncio.sleep(0.05)
        client.send(client.core.send_text("x"))
        assert await client.recv() == "x"

    async def test_bytes_right_behind_the_request(self, start_server: ServerFactory) -> None:
        server = await start_server()
        core = Connection(client=True)
        client = await connect(server, behind=core.send_text("first") + core.send_binary(b"second"))
        assert await client.recv() == "first"
        assert await client.recv() == b"second"

    async def test_many_bytes_behind_the_request_while_aiohttp_paused_reading(
        self, start_server: ServerFactory
    ) -> None:
        # more than aiohttp's read_bufsize (64 KiB) arrives before the handler runs: aiohttp buffers
        # it in _message_tail and pauses reading; we take it over and resume
        server = await start_server(delay=0.2, config=WebSocketConfig(max_message_size=1 << 21))
        core = Connection(client=True)
        messages = [os.urandom(100_000) for _ in range(5)]
        client = await connect(server, behind=b"".join(core.send_binary(m) for m in messages))
        for message in messages:
            assert await client.recv() == message

    async def test_runner_cleanup_completes(self, start_server: ServerFactory) -> None:
        server = await start_server()
        client = await connect(server)
        client.send(client.core.send_text("x"))
        assert await client.recv() == "x"
        started = time.monotonic()
        await asyncio.wait_for(server.runner.cleanup(), 5)
        assert time.monotonic() - started < 2
        # aiohttp no longer owns the connection: the app's on_shutdown closed it
        assert await client.recv() == Close(1001, "")
        client.send(client.core.close_reply())
        await eventually(lambda: server.echo.closes == [(1001, "")])

    async def test_closing_handshake(self, start_server: ServerFactory) -> None:
        server = await start_server()
        client = await connect(server)
        client.send(client.core.send_close(1000, "done"))
        assert await client.recv() == Close(1000, "")
        assert await client.reader.read() == b""  # the server closes the TCP connection
        assert server.echo.closes == [(1000, "done")]


class TestNegotiation:
    async def test_compression(self, start_server: ServerFactory) -> None:
        server = await start_server(config=WebSocketConfig(compression=True, compression_threshold=10))
        client = await connect(server, extra="Sec-WebSocket-Extensions: permessage-deflate\r\n", deflate=True)
        assert b"Sec-WebSocket-Extensions: permessage-deflate\r\n" in client.head
        assert server.echo.conns[0].compressing
        text = "squeeze " * 500
        client.send(client.core.send_text(text))
        assert await client.recv() == text

    async def test_compression_not_offered(self, start_server: ServerFactory) -> None:
        server = await start_server(config=WebSocketConfig(compression=True))
        client = await connect(server)
        assert b"Sec-WebSocket-Extensions" not in client.head
        assert not server.echo.conns[0].compressing

    @pytest.mark.parametrize(
        ("request_", "status"),
        [
            (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
                426,
            ),
            (
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nhi",
                400,
            ),
        ],
    )
    async def test_bad_handshakes_are_refused(self, start_server: ServerFactory, request_: bytes, status: int) -> None:
        server = await start_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(f"HTTP/1.1 {status} ".encode())
        if status == 426:
            assert b"Sec-WebSocket-Version: 13\r\n" in head
        writer.close()
        assert server.echo.conns == []
