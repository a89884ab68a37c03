"""sioserver.engine.session: the outbox, the backlog bounds, the heartbeat and the upgrade, against real
sockets (hand-written WebSocket clients that stop reading, and long-polling over HTTP)."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

import sioserver.engineio
from sioserver.engine.heartbeat import HeartbeatWheel
from sioserver.engine.session import DisconnectReason, Session
from sioserver.engine.transport import SharedPacket
from tests.hostile.helpers import RawWS

from .conftest import EchoFactory, closed_without_status, own_websocket_only

PATH = "/engine.io/"
WS_QUERY = "EIO=4&transport=websocket"
HIGH = 64 * 1024  # WebSocketConfig.write_buffer_high


async def stalled_client(eio: sioserver.engineio.AsyncServer, port: int) -> tuple[RawWS, Session]:
    """A WebSocket client that has stopped reading, with small kernel buffers on both sides so that the
    server's own buffering shows at once."""
    ws = await RawWS.connect(port, WS_QUERY, rcvbuf=4096, path=PATH)
    ws.writer.transport.pause_reading()
    session = eio.sessions[ws.eio_sid]
    transport = getattr(session.ws, "_transport", None)  # sioserver's own connection (an ASGI server's is hidden)
    if transport is not None:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return ws, session


async def read_messages(ws: RawWS, count: int) -> list[str | bytes]:
    ws.writer.transport.resume_reading()
    return [await ws.recv_message(timeout=5) for _ in range(count)]


def payload(i: int, size: int = 1000) -> str:
    return f"{i:06d}".ljust(size, "x")


def disconnects(eio: sioserver.engineio.AsyncServer) -> dict[str, str]:
    return {e[1]: e[2] for e in eio.events if e[0] == "disconnect"}  # type: ignore[attr-defined]


class TestOutbox:
    async def test_a_stalled_client_owes_references_and_gets_everything_in_order(
        self, echo_server: EchoFactory
    ) -> None:
        eio, client = await echo_server()
        stalled = [await stalled_client(eio, client.port) for _ in range(3)]
        packets = [SharedPacket(payload(i)) for i in range(3000)]
        for packet in packets:
            for _, session in stalled:
                assert session.send_shared((packet,))
        backlogs = eio.session_context.backlogs
        for _, session in stalled:
            assert session.ws is not None
            # the transport was fed only up to its high-water mark; the rest waits in the outbox
            assert session.ws.buffered_amount <= HIGH + 1100
            assert session.owed > 1_000_000
        outboxes = [list(session._outbox or ()) for _, session in stalled]
        # the same objects, not copies: every outbox ends with the same last packets
        assert outboxes[0][-1] is outboxes[1][-1] is outboxes[2][-1] is packets[-1]
        assert backlogs.total == sum(session._owed for _, session in stalled)
        assert backlogs.backlogged == {session for _, session in stalled}
        for ws, _ in stalled:
            received = await read_messages(ws, len(packets))
            assert received == ["4" + p.data for p in packets]  # type: ignore[operator]
        for _, session in stalled:
            assert session.outbox_empty
            assert session.owed == 0
        assert backlogs.total == 0
        assert not backlogs.backlogged

    async def test_own_messages_queue_behind_shared_ones(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        ws, session = await stalled_client(eio, client.port)
        for i in range(2000):
            session.send_shared((SharedPacket(payload(i)),))
        assert not session.outbox_empty
        assert session.send("own") and session.send(b"\x01\x02")
        received = await read_messages(ws, 2002)
        assert received[-2:] == ["4own", b"\x01\x02"]
        assert received[:3] == ["4" + payload(0), "4" + payload(1), "4" + payload(2)]

    async def test_volatile_is_dropped_while_a_backlog_waits(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        _, session = await stalled_client(eio, client.port)
        while session.outbox_empty:
            session.send_shared((SharedPacket(payload(0)),))
        assert not session.send_shared((SharedPacket("v"),), volatile=True)
        assert eio.stats["volatile_dropped"] == 1


class TestBounds:
    async def test_over_max_buffered_bytes_the_client_is_disconnected(
        self, echo_server: EchoFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        eio, client = await echo_server(max_buffered_bytes=256 * 1024)
        ws, session = await stalled_client(eio, client.port)
        sent = 0
        while session.send(payload(sent)):
            sent += 1
        assert session.closed
        assert disconnects(eio)[session.sid] == "slow consumer"
        assert eio.stats["slow_consumers"] == 1
        assert "max_buffered_bytes=262144" in caplog.text
        assert eio.session_context.backlogs.total == 0
        # what was already on its way reaches the client, then the close
        ws.writer.transport.resume_reading()
        # a Close frame without a status, as the reference
        assert await ws.expect_close(timeout=5) == closed_without_status(client)

    async def test_the_bound_across_sessions_takes_the_largest_backlog_first(
        self, echo_server: EchoFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        limit = 512 * 1024
        eio, client = await echo_server(max_buffered_bytes_total=limit)
        own_websocket_only(client)
        stalled = [await stalled_client(eio, client.port) for _ in range(3)]  # the clients stay referenced
        (_, big), (_, small1), (_, small2) = stalled
        good = await RawWS.connect(client.port, WS_QUERY, path=PATH)
        good_session = eio.sessions[good.eio_sid]
        for i in range(300):
            big.send(payload(i))
        assert big.owed > 250_000
        received: list[str | bytes] = []
        reader = asyncio.ensure_future(_read_into(good, received, 200))
        with caplog.at_level(logging.WARNING, "sioserver.engine"):
            for i in range(200):
                shared = (SharedPacket(payload(i)),)
                for session in (big, small1, small2, good_session):
                    session.send_shared(shared)
                await asyncio.sleep(0)  # a server yields between broadcasts: the good client reads
        await reader
        assert disconnects(eio) == {big.sid: "slow consumer"}
        assert not small1.closed and not small2.closed and not good_session.closed
        assert received == ["4" + payload(i) for i in range(200)]
        assert eio.stats["backlog_bound_reached"] == 1
        assert "max_buffered_bytes_total=524288" in caplog.text
        assert eio.session_context.backlogs.total <= limit

    async def test_drop_policy_lets_go_of_the_backlog_and_delivers_after_catching_up(
        self, echo_server: EchoFactory
    ) -> None:
        eio, client = await echo_server(max_buffered_bytes_total=256 * 1024, slow_consumer_policy="drop")
        ws, session = await stalled_client(eio, client.port)
        sent = 0
        while eio.stats["dropped_slow_consumer"] == 0:
            session.send(payload(sent))
            sent += 1
        assert not session.closed
        assert session.outbox_empty  # what it owed was let go
        assert not session.send(payload(0))  # and what comes next is dropped until it has caught up
        ws.writer.transport.resume_reading()
        sent_after = False
        while True:  # it reads what the transport still held; the server learns that it drained
            message = await ws.recv_message(timeout=5)
            if message == "4after":
                break
            if not sent_after and not session._dropping:
                sent_after = session.send("after")
        assert not session.closed


async def _read_into(ws: RawWS, into: list[str | bytes], count: int) -> None:
    while len(into) < count:
        into.append(await ws.recv_message(timeout=5))


class TestPollingOutbox:
    async def test_polling_uses_the_same_outbox_and_accounting(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        sid = (await resp.text())[1:].split('"sid":"')[1].split('"')[0]
        session = eio.sessions[sid]
        shared = SharedPacket("shared")
        session.send_shared((shared,))
        session.send(b"\x00\xff")
        assert session.owed == len("shared") + 1 + 2
        assert eio.session_context.backlogs.total == session.owed
        body = await (await client.get(PATH, params={"EIO": "4", "transport": "polling", "sid": sid})).text()
        assert body == "4shared\x1ebAP8="
        assert session.owed == 0
        assert eio.session_context.backlogs.total == 0

    async def test_polling_backlog_is_bounded_per_client(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server(max_buffered_bytes=10_000)
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        sid = (await resp.text())[1:].split('"sid":"')[1].split('"')[0]
        session = eio.sessions[sid]
        sent = 0
        while session.send(payload(sent)):
            sent += 1
        assert sent == 9
        assert disconnects(eio)[sid] == "slow consumer"


class TestReceiver:
    async def test_messages_reach_the_receiver_and_the_close_once(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        got: list[Any] = []

        class Receiver:
            def on_message(self, data: str | bytes) -> None:
                got.append(data)

            def on_close(self, reason: DisconnectReason) -> None:
                got.append(reason)

        ws = await RawWS.connect(client.port, WS_QUERY, path=PATH)
        session = eio.sessions[ws.eio_sid]
        session.receiver = Receiver()
        ws.send_text("4hello")
        ws.send_binary(b"\x01")
        ws.send_text("x")  # not a packet: the session ends
        assert await ws.expect_close() == closed_without_status(client)
        assert got == ["hello", b"\x01", DisconnectReason.PARSE_ERROR]
        assert session.closed


class TestUpgrade:
    async def test_what_is_sent_during_the_upgrade_follows_on_the_websocket(self, echo_server: EchoFactory) -> None:
        eio, client = await echo_server()
        resp = await client.get(PATH, params={"EIO": "4", "transport": "polling"})
        sid = (await resp.text())[1:].split('"sid":"')[1].split('"')[0]
        probe = await RawWS.connect(client.port, f"{WS_QUERY}&sid={sid}", path=PATH, read_open=False)
        probe.send_text("2probe")
        assert await probe.recv_text() == "3probe"
        session = eio.sessions[sid]
        assert session.upgrading
        assert session.send("held")
        q = {"EIO": "4", "transport": "polling", "sid": sid}
        assert await (await client.get(PATH, params=q)).text() == "6"  # the client pauses polling
        probe.send_text("5")
        assert await probe.recv_text() == "4held"
        assert session.transport == "websocket"
        assert session.ws is not None and session.ws._handler is session  # type: ignore[attr-defined]
        probe.send_text("4echo")
        assert await probe.recv_text() == "4echo"


class _Item:
    __slots__ = ("_beat", "due")

    def __init__(self) -> None:
        self._beat: Any = None
        self.due = asyncio.get_running_loop().create_future()

    def heartbeat_due(self) -> None:
        self.due.set_result(asyncio.get_running_loop().time())


class TestHeartbeatWheel:
    async def test_never_early_at_most_one_tick_late_and_rescheduling_replaces(self) -> None:
        wheel = HeartbeatWheel(resolution=0.02)
        loop = asyncio.get_running_loop()
        items = [_Item() for _ in range(3)]
        start = loop.time()
        wheel.schedule(items[0], 0.05)
        wheel.schedule(items[1], 0.01)
        wheel.schedule(items[2], 0.03)
        wheel.schedule(items[1], 0.08)  # replaces its first deadline
        fired = [await asyncio.wait_for(item.due, 1) - start for item in items]
        for fired_at, delay in zip(fired, (0.05, 0.08, 0.03), strict=True):
            assert fired_at >= delay - 0.0011
        assert fired[2] < fired[0] < fired[1]
        assert len(wheel) == 0

    async def test_cancel(self) -> None:
        wheel = HeartbeatWheel(resolution=0.01)
        item, other = _Item(), _Item()
        wheel.schedule(item, 0.02)
        wheel.schedule(other, 0.04)
        wheel.cancel(item)
        await asyncio.wait_for(other.due, 1)
        assert not item.due.done()


class TestLeanSessions:
    async def test_the_framework_request_is_there_for_the_connect_handler_only(self) -> None:
        """environ["aiohttp.request"] (python-socketio has it too) is there in the connect handler; once it
        has run, an idle connection does not keep aiohttp's request and everything it holds."""
        from aiohttp import web
        from aiohttp.test_utils import TestClient, TestServer

        import sioserver

        sio = sioserver.AsyncServer()
        seen: list[bool] = []

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            seen.append(isinstance(environ.get("aiohttp.request"), web.BaseRequest))

        app = web.Application()
        sio.attach(app)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        try:
            ws = await RawWS.connect(client.port, "EIO=4&transport=websocket")
            session = sio.eio.sessions[ws.eio_sid]
            assert "aiohttp.request" in session.environ  # until a namespace's connect handler has run
            await ws.sio_connect()
            assert seen == [True]
            assert "aiohttp.request" not in session.environ
            assert "HTTP_HOST" in session.environ
            await ws.close()
        finally:
            await client.close()
