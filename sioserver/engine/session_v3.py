"""Engine.IO v3 sessions (``allow_eio3=True``, as Node's ``allowEIO3``): socket.io-client 2.x and the clients
that still speak v3.

What differs from a v4 :class:`~sioserver.engine.session.Session`, and nothing else:

* the heartbeat runs the other way: the *client* sends ``2`` every ``pingInterval`` and the server answers
  ``3`` with the same data; the server sends no pings, and closes a session that sent no ping within
  ``pingInterval + pingTimeout`` (of the handshake, then of its last ping). A ``3`` from the client is a
  protocol error (the reference: "invalid heartbeat direction");
* long-polling bodies use the v3 payload format (:mod:`sioserver.engine.payload`);
* a binary MESSAGE on the WebSocket carries its type byte first (``b"\\x04" + data``): :class:`V3WebSocket`
  sits between the session and its WebSocket (or its upgrade probe) and adds or checks that byte, so the
  session's own paths (and the v4 hot paths) stay as they are.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from collections.abc import Sequence
from typing import Any

from ..exceptions import EngineIOProtocolError
from ..proto.engineio import Packet, PacketType
from ..proto.engineio_v3 import decode_ws_binary, encode_ws_binary
from .payload import V3_BASE64, V3_BINARY
from .session import DisconnectReason, Session, SessionContext
from .transport import SharedPacket, WebSocketTransport

__all__ = ["SessionV3", "V3WebSocket"]


class SessionV3(Session):
    """An Engine.IO v3 session. ``base64``: the client asked for ``b64=1`` (no XHR2 binary bodies)."""

    __slots__ = ()

    protocol = 3

    def __init__(self, ctx: SessionContext, sid: str, transport: str, environ: dict[str, Any],
                 base64: bool = False) -> None:
        super().__init__(ctx, sid, transport, environ)
        self.payload = V3_BASE64 if base64 else V3_BINARY

    @property
    def ping_deadline(self) -> float:
        """How long the client may go without a ping: the interval it was told, plus the timeout."""
        config = self._ctx.config
        return config.ping_interval + config.ping_grace + config.ping_timeout

    def start_heartbeat(self) -> None:
        if self.state == Session.OPEN:
            self._ctx.wheel.schedule(self, self.ping_deadline)

    def heartbeat_due(self) -> None:
        """Called by the wheel: no ping came within the deadline."""
        if self.state != Session.OPEN:
            return
        ctx = self._ctx
        ctx.logger.info("session %s: no ping within %ss; closing it", self.sid, self.ping_deadline,
                        extra={"sid": self.sid, "reason": DisconnectReason.PING_TIMEOUT.value})
        self.close(DisconnectReason.PING_TIMEOUT)

    def receive(self, packet: Packet) -> None:
        ptype = packet.type
        if ptype is PacketType.PING:
            data = packet.data
            self._enqueue("3" + data if isinstance(data, str) else "3", False)
            self.start_heartbeat()
        elif ptype is PacketType.PONG:
            self.protocol_error("pong from a v3 client (v3 clients send the pings)")
        else:
            super().receive(packet)


class V3WebSocket:
    """A v3 session's WebSocket: the transport the session writes to and the handler its connection reports
    to. Binary MESSAGEs get (and must carry) the type byte; everything else passes as it is. ``base64``
    (the client asked for ``b64=1``): binary MESSAGEs go both ways as ``b4`` + base64 in text frames."""

    __slots__ = ("base64", "conn", "session")

    def __init__(self, session: Session, base64: bool = False) -> None:
        self.session = session
        self.base64 = base64
        self.conn: WebSocketTransport | None = None

    def bind(self, conn: WebSocketTransport) -> V3WebSocket:
        self.conn = conn
        return self

    # TransportHandler: what the connection reports, passed on as this transport's
    def on_ws_message(self, conn: WebSocketTransport, data: str | bytes) -> None:
        if data.__class__ is not str or data[:2] == "b4":
            try:
                data = self._binary(data)
            except EngineIOProtocolError as exc:
                session = self.session
                if session.ws is self:
                    session.protocol_error(str(exc), DisconnectReason.PARSE_ERROR)
                else:
                    conn.close(None)
                return
        self.session.on_ws_message(self, data)

    @staticmethod
    def _binary(data: str | bytes) -> bytes:
        if isinstance(data, str):
            try:
                return b64decode(data[2:], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise EngineIOProtocolError("invalid base64 in binary packet") from exc
        return decode_ws_binary(data).data  # type: ignore[return-value]

    def on_ws_close(self, conn: WebSocketTransport, code: int, reason: str) -> None:
        self.session.on_ws_close(self, code, reason)

    def on_ws_drain(self, conn: WebSocketTransport) -> None:
        self.session.on_ws_drain(self)

    # WebSocketTransport
    def _conn(self) -> WebSocketTransport:
        assert self.conn is not None
        return self.conn

    @property
    def closed(self) -> bool:
        return self._conn().closed

    @property
    def writable(self) -> bool:
        return self._conn().writable

    @property
    def buffered_amount(self) -> int:
        return self._conn().buffered_amount

    def send(self, data: str | bytes) -> None:
        self._conn().send(data if isinstance(data, str) else self._frame(data))

    def _frame(self, data: bytes) -> str | bytes:
        return "b4" + b64encode(data).decode("ascii") if self.base64 else encode_ws_binary(data)

    def send_shared(self, packet: SharedPacket) -> None:
        data = packet.data
        if isinstance(data, str):
            self._conn().send_shared(packet)  # a text frame is the same in v3: the frame encoded once serves
        else:
            self._conn().send(self._frame(data))

    def send_batch(self, items: Sequence[SharedPacket | str | bytes]) -> None:
        self._conn().send_batch([self._item(item) for item in items])

    def _item(self, item: SharedPacket | str | bytes) -> SharedPacket | str | bytes:
        if isinstance(item, SharedPacket):
            data = item.data
            return item if isinstance(data, str) else self._frame(data)
        return item if isinstance(item, str) else self._frame(item)

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        self._conn().close(code, reason)

