"""A client's connection (:class:`Client`, one per Engine.IO session) and its namespace sockets.

A :class:`Client` decodes what the Engine.IO session delivers and routes each packet to the
:class:`Socket` of its namespace. A socket is *connecting* while middlewares and the connect handler
run: what the server sends it meanwhile is held and follows the CONNECT reply, so a client never sees
an event before ``40{"sid":..}``. Protocol violations close the whole Engine.IO connection with one
log line; a CONNECT for an unknown namespace only earns a CONNECT_ERROR.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..engine.session import DisconnectReason, Session
from ..exceptions import AckTimeoutError, DisconnectedError, SocketIOProtocolError
from ..proto.socketio import (
    ACK,
    CONNECT,
    DISCONNECT,
    EVENT,
    Encoded,
    Packet,
    connect_error_packet,
    disconnect_packet,
)
from .adapter import SharedMessage

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import AsyncServer

__all__ = ["Client", "Socket"]

log = logging.getLogger("sioserver.server")

AckCallback = Callable[..., Any]


class _PendingAck:
    __slots__ = ("callback", "timer")

    def __init__(self, callback: Callable[[list[Any]], None], timer: asyncio.TimerHandle | None) -> None:
        self.callback = callback
        self.timer = timer


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
        "namespace",
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

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace.name}>"

    @property
    def environ(self) -> dict[str, Any]:
        return self.client.session.environ

    @property
    def rooms(self) -> set[str]:
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
        self.write(self.namespace.server.parser.encode(packet))

    def emit(self, event: str, args: list[Any], callback: AckCallback | None = None,
             timeout: float | None = None, volatile: bool = False) -> None:
        """Emit to this socket; ``callback(*ack_args)`` runs when the client acknowledges."""
        ack_id = None
        if callback is not None:
            ack_id = self.namespace.next_ack_id()
            self.expect_ack(ack_id, lambda answer: callback(*answer), timeout)
        packet = Packet(EVENT, self.namespace.name, [event, *args], ack_id)
        self.write(self.namespace.server.parser.encode(packet), volatile)

    # ------------------------------------------------------------------ acks

    def expect_ack(self, ack_id: int, callback: Callable[[list[Any]], None], timeout: float | None) -> None:
        if timeout is None:
            timeout = self.namespace.server.ack_timeout
        timer = None
        if timeout:
            timer = asyncio.get_running_loop().call_later(timeout, self._ack_expired, ack_id)
        self.acks[ack_id] = _PendingAck(callback, timer)

    def _ack_expired(self, ack_id: int) -> None:
        pending = self.acks.pop(ack_id, None)
        if pending is not None:
            log.debug("socket %s: no ack %d in time; forgotten", self.sid, ack_id)
            expire = getattr(pending.callback, "expire", None)
            if expire is not None:
                expire()

    def _on_ack(self, packet: Packet) -> None:
        pending = self.acks.pop(packet.id, None)  # type: ignore[arg-type]
        if pending is None:
            log.debug("socket %s: ack %s for nothing pending; ignored", self.sid, packet.id)
            return
        if pending.timer is not None:
            pending.timer.cancel()
        try:
            pending.callback(packet.data)
        except Exception:
            log.exception("ack callback failed on socket %s", self.sid)

    def _fail_acks(self, reason: str) -> None:
        acks, self.acks = self.acks, {}
        for pending in acks.values():
            if pending.timer is not None:
                pending.timer.cancel()
            fail = getattr(pending.callback, "fail", None)
            if fail is not None:
                fail(reason)

    # ------------------------------------------------------------ lifecycle

    def accept(self) -> None:
        """The connection is accepted: send the CONNECT reply, then what was held."""
        held, self._held = self._held, None
        self.connected = True
        self.client.write(self.namespace.server.parser.encode(
            Packet(CONNECT, self.namespace.name, {"sid": self.sid})))
        for encoded in held or ():
            self.client.write(encoded, False)

    def disconnect_from_server(self, close: bool = False) -> None:
        """``sio.disconnect(sid)``: the client is told (DISCONNECT packet), the handler runs."""
        if self.disconnected:
            return
        if self.connected:
            self.client.write(self.namespace.server.parser.encode(disconnect_packet(self.namespace.name)))
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


class _AckWaiter:
    """Turns ack answers into a future result: one answer (``call``) or a list (broadcast)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def __call__(self, answer: list[Any]) -> None:
        if not self.future.done():
            self.future.set_result(answer)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_exception(AckTimeoutError("the client did not acknowledge in time"))

    def fail(self, reason: str) -> None:
        if not self.future.done():
            self.future.set_exception(DisconnectedError(reason))


def ack_waiter(future: asyncio.Future[Any]) -> _AckWaiter:
    return _AckWaiter(future)


class Client:
    """One Engine.IO session speaking Socket.IO: its decoder and its namespace sockets."""

    __slots__ = ("_backlog", "_busy", "connect_timer", "decoder", "server", "session", "sockets")

    def __init__(self, server: AsyncServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.decoder = server.parser.decoder()
        self.sockets: dict[str, Socket] = {}
        self.connect_timer: asyncio.TimerHandle | None = None
        self._busy: asyncio.Task[Any] | None = None
        self._backlog: deque[str | bytes] = deque()
        self._arm_connect_timer()

    def wait_for(self, task: asyncio.Task[Any]) -> None:
        """``async_handlers=False``: hold this client's next messages until ``task`` is done."""
        self._busy = task
        task.add_done_callback(self._resume)

    def _resume(self, _: asyncio.Task[Any]) -> None:
        self._busy = None
        backlog = self._backlog
        while backlog and self._busy is None and not self.session.closed:
            self.on_message(backlog.popleft())

    def _arm_connect_timer(self) -> None:
        if self.server.connect_timeout:
            self.connect_timer = asyncio.get_running_loop().call_later(
                self.server.connect_timeout, self._connect_timed_out
            )

    def _connect_timed_out(self) -> None:
        self.connect_timer = None
        if not self.sockets:
            log.info("client %s: no namespace connected within connect_timeout=%ss; closing it",
                     self.session.sid, self.server.connect_timeout)
            self.server.stats["connect_timeouts"] += 1
            self.session.close(DisconnectReason.SERVER_DISCONNECT)

    def socket_removed(self) -> None:
        if not self.sockets and self.connect_timer is None and not self.session.closed:
            self._arm_connect_timer()

    # ---------------------------------------------------------------- output

    def write(self, encoded: Encoded, volatile: bool = False) -> None:
        session = self.session
        if volatile and not session.writable:
            self.server.stats["volatile_dropped"] += 1
            return
        for message in encoded:
            session.send(message)

    def write_shared(self, shared: SharedMessage, volatile: bool) -> None:
        session = self.session
        if volatile and not session.writable:
            self.server.stats["volatile_dropped"] += 1
            return
        if session.can_take_frames:
            for frame, message in zip(shared.frames, shared.messages, strict=True):
                session.send_frame(frame, message)
        else:
            for message in shared.messages:
                session.send(message)

    def close(self, reason: DisconnectReason) -> None:
        self.session.close(reason)

    # ----------------------------------------------------------------- input

    def on_message(self, data: str | bytes) -> None:
        if self._busy is not None:
            if len(self._backlog) >= self.server.max_backlog:
                self._violation(f"more than {self.server.max_backlog} messages waiting for a handler")
                return
            self._backlog.append(data)
            return
        try:
            packet = self.decoder.feed(data)
        except SocketIOProtocolError as exc:
            self._violation(f"undecodable packet: {exc}")
            return
        if packet is None:
            return  # waiting for binary attachments
        ptype = packet.type
        socket = self.sockets.get(packet.nsp)
        if ptype is EVENT:
            if socket is None or not socket.connected:
                self._violation(f"EVENT for namespace {packet.nsp!r}, which is not connected")
            else:
                socket.namespace.dispatch_event(socket, packet)
        elif ptype is ACK:
            if socket is None or not socket.connected:
                self._violation(f"ACK for namespace {packet.nsp!r}, which is not connected")
            else:
                socket._on_ack(packet)
        elif ptype is CONNECT:
            if socket is not None:
                self._violation(f"duplicate CONNECT for namespace {packet.nsp!r}")
            else:
                self.server.connect_namespace(self, packet)
        elif ptype is DISCONNECT:
            if socket is None:
                self._violation(f"DISCONNECT for namespace {packet.nsp!r}, which is not connected")
            else:
                socket.closed(DisconnectReason.CLIENT_DISCONNECT)
        else:
            self._violation(f"packet type {ptype.name} is not allowed from a client")

    def _violation(self, reason: str) -> None:
        if len(reason) > 300:  # parts of it are the client's: keep the log line bounded
            reason = reason[:300] + f"... ({len(reason)} chars)"
        self.server.stats["parse_errors"] += 1
        log.warning("client %s from %s: %s; closing the connection",
                    self.session.sid, self.session.environ.get("REMOTE_ADDR", "?"), reason)
        for socket in list(self.sockets.values()):
            socket.closed(DisconnectReason.PARSE_ERROR)
        self.session.close(DisconnectReason.PARSE_ERROR, ws_code=1002)

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        self.write(self.server.parser.encode(connect_error_packet(message, data, nsp)), False)

    def on_close(self, reason: DisconnectReason) -> None:
        if self.connect_timer is not None:
            self.connect_timer.cancel()
            self.connect_timer = None
        for socket in list(self.sockets.values()):
            socket.closed(reason)
        self.decoder.reset()
        self._backlog.clear()

