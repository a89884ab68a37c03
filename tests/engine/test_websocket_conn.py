"""sioserver.engine.websocket over real loopback sockets, with a client built on the same sans-I/O core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sioserver.engine.websocket import WebSocketConfig, WebSocketConnection
from sioserver.exceptions import ConfigurationError
from sioserver.proto.websocket import (
    OP_TEXT,
    Close,
    Connection,
    DeflateParams,
    Pong,
    encode_frame,
    encode_message,
)
from tests._support.wspeer import WSPeer as Client

FAST = WebSocketConfig(close_timeout=0.3)


class Recorder:
    """A WebSocketHandler that records everything and echoes unless told otherwise."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.messages: list[str | bytes] = []
        self.closes: list[tuple[int, str]] = []
        self.closed = asyncio.Event()
        self.on_message: Callable[[WebSocketConnection, str | bytes], None] | None = None

    def on_ws_message(self, conn: WebSocketConnection, data: str | bytes) -> None:
        self.messages.append(data)
        if self.on_message is not None:
            self.on_message(conn, data)
        elif self.echo:
            conn.send(data)

    def on_ws_close(self, conn: WebSocketConnection, code: int, reason: str) -> None:
        assert conn.closed
        self.closes.append((code, reason))
        self.closed.set()

    def on_ws_drain(self, conn: WebSocketConnection) -> None:
        pass


class Harness:
    def __init__(self) -> None:
        self.conns: list[WebSocketConnection] = []
        self.clients: list[Client] = []
        self.servers: list[asyncio.Server] = []

    async def connect(
        self,
        handler: Recorder,
        config: WebSocketConfig = FAST,
        deflate: DeflateParams | None = None,
        factory: Callable[[], asyncio.Protocol] | None = None,
    ) -> tuple[WebSocketConnection | None, Client]:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[None] = loop.create_future()

        def make() -> asyncio.Protocol:
            if factory is not None:
                protocol = factory()
            else:
                protocol = WebSocketConnection(handler, config, deflate)
                self.conns.append(protocol)
            loop.call_soon(lambda: made.done() or made.set_result(None))
            return protocol

        server = await loop.create_server(make, "127.0.0.1", 0)
        self.servers.append(server)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = Client(reader, writer, deflate=deflate)
        self.clients.append(client)
        await made
        return (self.conns[-1] if factory is None else None), client


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    yield h
    for client in h.clients:
        client.writer.close()
    for conn in h.conns:
        conn.abort()
    for server in h.servers:
        server.close()
        await server.wait_closed()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


class TestMessages:
    async def test_echo(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec)
        assert conn is not None and conn.remote_address[0] == "127.0.0.1"
        client.send(client.core.send_text("héllo") + client.core.send_binary(b"\x00\xff"))
        assert await client.recv() == "héllo"
        assert await client.recv() == b"\x00\xff"
        big = "x" * 300_000
        client.send(client.core.send_text(big))
        assert await client.recv() == big
        assert rec.messages == ["héllo", b"\x00\xff", big]

    async def test_ping_is_answered_in_order(self, harness: Harness) -> None:
        rec = Recorder()
        _, client = await harness.connect(rec)
        core = client.core
        client.send(core.send_text("a") + core.send_ping(b"p") + core.send_text("b"))
        assert [await client.recv() for _ in range(3)] == ["a", Pong(b"p"), "b"]

    async def test_send_frame_encoded_once(self, harness: Harness) -> None:
        rec = Recorder(echo=False)
        conn1, client1 = await harness.connect(rec)
        conn2, client2 = await harness.connect(rec)
        assert conn1 is not None and conn2 is not None
        frame = encode_message("to everyone")
        conn1.send_frame(frame)
        conn2.send_frame(frame)
        assert await client1.recv() == "to everyone"
        assert await client2.recv() == "to everyone"

    async def test_compression(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec, deflate=DeflateParams())
        assert conn is not None and conn.compressing
        text = "compress me " * 1000
        client.send(client.core.send_text(text))
        assert await client.recv() == text
        # a frame encoded once, uncompressed, is still valid on this connection
        conn.send_frame(encode_message("plain"))
        assert await client.recv() == "plain"
        assert not Connection(deflate=None).compressing

    async def test_nothing_is_delivered_after_an_abort_in_a_callback(self, harness: Harness) -> None:
        rec = Recorder()
        rec.on_message = lambda conn, data: conn.abort()
        _, client = await harness.connect(rec)
        client.send(client.core.send_text("1") + client.core.send_pong(b"") + client.core.send_text("2"))
        await asyncio.wait_for(rec.closed.wait(), 2)
        await settle()
        assert rec.messages == ["1"]
        assert rec.closes == [(1006, "aborted")]

    async def test_unsolicited_pong_is_ignored(self, harness: Harness) -> None:
        rec = Recorder()
        _, client = await harness.connect(rec)
        client.send(client.core.send_pong(b"x") + client.core.send_text("after"))
        assert await client.recv() == "after"

    async def test_handler_error_closes_with_1011(self, harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
        rec = Recorder()

        def boom(conn: WebSocketConnection, data: str | bytes) -> None:
            raise RuntimeError("bug")

        rec.on_message = boom
        _, client = await harness.connect(rec)
        client.send(client.core.send_text("x"))
        event = await client.recv()
        assert isinstance(event, Close) and event.code == 1011
        assert "on_ws_message failed" in caplog.text


class TestClosing:
    async def test_client_initiated(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec)
        assert conn is not None
        client.send(client.core.send_text("last") + client.core.send_close(1000, "bye"))
        assert await client.recv() == "last"  # the echo goes out before the close reply
        assert await client.recv() == Close(1000, "")
        assert await client.eof()  # the server closes the TCP connection first
        await settle()
        assert rec.closes == [(1000, "bye")]
        assert conn.closed
        conn.send("ignored")
        conn.close()
        conn.abort()
        await settle()
        assert rec.closes == [(1000, "bye")]

    async def test_server_initiated(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec)
        assert conn is not None
        conn.close(1001, "going away")
        conn.close(1000)  # once is enough
        conn.send("not after close")
        conn.send_frame(encode_message("nor this"))
        assert await client.recv() == Close(1001, "going away")
        assert not rec.closes  # waiting for the client's answer
        client.send(client.core.close_reply())
        await asyncio.wait_for(rec.closed.wait(), 2)
        assert rec.closes == [(1001, "")]
        assert await client.eof()

    async def test_lingering_close_reads_until_the_peer_closes(self, harness: Harness) -> None:
        """After the closing handshake the server half-closes and keeps reading. Closing a socket with
        unread input would make the kernel send RST and drop what the client has not received yet:
        here megabytes of messages and the Close frame."""
        rec = Recorder(echo=False)
        conn, client = await harness.connect(rec, WebSocketConfig(close_timeout=10))
        assert conn is not None
        chunk = b"m" * (1 << 20)
        sent = await fill(conn, chunk)
        client.send(client.core.send_close(1000))
        await asyncio.sleep(0.05)  # the server answers; its reply waits behind the messages
        assert rec.closes == [(1000, "")]
        client.send(b"late input" * 1000)  # arrives while the server still flushes
        await asyncio.sleep(0.05)
        for _ in range(sent):
            assert await client.recv() == chunk
        assert await client.recv() == Close(1000, "")
        assert await client.reader.read() == b""  # a FIN, not a RST

    async def test_transport_without_half_close(self) -> None:
        class NoHalfClose(asyncio.Transport):
            closed = False

            def can_write_eof(self) -> bool:
                return False

            def is_closing(self) -> bool:
                return self.closed

            def close(self) -> None:
                self.closed = True

            def write(self, data: Any) -> None:
                pass

            def get_extra_info(self, name: str, default: Any = None) -> Any:
                return default

            def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
                pass

        rec = Recorder()
        conn = WebSocketConnection(rec, FAST)
        transport = NoHalfClose()
        conn.connection_made(transport)
        conn.data_received(Connection(client=True).send_close(1000))
        assert transport.closed
        assert rec.closes == [(1000, "")]
        conn.connection_lost(None)

    async def test_close_timeout_aborts(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec)
        assert conn is not None
        conn.close()
        assert await client.recv() == Close(1000, "")
        # the client never answers
        await asyncio.wait_for(rec.closed.wait(), 2)
        assert rec.closes == [(1006, "close timeout")]
        assert await client.eof()
        await settle()
        assert rec.closes == [(1006, "close timeout")]

    async def test_abort(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec)
        assert conn is not None
        conn.abort()
        assert rec.closes == [(1006, "aborted")]
        assert await client.eof()
        await settle()
        assert rec.closes == [(1006, "aborted")]
        assert conn.buffered_amount == 0

    async def test_client_disappears(self, harness: Harness) -> None:
        rec = Recorder()
        _, client = await harness.connect(rec)
        client.writer.close()
        await asyncio.wait_for(rec.closed.wait(), 2)
        await settle()
        assert rec.closes == [(1006, "connection lost")]

    async def test_protocol_violation(self, harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, "sioserver.websocket")
        rec = Recorder()
        _, client = await harness.connect(rec)
        client.send(client.core.send_text("fine") + encode_frame(OP_TEXT, b"unmasked"))
        assert await client.recv() == "fine"
        event = await client.recv()
        assert isinstance(event, Close) and event.code == 1002
        assert await client.eof()
        assert rec.closes == [(1002, "unmasked frame")]
        (record,) = [r for r in caplog.records if r.name == "sioserver.websocket"]
        assert "unmasked frame" in record.getMessage() and "1002" in record.getMessage()

    async def test_close_after_peer_stops_reading_is_bounded(self, harness: Harness) -> None:
        """A closing connection whose write buffer never drains is aborted after close_timeout."""
        rec = Recorder(echo=False)
        conn, client = await harness.connect(rec)
        assert conn is not None
        await fill(conn, b"x" * (1 << 20))
        client.send(client.core.send_close())
        await asyncio.wait_for(rec.closed.wait(), 2)
        assert rec.closes == [(1000, "")]
        await asyncio.sleep(FAST.close_timeout + 0.2)
        assert conn.buffered_amount == 0  # aborted, not stuck


async def fill(conn: WebSocketConnection, chunk: bytes) -> int:
    """Send ``chunk`` until the kernel's buffers (megabytes on loopback) and the peer's reader are full
    and the transport buffers the rest; return how many were sent."""
    sent = 0
    while True:
        while conn.writable:
            conn.send(chunk)
            sent += 1
        assert conn.buffered_amount > 0
        await asyncio.sleep(0.05)
        if not conn.writable:
            return sent
        assert sent < 64


class TestFlowControl:
    async def test_buffered_amount_writable_drain(self, harness: Harness) -> None:
        rec = Recorder(echo=False)
        config = WebSocketConfig(write_buffer_high=100_000, write_buffer_low=1000, close_timeout=0.3)
        conn, client = await harness.connect(rec, config)
        assert conn is not None
        assert conn.writable and conn.buffered_amount == 0
        await conn.drain()  # returns at once
        chunk = b"y" * (1 << 20)
        sent = await fill(conn, chunk)
        drained = asyncio.ensure_future(conn.drain())
        other = asyncio.ensure_future(conn.drain())
        await asyncio.sleep(0.01)
        assert not drained.done()
        for _ in range(sent):
            assert await client.recv() == chunk
        await asyncio.wait_for(asyncio.gather(drained, other), 2)
        assert conn.writable
        assert conn.buffered_amount < 1000

    async def test_drain_returns_when_the_connection_is_lost(self, harness: Harness) -> None:
        rec = Recorder(echo=False)
        conn, _ = await harness.connect(rec)
        assert conn is not None
        await fill(conn, b"z" * (1 << 20))
        drained = asyncio.ensure_future(conn.drain())
        await asyncio.sleep(0.01)
        conn.abort()
        await asyncio.wait_for(drained, 2)
        await conn.drain()


class TestAttach:
    async def test_initial_data_waits_for_the_next_loop_turn(self, harness: Harness) -> None:
        rec = Recorder()
        first = Connection(client=True).send_text("behind the handshake")
        attached: list[WebSocketConnection] = []

        class Bootstrap(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                conn = WebSocketConnection(rec, FAST)
                transport.set_protocol(conn)
                transport.pause_reading()
                conn.attach(transport, first, writable=True)
                assert transport.is_reading()
                assert rec.messages == []  # nothing before the caller has the connection
                attached.append(conn)

        _, client = await harness.connect(rec, factory=Bootstrap)
        harness.conns += attached
        client.send(client.core.send_text("next"))
        assert await client.recv() == "behind the handshake"
        assert await client.recv() == "next"

    async def test_held_data_is_delivered_before_connection_lost(self, harness: Harness) -> None:
        rec = Recorder(echo=False)
        conn = WebSocketConnection(rec, FAST)

        class Bootstrap(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                transport.set_protocol(conn)
                conn.attach(transport, Connection(client=True).send_text("early"))
                conn.data_received(Connection(client=True).send_text("later"))
                conn.connection_lost(None)
                conn.abort()  # harmless once lost

        await harness.connect(rec, factory=Bootstrap)
        await settle()
        assert rec.messages == ["early", "later"]
        assert rec.closes == [(1006, "connection lost")]

    async def test_eof_from_peer(self, harness: Harness) -> None:
        rec = Recorder()
        _, client = await harness.connect(rec)
        client.writer.write_eof()
        await asyncio.wait_for(rec.closed.wait(), 2)
        assert rec.closes == [(1006, "connection lost")]


class TestConfig:
    def test_defaults(self) -> None:
        config = WebSocketConfig()
        assert config.max_message_size == 1_000_000
        assert config.compression is False
        assert config.compression_threshold == 1024
        assert config.close_timeout == 5.0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_message_size": 0},
            {"max_fragments": 0},
            {"compression_threshold": -1},
            {"close_timeout": 0},
            {"write_buffer_high": 10, "write_buffer_low": 20},
        ],
    )
    def test_invalid(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ConfigurationError):
            WebSocketConfig(**kwargs)


async def test_on_ws_close_error_is_logged(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()

    def broken(conn: WebSocketConnection, code: int, reason: str) -> None:
        raise RuntimeError("bug")

    rec.on_ws_close = broken  # type: ignore[method-assign]
    conn, _ = await harness.connect(rec)
    assert conn is not None
    conn.abort()
    assert "on_ws_close failed" in caplog.text


async def test_ping_event_type(harness: Harness) -> None:
    """The server answers pings itself; the handler only sees messages."""
    rec = Recorder(echo=False)
    _, client = await harness.connect(rec)
    client.send(client.core.send_ping(b"1") + client.core.send_ping(b"2"))
    assert [await client.recv(), await client.recv()] == [Pong(b"1"), Pong(b"2")]
    assert rec.messages == []


class TestWriteCoalescing:
    """A burst read in one go is answered with one write per connection, in order, within the loop turn."""

    async def test_a_burst_is_written_once_and_in_order(self, harness: Harness) -> None:
        rec = Recorder()
        conn, client = await harness.connect(rec)
        assert conn is not None
        writes: list[int] = []
        transport = conn._transport
        assert transport is not None
        real_write = transport.write

        def counting_write(data: bytes | bytearray | memoryview) -> None:
            writes.append(len(data))
            real_write(data)

        transport.write = counting_write  # type: ignore[method-assign]
        burst = b"".join(client.core.send_text(f"m{i}") for i in range(50))
        client.send(burst)  # one TCP write: the server reads the 50 messages together
        echoed = [await client.recv() for _ in range(50)]
        assert echoed == [f"m{i}" for i in range(50)]
        assert 1 <= len(writes) < 10  # coalesced, not one send() per message
        # a lone message afterwards is written straight through
        writes.clear()
        client.send(client.core.send_text("alone"))
        assert await client.recv() == "alone"
        assert len(writes) == 1
