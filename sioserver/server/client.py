"""A client's connection: one per Engine.IO session, speaking Socket.IO.

A :class:`Client` decodes what the Engine.IO session delivers and routes each packet to the
:class:`~.socket.Socket` of its namespace. Protocol violations close the whole Engine.IO connection
with one log line; a CONNECT for an unknown namespace only earns a CONNECT_ERROR.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

from ..engine.session import DisconnectReason, Session
from ..exceptions import SocketIOProtocolError
from ..proto.socketio import ACK, CONNECT, DISCONNECT, EVENT, Encoded, Packet, connect_error_packet
from .adapter import SharedMessage

if TYPE_CHECKING:
    from .server import AsyncServer
    from .socket import Socket

__all__ = ["Client"]

log = logging.getLogger("sioserver.server")


class Client:
    """One Engine.IO session speaking Socket.IO: its decoder and its namespace sockets."""

    __slots__ = ("_backlog", "_busy", "connect_timer", "decoder", "server", "session", "sockets")

    #: the Socket.IO protocol revision (4: :class:`~.client_v2.V2Client`, socket.io-client 2.x)
    protocol = 5

    def __init__(self, server: AsyncServer, session: Session) -> None:
        self.server = server
        self.session = session
        self.decoder = server.parser.decoder()
        self.sockets: dict[str, Socket] = {}
        self.connect_timer: asyncio.TimerHandle | None = None
        self._busy: asyncio.Task[Any] | None = None
        self._backlog: deque[str | bytes] | None = None  # created on first use (lean idle connections)
        self._arm_connect_timer()

    def wait_for(self, task: asyncio.Task[Any]) -> None:
        """``async_handlers=False``: hold this client's next messages until ``task`` is done."""
        self._busy = task
        task.add_done_callback(self._resume)

    def _resume(self, _: asyncio.Task[Any]) -> None:
        self._busy = None
        backlog = self._backlog
        while backlog and self._busy is None and not self.session.closed:
            self.on_message(backlog.popleft(), True)
        if not backlog:
            self._backlog = None

    def _arm_connect_timer(self) -> None:
        if self.server.connect_timeout:
            self.connect_timer = asyncio.get_running_loop().call_later(
                self.server.connect_timeout, self._connect_timed_out
            )

    def _connect_timed_out(self) -> None:
        self.connect_timer = None
        if not self.sockets:
            log.info("client %s: no namespace connected within connect_timeout=%ss; closing it",
                     self.session.sid, self.server.connect_timeout,
                     extra={"sid": self.session.sid, "reason": "connect timeout"})
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
        tap = self.server.tap_sent
        for message in encoded:
            if session.send(message) and tap is not None:
                tap(message)

    def write_shared(self, shared: SharedMessage, volatile: bool) -> None:
        session = self.session
        # the adapter reports a broadcast's packets once, for all its recipients (Observer.message_sent)
        session.send_shared(shared.packets, volatile)  # the engine decides eligibility, once

    def close(self, reason: DisconnectReason) -> None:
        self.session.close(reason)

    # ----------------------------------------------------------------- input

    def on_message(self, data: str | bytes, replayed: bool = False) -> None:
        """A message from the Engine.IO session (this client is the session's receiver); ``replayed``: one
        held while a handler ran (``async_handlers=False``), seen by the tap when it arrived."""
        if not replayed:
            tap = self.server.tap_received
            if tap is not None:
                tap(data)
        if self._busy is not None:
            backlog = self._backlog
            if backlog is None:
                backlog = self._backlog = deque()
            if len(backlog) >= self.server.max_backlog:
                self._violation(f"more than {self.server.max_backlog} messages waiting for a handler")
                return
            backlog.append(data)
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
                socket.on_ack(packet)
        elif ptype is CONNECT:
            if socket is not None:
                self._violation(f"duplicate CONNECT for namespace {packet.nsp!r}")
            else:
                self.connect(packet)
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
                    self.session.sid, self.session.environ.get("REMOTE_ADDR", "?"), reason,
                    extra={"sid": self.session.sid, "reason": DisconnectReason.PARSE_ERROR.value})
        for socket in list(self.sockets.values()):
            socket.closed(DisconnectReason.PARSE_ERROR)
        self.session.close(DisconnectReason.PARSE_ERROR, ws_code=1002)

    def connect(self, packet: Packet) -> None:
        """A CONNECT from the client, for a namespace it is not in."""
        self.server.connect_namespace(self, packet)

    def socket_id(self, nsp: str) -> str:
        """The id of this client's socket in ``nsp``: fresh per namespace, never the Engine.IO sid."""
        return secrets.token_urlsafe(15)

    def connect_reply(self, socket: Socket) -> Any:
        """The payload of the CONNECT reply."""
        return {"sid": socket.sid} if socket.pid is None else {"sid": socket.sid, "pid": socket.pid}

    def refuse(self, nsp: str, message: str, data: Any = None) -> None:
        """CONNECT_ERROR for a connection a middleware or connect handler refused."""
        self.write(self.server.parser.encode(connect_error_packet(message, data, nsp)), False)

    def refuse_namespace(self, nsp: str) -> None:
        """CONNECT_ERROR for a namespace the server does not serve."""
        self.write(self.server.parser.encode(connect_error_packet("Invalid namespace", None, nsp)), False)

    def on_close(self, reason: DisconnectReason) -> None:
        if self.connect_timer is not None:
            self.connect_timer.cancel()
            self.connect_timer = None
        for socket in list(self.sockets.values()):
            socket.closed(reason)
        self.decoder.reset()
        self._backlog = None
        observer = self.server.observer
        if observer is not None:
            observer.session_closed(self.session, reason)
