"""One Engine.IO session: its transport, its outbox, its heartbeat and its upgrade.

Theory of operation
-------------------
A session knows nothing of the server that made it: it gets a :class:`SessionContext` (the configuration
and what every session of the server shares: the heartbeat wheel, the backlog account, the stats, the
callback that tells the server a session ended) and a :class:`Receiver` (the upper layer: the Socket.IO
client, or the Engine.IO server's handlers) to which it delivers every MESSAGE and, once, its end.

Outgoing packets go straight to the WebSocket while its transport is under the high-water mark and the
outbox is empty; otherwise they wait in the outbox (:mod:`sioserver.engine.outbox`), which feeds the
transport each time it drains. On long-polling they wait in the same outbox until a GET takes them all
(:mod:`sioserver.engine.polling`). ``owed`` counts the bytes the client owes (outbox and transport
buffer); past ``max_buffered_bytes`` the slow-consumer policy applies to this session, and past
``max_buffered_bytes_total`` across all sessions to the largest backlogs first.

Upgrade (polling -> WebSocket): a WebSocket with this sid is the *probe*, and the session is its handler
from the start. ``2probe`` on it is answered ``3probe`` and the session enters ``upgrading``: a parked or
new GET is answered ``6`` (noop) at once so the client can pause polling, and outgoing packets are held.
``5`` on the probe makes it the transport and flushes what was held. A probe that does not finish within
``upgrade_timeout`` is closed and polling goes on.

Heartbeat: the server sends ``2`` ``ping_interval`` after the handshake and after every pong; no ``3``
within ``ping_timeout`` of a ping closes the session (so a silent client is closed at interval + timeout).
The deadlines live in the server's :class:`~sioserver.engine.heartbeat.HeartbeatWheel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ..exceptions import EngineIOProtocolError
from ..proto.engineio import Packet, PacketType, decode_packet
from .heartbeat import HeartbeatWheel
from .outbox import Backlogs, OutItem, item_size
from .payload import V4, PayloadFormat
from .transport import SharedPacket, WebSocketTransport

__all__ = ["SERVER_SIDE", "DisconnectReason", "PollWaiter", "Receiver", "Session", "SessionConfig", "SessionContext"]

log = logging.getLogger("sioserver.engine")

#: what the outbox hands a drained transport in one write
FLUSH_CHUNK = 16 * 1024


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


#: the server ended the session (``socket.close()`` in the reference): a polling session with no GET
#: parked keeps its sid until the next GET, which is answered with a noop and the close packet
SERVER_SIDE = frozenset(
    {DisconnectReason.SERVER_DISCONNECT, DisconnectReason.SERVER_SHUTDOWN, DisconnectReason.SLOW_CONSUMER}
)


class Receiver(Protocol):
    """The upper layer of one session."""

    def on_message(self, data: str | bytes) -> None:
        """A MESSAGE from the client (``str`` text, ``bytes`` binary). Called synchronously from the
        transport, with no task per message: a receiver that needs to await decides so itself."""

    def on_close(self, reason: DisconnectReason) -> None:
        """The session ended (exactly once)."""


class PollWaiter(Protocol):
    """What a parked GET waits on (an ``asyncio.Future``, or a front's own): the session completes it once."""

    def done(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...


class _NoReceiver:
    __slots__ = ()

    def on_message(self, data: str | bytes) -> None:
        pass

    def on_close(self, reason: DisconnectReason) -> None:
        pass


_NO_RECEIVER = _NoReceiver()


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What a session is told by its server. Times in seconds, sizes in bytes."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    #: what clients are told beyond ``ping_interval`` (python-engineio's grace period)
    ping_grace: float = 0.0
    upgrade_timeout: float = 10.0
    max_buffered_bytes: int = 8 * 1024 * 1024
    max_buffered_bytes_total: int = 64 * 1024 * 1024
    slow_consumer_policy: str = "disconnect"


class SessionContext:
    """What every session of one server shares."""

    __slots__ = ("backlogs", "config", "logger", "on_closed", "on_upgraded", "stats", "wheel")

    def __init__(
        self,
        config: SessionConfig,
        on_closed: Callable[[Session, DisconnectReason], None],
        stats: Counter[str] | None = None,
        logger: logging.Logger = log,
        on_upgraded: Callable[[Session], None] | None = None,
    ) -> None:
        self.config = config
        self.on_closed = on_closed
        self.on_upgraded: Callable[[Session], None] = on_upgraded or _nothing
        self.stats: Counter[str] = Counter() if stats is None else stats
        self.logger = logger
        self.wheel = HeartbeatWheel()
        self.backlogs = Backlogs(config.max_buffered_bytes_total, self.stats, logger)


def _nothing(session: Session) -> None:
    pass


class Session:
    """An Engine.IO session."""

    __slots__ = (
        "_beat",
        "_ctx",
        "_dropping",
        "_outbox",
        "_owed",
        "_pinged",
        "_probe",
        "_probe_handle",
        "_release",
        "client_closed",
        "close_reason",
        "environ",
        "payload",
        "poll_request",
        "poll_waiter",
        "posting",
        "receiver",
        "sid",
        "state",
        "transport",
        "upgrading",
        "ws",
    )

    OPEN = 1
    CLOSED = 2
    #: the Engine.IO protocol revision (3: :class:`~sioserver.engine.session_v3.SessionV3`)
    protocol = 4

    def __init__(self, ctx: SessionContext, sid: str, transport: str, environ: dict[str, Any]) -> None:
        self._ctx = ctx
        #: how its long-polling bodies are framed
        self.payload: PayloadFormat = V4
        self.sid = sid
        self.transport = transport
        self.environ = environ
        self.state = Session.OPEN
        self.close_reason: DisconnectReason | None = None
        #: the client ended the session with an Engine.IO close packet (a parked GET then gets a noop)
        self.client_closed = False
        self.receiver: Receiver = _NO_RECEIVER
        self.ws: WebSocketTransport | None = None
        self.upgrading = False
        self.poll_waiter: PollWaiter | None = None
        self.poll_request: Any = None
        self.posting = False
        self._outbox: deque[OutItem] | None = None
        self._owed = 0
        self._dropping = False
        self._probe: WebSocketTransport | None = None
        self._probe_handle: asyncio.TimerHandle | None = None
        self._beat: Any = None  # the heartbeat wheel's bookkeeping
        self._pinged = False
        self._release: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<Session {self.sid} {self.transport}{' closed' if self.closed else ''}>"

    @property
    def closed(self) -> bool:
        return self.state == Session.CLOSED

    @property
    def owed(self) -> int:
        """Bytes the client owes: what waits in the outbox and in the transport's buffer."""
        ws = self.ws
        return self._owed + (ws.buffered_amount if ws is not None else 0)

    @property
    def writable(self) -> bool:
        """Whether a packet sent now goes out at once (volatile packets are dropped otherwise)."""
        if self._outbox:
            return False
        ws = self.ws
        if ws is not None and not self.upgrading:
            return ws.writable and ws.buffered_amount == 0
        return self.poll_waiter is not None

    @property
    def probing(self) -> bool:
        return self._probe is not None

    # ------------------------------------------------------------------ sending

    def send(self, data: str | bytes) -> bool:
        """Send a MESSAGE. False if it was not sent (session closed, or over a backlog bound)."""
        ws = self.ws
        if ws is not None and self._outbox is None and not self.upgrading and ws.writable:  # the hot path
            if self.state == Session.OPEN:
                ws.send("4" + data if isinstance(data, str) else data)
                return True
            return False
        return self._enqueue("4" + data if isinstance(data, str) else data, True)

    def send_shared(self, packets: Sequence[SharedPacket], volatile: bool = False) -> bool:
        """Send MESSAGEs shared by many sessions (a broadcast): a WebSocket gets the frames encoded once
        for all; everything else waits in the outbox as references. Eligibility is decided here, once.
        ``volatile`` packets are dropped (and counted) when they cannot go out at once."""
        if self.state != Session.OPEN:
            return False
        ws = self.ws
        if ws is not None and self._outbox is None and not self.upgrading:  # the hot path
            if volatile and not (ws.writable and ws.buffered_amount == 0):
                self._ctx.stats["volatile_dropped"] += 1
                return False
            for packet in packets:
                if ws.writable:
                    ws.send_shared(packet)
                elif not self._enqueue(packet, True):
                    return False
            return True
        if volatile and not self.writable:
            self._ctx.stats["volatile_dropped"] += 1
            return False
        return all(self._enqueue(packet, True) for packet in packets)

    def send_packet(self, packet: Packet) -> bool:
        """Send any packet (a MESSAGE is bounded; control packets always go)."""
        data = packet.data
        if isinstance(data, bytes):
            item: OutItem = data
        else:
            item = "%d%s" % (packet.type, data)
        return self._enqueue(item, packet.type is PacketType.MESSAGE)

    def _enqueue(self, item: OutItem, bounded: bool) -> bool:
        if self.state != Session.OPEN:
            return False
        ws = self.ws
        box = self._outbox
        if ws is not None and box is None and not self.upgrading and ws.writable:
            _write(ws, item)
            return True
        size = item.size if item.__class__ is SharedPacket else len(item)  # type: ignore[arg-type]
        ctx = self._ctx
        if bounded:
            if self._dropping:
                ctx.stats["dropped_slow_consumer"] += 1
                return False
            owed = self._owed + size + (ws.buffered_amount if ws is not None else 0)  # (self.owed + size)
            if owed > ctx.config.max_buffered_bytes:
                return self._over_bound(owed)
        backlogs = ctx.backlogs
        if box is None:
            box = self._outbox = deque()
            backlogs.backlogged.add(self)
        box.append(item)
        self._owed += size
        total = backlogs.total = backlogs.total + size
        if ws is None:
            waiter = self.poll_waiter
            if waiter is not None and not self.upgrading and not waiter.done():
                waiter.set_result(None)
        if 0 < backlogs.limit < total:  # (backlogs.over())
            backlogs.relieve()
        return self.state == Session.OPEN

    def _flush(self) -> None:
        """Feed the WebSocket from the outbox while it takes more."""
        ws = self.ws
        box = self._outbox
        if ws is None or box is None:
            return
        sent = 0
        while box and ws.writable:
            # one write per chunk: a transport's queued writes cost far more than their bytes
            chunk: list[OutItem] = []
            size = 0
            while box and size < FLUSH_CHUNK:
                item = box.popleft()
                size += item_size(item)
                chunk.append(item)
            sent += size
            ws.send_batch(chunk)
        self._owed -= sent
        self._ctx.backlogs.total -= sent
        if not box:
            self._release_outbox()

    def take_outbox(self) -> list[OutItem]:
        """Everything the outbox holds (a long-polling GET takes it all)."""
        box = self._outbox
        if box is None:
            self._dropping = False
            return []
        self._ctx.backlogs.total -= self._owed
        self._owed = 0
        self._release_outbox()
        return list(box)

    @property
    def outbox_empty(self) -> bool:
        return not self._outbox

    def _release_outbox(self) -> None:
        self._outbox = None
        self._dropping = False
        self._ctx.backlogs.backlogged.discard(self)

    def _discard_outbox(self) -> int:
        owed = self._owed
        if self._outbox is not None:
            self._ctx.backlogs.total -= owed
            self._owed = 0
            self._release_outbox()
        return owed

    def _over_bound(self, size: int) -> bool:
        """This client's backlog is over ``max_buffered_bytes``: apply ``slow_consumer_policy``."""
        self.slow_consumer(size, "max_buffered_bytes", self._ctx.config.max_buffered_bytes)
        return False

    def slow_consumer(self, size: int, bound: str, limit: int) -> None:
        """Apply the slow-consumer policy to this session, which owes ``size`` bytes (over ``bound``)."""
        ctx = self._ctx
        if ctx.config.slow_consumer_policy == "drop":
            ctx.stats["dropped_slow_consumer"] += 1
            if not self._dropping:
                ctx.logger.warning(
                    "session %s: %d bytes waiting for a client that does not read (%s=%d): dropping messages "
                    "to it until it catches up (slow_consumer_policy='drop')", self.sid, size, bound, limit,
                    extra={"sid": self.sid, "reason": "slow consumer"},
                )
            if bound != "max_buffered_bytes":  # the bound across sessions: let go of what it holds
                ctx.backlogs.released(self._discard_outbox())
                self._dropping = True
            elif self._outbox is not None:  # until the outbox has drained
                self._dropping = True
            return
        ctx.stats["slow_consumers"] += 1
        ctx.logger.warning(
            "session %s: %d bytes waiting for a client that does not read (%s=%d): disconnecting it "
            "(slow_consumer_policy='disconnect')", self.sid, size, bound, limit,
            extra={"sid": self.sid, "reason": DisconnectReason.SLOW_CONSUMER.value},
        )
        self.close(DisconnectReason.SLOW_CONSUMER)

    # ---------------------------------------------------------------- receiving

    def receive_message(self, data: str) -> None:
        """A text MESSAGE from the client (what :meth:`receive` does with one, a call less)."""
        self.receiver.on_message(data)

    def receive(self, packet: Packet) -> None:
        """A packet from the client on the session's current transport."""
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            self.receiver.on_message(packet.data)
        elif ptype is PacketType.PONG:
            self._schedule_ping()
        elif ptype is PacketType.CLOSE:
            # as the reference (engine.io's polling transport closes itself: "transport close"): the
            # transport went away, not the Socket.IO session, which a DISCONNECT packet ends. So a client
            # that closes its transport stays recoverable (connection state recovery)
            self.client_closed = True
            self.close(DisconnectReason.TRANSPORT_CLOSE)
        else:
            self.protocol_error(f"unexpected packet type {ptype.name} from the client")

    def protocol_error(self, reason: str, cause: DisconnectReason = DisconnectReason.TRANSPORT_ERROR) -> None:
        """The client broke the Engine.IO protocol: the session ends (as the reference: ``parse error`` for a
        packet that does not decode, ``transport error`` for one that is not allowed)."""
        self._ctx.stats["protocol_errors"] += 1
        self._ctx.logger.warning("session %s: protocol error: %s; closing it", self.sid, reason,
                                 extra={"sid": self.sid, "reason": cause.value})
        self.close(cause)

    # TransportHandler: the session handles its WebSocket and its probe
    def on_ws_message(self, conn: WebSocketTransport, data: str | bytes) -> None:
        if conn is not self.ws:
            if conn is self._probe:
                self._probe_message(conn, data)
            elif self.state == Session.OPEN and self._probe is None:  # the client spoke before the OPEN packet
                conn.close(1002, "message before open")
            return
        if self.state != Session.OPEN:
            return
        if data.__class__ is str:
            if data[:1] == "4":  # the hot path: a text MESSAGE
                self.receiver.on_message(data[1:])
                return
            try:
                packet = decode_packet(data)
            except EngineIOProtocolError as exc:
                self.protocol_error(str(exc), DisconnectReason.PARSE_ERROR)
                return
            if packet.type is PacketType.CLOSE:
                return  # as the reference: a client ends a WebSocket session by closing the WebSocket
        else:
            packet = Packet(PacketType.MESSAGE, data)
        self.receive(packet)

    def on_ws_close(self, conn: WebSocketTransport, code: int, reason: str) -> None:
        if conn is self._probe:
            self._abort_probe(None)
            return
        if conn is self.ws and self.state == Session.OPEN:
            if code in (1000, 1001, 1005, 1006):
                self.close(DisconnectReason.TRANSPORT_CLOSE, close_ws=False)
            else:
                self.close(DisconnectReason.TRANSPORT_ERROR, close_ws=False)

    def on_ws_drain(self, conn: WebSocketTransport) -> None:
        if conn is self.ws and not self.upgrading:
            if self._outbox is not None:
                self._flush()
            else:
                self._dropping = False  # caught up

    def attach_ws(self, conn: WebSocketTransport) -> None:
        """The session's WebSocket (after a WebSocket handshake): what waited in the outbox follows."""
        self.ws = conn
        self.transport = "websocket"
        self._flush()

    def hold_request(self, release: Callable[[], None]) -> None:
        """Keep what the front end holds of the handshake request until :meth:`release_request`."""
        self._release = release

    def release_request(self) -> None:
        """The upper layer is done with the handshake (its connect handler ran): the front end may drop
        what it kept for it (``environ["aiohttp.request"]``), so that an idle connection does not keep it."""
        release, self._release = self._release, None
        if release is not None:
            release()

    # ---------------------------------------------------------------- heartbeat

    def start_heartbeat(self) -> None:
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        if self.state == Session.OPEN:
            self._pinged = False
            self._ctx.wheel.schedule(self, self._ctx.config.ping_interval)

    def heartbeat_due(self) -> None:
        """Called by the wheel: time to ping, or the ping went unanswered."""
        if self.state != Session.OPEN:
            return
        ctx = self._ctx
        if self._pinged:
            ctx.logger.info("session %s: no pong within %ss of a ping; closing it", self.sid,
                            ctx.config.ping_timeout,
                            extra={"sid": self.sid, "reason": DisconnectReason.PING_TIMEOUT.value})
            self.close(DisconnectReason.PING_TIMEOUT)
            return
        self._pinged = True
        self._enqueue("2", False)
        ctx.wheel.schedule(self, ctx.config.ping_timeout)

    # ------------------------------------------------------------------ upgrade

    def begin_probe(self, conn: WebSocketTransport) -> None:
        """A WebSocket with this sid arrived; it becomes the transport if the probe completes."""
        self._probe = conn
        self._probe_handle = asyncio.get_running_loop().call_later(
            self._ctx.config.upgrade_timeout, self._abort_probe, "upgrade timed out"
        )

    def _probe_message(self, conn: WebSocketTransport, data: str | bytes) -> None:
        if self.state != Session.OPEN:
            conn.close(None)
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

    def _complete_upgrade(self, conn: WebSocketTransport) -> None:
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        self._probe = None
        self.upgrading = False
        waiter = self.poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        held = self._owed
        self.attach_ws(conn)
        self._ctx.logger.debug("session %s upgraded to websocket (%d bytes held flushed)", self.sid, held)
        self._ctx.on_upgraded(self)

    def _abort_probe(self, reason: str | None) -> None:
        conn = self._probe
        if conn is None:
            return
        self._probe = None
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        if reason is not None:
            self._ctx.logger.info("session %s: upgrade abandoned: %s", self.sid, reason,
                                  extra={"sid": self.sid, "reason": reason})
        if not conn.closed:
            conn.close(None)
        if self.upgrading:
            self.upgrading = False
            waiter = self.poll_waiter
            if self._outbox and waiter is not None and not waiter.done():
                waiter.set_result(None)

    # -------------------------------------------------------------------- close

    def close(self, reason: DisconnectReason, *, close_ws: bool = True, ws_code: int | None = None) -> None:
        """End the session once: stop timers, tell the client where possible, notify the server.

        As the reference server: the WebSocket gets a Close frame without a status code (``ws_code``, for
        an upper layer that wants one); a parked GET is answered with the close packet, or with a noop
        when the client itself sent the close."""
        if self.state == Session.CLOSED:
            return
        self.state = Session.CLOSED
        self.close_reason = reason
        ctx = self._ctx
        ctx.wheel.cancel(self)
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        if self._probe is not None and not self._probe.closed:
            self._probe.close(None)
        self._probe = None
        ws = self.ws
        if ws is not None and close_ws and not ws.closed and reason is not DisconnectReason.SLOW_CONSUMER:
            # what the client is owed goes out before the close (the close timeout bounds the wait)
            box = self._outbox
            if box:
                ws.send_batch(list(box))
        ctx.backlogs.released(self._discard_outbox())
        if ws is not None:
            if close_ws and not ws.closed:
                ws.close(ws_code)
        elif self.poll_waiter is not None and not self.poll_waiter.done():
            self.poll_waiter.set_result(None)  # the parked GET is answered
        self._release = None
        ctx.on_closed(self, reason)
        receiver, self.receiver = self.receiver, _NO_RECEIVER
        try:
            receiver.on_close(reason)
        except Exception:
            ctx.logger.exception("disconnect handler failed for session %s", self.sid)


def _write(ws: WebSocketTransport, item: OutItem) -> None:
    if isinstance(item, SharedPacket):
        ws.send_shared(item)
    else:
        ws.send(item)
