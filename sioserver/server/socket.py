"""A client's socket in one namespace (:class:`Socket`): its output, its pending acks, its lifecycle.

A socket is *connecting* while middlewares and the connect handler run: what the server sends it
meanwhile is held and follows the CONNECT reply, so a client never sees an event before
``40{"sid":..}``. A socket is what an adapter reaches (:class:`~.protocols.Recipient`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.session import DisconnectReason
from ..proto.socketio import CONNECT, EVENT, Encoded, Packet, disconnect_packet
from .acks import CallbackAck
from .adapter import SharedMessage
from .protocols import AckHandler

if TYPE_CHECKING:
    from .client import Client
    from .namespace import Namespace

__all__ = ["Socket"]

log = logging.getLogger("sioserver.server")

AckCallback = Callable[..., Any]


class _PendingAck:
    __slots__ = ("handler", "started", "timer")

    def __init__(self, handler: AckHandler, timer: asyncio.TimerHandle | None, started: float = 0.0) -> None:
        self.handler = handler
        self.timer = timer
        self.started = started  # the loop's time at the emit, when an observer measures ack durations


class Socket:
    """One client connected to one namespace. ``sid`` is fresh per namespace, never the Engine.IO sid."""

    __slots__ = (
        "_held",
        "acks",
        "auth",
        "client",
        "close_reason",
        "connected",
        "disconnected",
        "issued",
        "left_rooms",
        "namespace",
        "pid",
        "recovered",
        "session",
        "sid",
    )

    def __init__(self, namespace: Namespace, client: Client, sid: str, auth: Any) -> None:
        self.namespace = namespace
        self.client = client
        self.sid = sid
        self.auth = auth
        self.close_reason: DisconnectReason | None = None
        self.connected = False
        self.disconnected = False
        self.session: dict[str, Any] = {}
        self.acks: dict[int, _PendingAck] = {}
        self._held: list[Encoded] | None = []
        self.issued = time.time()
        self.left_rooms: set[str] | None = None  # the rooms it was in when it went away
        #: connection state recovery: the private session id (None when recovery is off), and whether
        #: this socket got back the sid, rooms and data of an earlier connection (Node's socket.recovered)
        self.pid: str | None = None
        self.recovered = False

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace.name}>"

    @property
    def environ(self) -> dict[str, Any]:
        return self.client.session.environ

    @property
    def rooms(self) -> set[str]:
        if self.left_rooms is not None:  # gone: what disconnect handlers still see
            return set(self.left_rooms)
        return set(self.namespace.adapter.socket_rooms(self.sid) or ())

    @property
    def handshake(self) -> dict[str, Any]:
        """The connection's handshake in the shape of Node's ``socket.handshake`` (what
        ``fetchSockets()`` reports to other servers): headers, time, address, xdomain, secure,
        issued (ms), url, query, auth."""
        environ = self.environ
        headers = {key[5:].lower().replace("_", "-"): value for key, value in environ.items()
                   if key.startswith("HTTP_") and isinstance(value, str)}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in environ:
                headers[key.lower().replace("_", "-")] = environ[key]
        query_string = environ.get("QUERY_STRING", "")
        url = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + ("?" + query_string if query_string else "")
        issued = time.gmtime(self.issued)
        return {
            "headers": headers,
            "time": time.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", issued),
            "address": environ.get("REMOTE_ADDR", ""),
            "xdomain": "HTTP_ORIGIN" in environ,
            "secure": environ.get("wsgi.url_scheme") == "https",
            "issued": int(self.issued * 1000),
            "url": url,
            "query": dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True)),
            "auth": self.auth if self.auth is not None else {},
        }

    # ---------------------------------------------------------------- output

    def write(self, encoded: Encoded, volatile: bool = False) -> None:
        held = self._held
        if held is not None:
            held.append(encoded)
        elif not self.disconnected:
            self.client.write(encoded, volatile)

    def write_shared(self, shared: SharedMessage, volatile: bool) -> None:
        if self._held is not None:
            self._held.append(shared.messages)
        elif not self.disconnected:
            self.client.write_shared(shared, volatile)

    def send_packet(self, packet: Packet) -> None:
        self.write(self.namespace.encode(packet))

    def emit(self, event: str, args: list[Any], callback: AckCallback | None = None,
             timeout: float | None = None, volatile: bool = False, timeout_error: bool = False) -> None:
        """Emit to this socket; ``callback(*ack_args)`` runs when the client acknowledges (with
        ``timeout_error``, ``callback(AckTimeoutError)`` when it does not in time)."""
        ack_id = None
        if callback is not None:
            ack_id = self.namespace.next_ack_id()
            self.expect_ack(ack_id, CallbackAck(callback, event, self.sid, timeout_error), timeout)
        namespace = self.namespace
        if namespace.handlers.any_outgoing:
            namespace.notify_outgoing((self.sid,), event, args)
        if namespace.server.event_logger is not None:
            namespace.server.event_logger.info('emitting event "%s" to %s [%s]', str(event)[:100], self.sid,
                                               namespace.name)
        packet = Packet(EVENT, self.namespace.name, [event, *args], ack_id)
        self.write(self.namespace.encode(packet), volatile)
        observer = self.namespace.server.observer_events
        if observer is not None:
            observer.event_sent(self.namespace, [self.sid], packet.data)

    # ------------------------------------------------------------------ acks

    def expect_ack(self, ack_id: int, handler: AckHandler, timeout: float | None) -> None:
        """Wait for ack ``ack_id``: ``handler(answer)``, or ``handler.expire()`` after ``timeout``
        seconds (None: the server's ``ack_timeout``; 0: no deadline), or ``handler.fail(reason)``."""
        if timeout is None:
            timeout = self.namespace.ack_timeout
        timer = None
        if timeout:
            timer = asyncio.get_running_loop().call_later(timeout, self._ack_expired, ack_id)
        started = 0.0 if self.namespace.server.observer is None else asyncio.get_running_loop().time()
        self.acks[ack_id] = _PendingAck(handler, timer, started)

    def _ack_expired(self, ack_id: int) -> None:
        pending = self.acks.pop(ack_id, None)
        if pending is not None:
            log.debug("socket %s: no ack %d in time; forgotten", self.sid, ack_id)
            observer = self.namespace.server.observer
            if observer is not None:
                observer.ack_failed(self, True)
            try:
                pending.handler.expire()
            except Exception:
                log.exception("ack timeout handler failed on socket %s", self.sid)

    def on_ack(self, packet: Packet) -> None:
        """An ACK packet from the client."""
        pending = self.acks.pop(packet.id, None)  # type: ignore[arg-type]
        if pending is None:
            log.debug("socket %s: ack %s for nothing pending; ignored", self.sid, packet.id)
            return
        if pending.timer is not None:
            pending.timer.cancel()
        observer = self.namespace.server.observer
        if observer is not None and pending.started:
            observer.ack_answered(self, asyncio.get_running_loop().time() - pending.started)
        try:
            pending.handler(packet.data)
        except Exception:
            log.exception("ack callback failed on socket %s", self.sid)

    def _fail_acks(self, reason: str) -> None:
        acks, self.acks = self.acks, {}
        observer = self.namespace.server.observer
        for pending in acks.values():
            if pending.timer is not None:
                pending.timer.cancel()
            if observer is not None:
                observer.ack_failed(self, False)
            try:
                pending.handler.fail(reason)
            except Exception:
                log.exception("ack failure handler failed on socket %s", self.sid)

    # ------------------------------------------------------------ lifecycle

    def accept(self) -> None:
        """The connection is accepted: send the CONNECT reply, then what was held."""
        held, self._held = self._held, None
        self.connected = True
        self.client.session.release_request()  # the connect handler has run: environ extras may go
        reply = self.client.connect_reply(self)
        self.client.write(self.namespace.encode(Packet(CONNECT, self.namespace.name, reply)))
        for encoded in held or ():
            self.client.write(encoded, False)
        observer = self.namespace.server.observer
        if observer is not None:
            observer.socket_connected(self)

    def disconnect_from_server(self, close: bool = False) -> None:
        """``sio.disconnect(sid)``: the client is told (DISCONNECT packet), the handler runs."""
        if self.disconnected:
            return
        if self.connected:
            self.client.write(self.namespace.encode(disconnect_packet(self.namespace.name)))
        self.closed(DisconnectReason.SERVER_DISCONNECT)
        if close:
            self.client.close(DisconnectReason.SERVER_DISCONNECT)

    def closed(self, reason: DisconnectReason) -> None:
        """Leave every room, fail pending acks, run the disconnect handler (once)."""
        if self.disconnected:
            return
        self.disconnected = True
        self.close_reason = reason
        was_connected = self.connected
        self.connected = False
        self._held = None
        self.client.sockets.pop(self.namespace.name, None)
        self._fail_acks(reason.value)
        self.namespace.remove(self, reason, was_connected)
        self.client.socket_removed()
