"""One Engine.IO session: its transport, its outgoing buffer, its heartbeat and its upgrade.

Theory of operation
-------------------
A session starts on long-polling or directly on WebSocket. Outgoing packets go straight to the
WebSocket when there is one; on polling they wait in ``queue`` until a GET takes them all. A GET that
finds the queue empty parks on ``poll_waiter``; anything that must answer it (a packet, the close,
the upgrade's noop) wakes it.

Upgrade (polling -> WebSocket): a WebSocket with this sid is the *probe*. ``2probe`` on it is answered
``3probe`` and the session enters ``upgrading``: a parked or new GET is answered ``6`` (noop) at once so
the client can pause polling, and outgoing packets are held. ``5`` on the probe makes it the transport
and flushes what was held. A probe that does not finish within ``upgrade_timeout`` is closed and
polling goes on.

Heartbeat: the server sends ``2`` ``ping_interval`` after the handshake and after every pong; no ``3``
within ``ping_timeout`` of a ping closes the session (so a silent client is closed at exactly
interval + timeout). Timers are loop timer handles, not tasks.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..exceptions import EngineIOProtocolError
from ..proto.engineio import Packet, PacketType, decode_packet, encode_packet
from .websocket import WebSocketConnection

if TYPE_CHECKING:
    from .server import EngineServer

__all__ = ["DisconnectReason", "Session"]

log = logging.getLogger("sioserver.engine")

_PING = "2"
_NOOP_PACKET = Packet(PacketType.NOOP, "")
_CLOSE_PACKET = Packet(PacketType.CLOSE, "")


class DisconnectReason(StrEnum):
    """Why a session ended (the ``reason`` given to disconnect handlers)."""

    CLIENT_DISCONNECT = "client disconnect"
    SERVER_DISCONNECT = "server disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    SLOW_CONSUMER = "slow consumer"
    SERVER_SHUTDOWN = "server shutting down"
    PARSE_ERROR = "parse error"


_SERVER_SIDE = frozenset(
    {DisconnectReason.SERVER_DISCONNECT, DisconnectReason.SERVER_SHUTDOWN, DisconnectReason.SLOW_CONSUMER}
)


class Session:
    """An Engine.IO session. The upper layer keeps its own state in ``data``."""

    __slots__ = (
        "_dropping",
        "_ping_handle",
        "_probe",
        "_probe_handle",
        "_timeout_handle",
        "data",
        "environ",
        "poll_request",
        "poll_waiter",
        "posting",
        "queue",
        "queued_bytes",
        "server",
        "sid",
        "state",
        "transport",
        "upgrading",
        "ws",
    )

    OPEN = 1
    CLOSED = 2

    def __init__(self, server: EngineServer, sid: str, transport: str, environ: dict[str, Any]) -> None:
        self.server = server
        self.sid = sid
        self.transport = transport
        self.environ = environ
        self.state = Session.OPEN
        self.queue: list[Packet] = []
        self.queued_bytes = 0
        self.poll_waiter: asyncio.Future[None] | None = None
        self.poll_request: Any = None
        self.posting = False
        self.ws: WebSocketConnection | None = None
        self.upgrading = False
        self.data: Any = None
        self._probe: WebSocketConnection | None = None
        self._dropping = False
        self._probe_handle: asyncio.TimerHandle | None = None
        self._ping_handle: asyncio.TimerHandle | None = None
        self._timeout_handle: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.transport}{' closed' if self.closed else ''}>"

    @property
    def closed(self) -> bool:
        return self.state == Session.CLOSED

    @property
    def writable(self) -> bool:
        """Whether a packet sent now goes out at once (volatile packets are dropped otherwise)."""
        ws = self.ws
        if ws is not None and not self.upgrading:
            return ws.writable and ws.buffered_amount == 0
        return self.poll_waiter is not None and not self.queue

    @property
    def can_take_frames(self) -> bool:
        """Whether :meth:`send_frame` may write shared, pre-encoded frame bytes."""
        ws = self.ws
        return ws is not None and not self.upgrading and self.state == Session.OPEN and not ws.compressing

    @property
    def takes_uncompressed_frames(self) -> bool:
        """Whether :meth:`send_frame` may write a shared frame that must not be compressed (valid on a
        connection that negotiated permessage-deflate too, RFC 7692 section 6)."""
        return self.ws is not None and not self.upgrading and self.state == Session.OPEN

    # ------------------------------------------------------------------ sending

    def send(self, data: str | bytes) -> bool:
        """Send a MESSAGE packet. False if it was not sent (session closed, or over the backlog bound)."""
        ws = self.ws
        if ws is not None and not self.upgrading and self.state == Session.OPEN:  # the hot path
            if ws.buffered_amount > self.server.max_buffered_bytes:
                return self._over_bound(ws.buffered_amount)
            ws.send("4" + data if isinstance(data, str) else data)
            return True
        return self.send_packet(Packet(PacketType.MESSAGE, data))

    def send_packet(self, packet: Packet) -> bool:
        if self.state != Session.OPEN:
            return False
        ws = self.ws
        if ws is not None and not self.upgrading:
            if ws.buffered_amount > self.server.max_buffered_bytes and packet.type is PacketType.MESSAGE:
                return self._over_bound(ws.buffered_amount)
            ws.send(encode_packet(packet))
            return True
        size = len(packet.data) + 1
        if self.queued_bytes + size > self.server.max_buffered_bytes and packet.type is PacketType.MESSAGE:
            return self._over_bound(self.queued_bytes + size)
        self.queue.append(packet)
        self.queued_bytes += size
        waiter = self.poll_waiter
        if waiter is not None and not waiter.done() and not self.upgrading:
            waiter.set_result(None)
        return True

    def send_frame(self, frame: bytes, data: str | bytes, compress: bool = True) -> bool:
        """Send a MESSAGE whose WebSocket frame was encoded once for many sessions (a broadcast).

        ``data`` is the message itself, used when this session cannot take the shared frame
        (long-polling, an upgrade in progress, or a WebSocket with per-message compression, unless
        ``compress`` is False).
        """
        ws = self.ws
        if ws is not None and not self.upgrading and self.state == Session.OPEN and not (ws.compressing and compress):
            if ws.buffered_amount > self.server.max_buffered_bytes:
                return self._over_bound(ws.buffered_amount)
            ws.send_frame(frame)
            return True
        return self.send(data)

    def _over_bound(self, size: int) -> bool:
        """The client's backlog is over ``max_buffered_bytes``: apply ``slow_consumer_policy``."""
        server = self.server
        if server.slow_consumer_policy == "drop":
            server.stats["dropped_slow_consumer"] += 1
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "session %s: %d bytes waiting for a client that does not read (max_buffered_bytes=%d): "
                    "dropping messages to it until it catches up (slow_consumer_policy='drop')",
                    self.sid, size, server.max_buffered_bytes,
                    extra={"sid": self.sid, "reason": "slow consumer"},
                )
            return False
        server.stats["slow_consumers"] += 1
        log.warning(
            "session %s: %d bytes waiting for a client that does not read (max_buffered_bytes=%d): "
            "disconnecting it (slow_consumer_policy='disconnect')",
            self.sid, size, server.max_buffered_bytes,
            extra={"sid": self.sid, "reason": DisconnectReason.SLOW_CONSUMER.value},
        )
        self.close(DisconnectReason.SLOW_CONSUMER)
        return False

    def take_queue(self) -> list[Packet]:
        self._dropping = False
        packets = self.queue
        self.queue = []
        self.queued_bytes = 0
        return packets

    # ---------------------------------------------------------------- receiving

    def receive(self, packet: Packet) -> None:
        """A packet from the client on the session's current transport."""
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            self.server.handle_message(self, packet.data)
        elif ptype is PacketType.PONG:
            self._schedule_ping()
        elif ptype is PacketType.CLOSE:
            self.close(DisconnectReason.CLIENT_DISCONNECT)
        else:
            self.protocol_error(f"unexpected packet type {ptype.name} from the client")

    def protocol_error(self, reason: str) -> None:
        self.server.stats["protocol_errors"] += 1
        log.warning("session %s: protocol error: %s; closing it", self.sid, reason,
                    extra={"sid": self.sid, "reason": DisconnectReason.TRANSPORT_ERROR.value})
        self.close(DisconnectReason.TRANSPORT_ERROR, ws_code=1002)

    # WebSocketHandler, for the session's own WebSocket (after a WebSocket handshake or an upgrade)
    def on_ws_message(self, conn: WebSocketConnection, data: str | bytes) -> None:
        if conn is not self.ws:
            if self.state == Session.OPEN:  # the client spoke before the OPEN packet
                conn.close(1002, "message before open")
            return
        if self.state != Session.OPEN:
            return
        if data.__class__ is str:
            if data[:1] == "4":  # the hot path: a text MESSAGE
                self.server.handle_message(self, data[1:])
                return
            try:
                packet = decode_packet(data)
            except EngineIOProtocolError as exc:
                self.protocol_error(str(exc))
                return
        else:
            packet = Packet(PacketType.MESSAGE, data)
        self.receive(packet)

    def on_ws_close(self, conn: WebSocketConnection, code: int, reason: str) -> None:
        if conn is self._probe:
            self._abort_probe(None)
            return
        if conn is self.ws and self.state == Session.OPEN:
            if code in (1000, 1001, 1005, 1006):
                self.close(DisconnectReason.TRANSPORT_CLOSE, close_ws=False)
            else:
                self.close(DisconnectReason.TRANSPORT_ERROR, close_ws=False)

    # ---------------------------------------------------------------- heartbeat

    def start_heartbeat(self) -> None:
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        if self._ping_handle is not None:
            self._ping_handle.cancel()
        if self.state == Session.OPEN:
            self._ping_handle = self.server.loop.call_later(self.server.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_handle = None
        if self.state != Session.OPEN:
            return
        self.send_packet(Packet(PacketType.PING, ""))
        self._timeout_handle = self.server.loop.call_later(self.server.ping_timeout, self._ping_timed_out)

    def _ping_timed_out(self) -> None:
        self._timeout_handle = None
        log.info("session %s: no pong within %ss of a ping; closing it", self.sid, self.server.ping_timeout,
                 extra={"sid": self.sid, "reason": DisconnectReason.PING_TIMEOUT.value})
        self.close(DisconnectReason.PING_TIMEOUT)

    # ------------------------------------------------------------------ upgrade

    def begin_probe(self, conn: WebSocketConnection) -> None:
        """A WebSocket with this sid arrived; it becomes the transport if the probe completes."""
        self._probe = conn
        self._probe_handle = self.server.loop.call_later(
            self.server.upgrade_timeout, self._abort_probe, "upgrade timed out"
        )

    def probe_message(self, conn: WebSocketConnection, data: str | bytes) -> None:
        if conn is not self._probe or self.state != Session.OPEN:
            conn.close(1000)
            return
        if data == "2probe" and not self.upgrading:
            conn.send("3probe")
            self.upgrading = True
            waiter = self.poll_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # answered with a noop: the client pauses polling
        elif data == "5" and self.upgrading:
            self._complete_upgrade(conn)
        else:
            self._abort_probe(f"unexpected {data!r} during the upgrade")

    def _complete_upgrade(self, conn: WebSocketConnection) -> None:
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        self._probe = None
        self.ws = conn  # the probe's relay now forwards to on_ws_message
        self.transport = "websocket"
        self.upgrading = False
        waiter = self.poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        held = self.take_queue()
        for packet in held:
            conn.send(encode_packet(packet))
        log.debug("session %s upgraded to websocket (%d held packets flushed)", self.sid, len(held))
        self.server.handle_upgrade(self)

    def _abort_probe(self, reason: str | None) -> None:
        conn = self._probe
        if conn is None:
            return
        self._probe = None
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        if reason is not None:
            log.info("session %s: upgrade abandoned: %s", self.sid, reason, extra={"sid": self.sid, "reason": reason})
        if not conn.closed:
            conn.close(1000 if reason is None else 1002)
        if self.upgrading:
            self.upgrading = False
            if self.queue and self.poll_waiter is not None and not self.poll_waiter.done():
                self.poll_waiter.set_result(None)

    # -------------------------------------------------------------------- close

    def close(self, reason: DisconnectReason, *, close_ws: bool = True, ws_code: int = 1000) -> None:
        """End the session once: stop timers, tell the client where possible, notify the server."""
        if self.state == Session.CLOSED:
            return
        self.state = Session.CLOSED
        for handle in (self._ping_handle, self._timeout_handle, self._probe_handle):
            if handle is not None:
                handle.cancel()
        self._ping_handle = self._timeout_handle = self._probe_handle = None
        if self._probe is not None and not self._probe.closed:
            self._probe.close(1000)
        self._probe = None
        self.queue = []
        self.queued_bytes = 0
        if self.ws is not None:
            if close_ws and not self.ws.closed:
                if reason in _SERVER_SIDE:
                    # engine.io-client ignores it; python-engineio's client reads the reason from it
                    self.ws.send("1")
                self.ws.close(ws_code)
        elif self.poll_waiter is not None and not self.poll_waiter.done():
            self.poll_waiter.set_result(None)  # the parked GET answers with a CLOSE packet
        self.server.session_closed(self, reason)
