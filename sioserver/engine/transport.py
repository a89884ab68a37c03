"""The WebSocket-side transport an Engine.IO session drives, and the shared message it writes.

A session does not care who frames its WebSocket messages. sioserver's own
:class:`~sioserver.engine.websocket.WebSocketConnection` frames them itself (and can write a frame that was
encoded once for many connections); a front end whose server frames WebSocket messages itself (an ASGI
server, for example) gives the session an object of its own that satisfies :class:`WebSocketTransport`.

The contract, for whoever implements a transport:

* ``send(data)`` sends one message (``str`` as a text frame, ``bytes`` as a binary frame) and never
  blocks or raises once the transport is closed (it is ignored then).
* ``send_shared(packet)`` sends :attr:`SharedPacket.message`: a transport that frames messages itself
  writes the pre-encoded :attr:`SharedPacket.frame` (the same bytes object for every connection); one that
  cannot (per-message compression, a server that does the framing) sends ``packet.message`` as
  ``send`` would.
* ``send_batch(items)`` sends several of these in order (what waited in the outbox); a transport that
  frames messages itself writes them with one write.
* ``writable`` is False while the transport holds more than its high-water mark of unsent bytes, and
  the transport calls ``handler.on_ws_drain(transport)`` once it is back under its low-water mark: the
  session feeds it from its outbox only while it is writable. ``buffered_amount`` is the number of bytes
  the transport holds, not yet given to the kernel (0 when it cannot tell).
* ``close(code, reason)`` starts the closing handshake (``code=None``: no status code); the transport calls
  ``handler.on_ws_close(transport, code, reason)`` exactly once however the connection ends (with the
  peer's code, the code we closed with, or 1006 when there was no closing handshake), and after that
  nothing more.
* ``handler.on_ws_message(transport, data)`` is called for each message, never before the call that
  created the transport has returned, and never after ``on_ws_close``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..proto.websocket import encode_message

__all__ = ["SharedPacket", "TransportHandler", "WebSocketTransport"]


class SharedPacket:
    """One Engine.IO MESSAGE for many sessions (a broadcast): its packet and its WebSocket frame are built
    once, on first use, and every session that owes it holds a reference to this object, not a copy."""

    __slots__ = ("_frame", "_message", "compress", "data", "size")

    def __init__(self, data: str | bytes, compress: bool = True) -> None:
        self.data = data
        #: False: never permessage-deflate, even on a compressing connection (Node's ``compress(false)``;
        #: an uncompressed frame is valid there too, RFC 7692 section 6)
        self.compress = compress
        #: the bytes this message counts for in a session's backlog (the length of its packet)
        self.size = len(data) + 1
        self._message: str | bytes | None = None
        self._frame: bytes | None = None

    @property
    def message(self) -> str | bytes:
        """The packet as a WebSocket message: ``"4" + data`` for text, the bytes themselves for binary."""
        message = self._message
        if message is None:
            data = self.data
            message = self._message = "4" + data if isinstance(data, str) else data
        return message

    @property
    def frame(self) -> bytes:
        """The packet as one unmasked, unfragmented, uncompressed WebSocket frame."""
        frame = self._frame
        if frame is None:
            frame = self._frame = encode_message(self.message)
        return frame

    def __repr__(self) -> str:
        return f"<SharedPacket {self.size} B>"


class WebSocketTransport(Protocol):
    """What a session needs from its WebSocket (see the module docstring for the contract)."""

    @property
    def closed(self) -> bool: ...

    @property
    def writable(self) -> bool: ...

    @property
    def buffered_amount(self) -> int: ...

    def send(self, data: str | bytes) -> None: ...

    def send_shared(self, packet: SharedPacket) -> None: ...

    def send_batch(self, items: Sequence[SharedPacket | str | bytes]) -> None:
        """Send these messages in order (a transport that frames them itself may write them at once)."""

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Start the closing handshake; ``code=None`` sends a Close frame without a status code (the peer
        reads 1005), as the reference server closes a session; a transport that cannot sends 1000."""


class TransportHandler(Protocol):
    """What a transport reports to (the session, or whoever owns the connection)."""

    def on_ws_message(self, conn: WebSocketTransport, data: str | bytes) -> None: ...

    def on_ws_close(self, conn: WebSocketTransport, code: int, reason: str) -> None: ...

    def on_ws_drain(self, conn: WebSocketTransport) -> None: ...
