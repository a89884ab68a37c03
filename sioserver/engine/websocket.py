"""A WebSocket connection on asyncio: a thin :class:`asyncio.Protocol` over the sans-I/O core.

Bytes from the transport go straight into :class:`sioserver.proto.websocket.Connection`; the events
come back to a :class:`WebSocketHandler` as plain calls, and frames are written straight to the
transport. There is no task per connection and none per message: the only per-connection objects are
the protocol, the core and, while closing, one timer handle.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from ..exceptions import ConfigurationError
from ..proto.websocket import (
    Close,
    CloseCode,
    Connection,
    DeflateConfig,
    DeflateParams,
    Ping,
    State,
)
from .transport import SharedPacket

__all__ = ["WebSocketConfig", "WebSocketConnection", "WebSocketHandler"]

logger = logging.getLogger("sioserver.websocket")


class _Cork(threading.local):
    """Write coalescing after a burst (per thread: one event loop each).

    When a read completes several messages (a client that sent a burst), every write made until the
    end of the current turn of the event loop - by the handlers called now and by the tasks they
    start, which run in that turn - is held per connection, and goes out as one ``transport.write``
    per connection when the turn is over, or as soon as ``_CORK_LIMIT`` frames are held: a burst of
    200 broadcasts to 1000 clients costs about 13,000 writes instead of 200,000, and the first of
    them waits for at most ``_CORK_LIMIT`` frames of work. A read with a single message, outside
    such a turn, writes straight through. Held bytes are not in
    :attr:`WebSocketConnection.buffered_amount` until they are written: the backlog bound can be passed
    by at most what one turn (or ``_CORK_LIMIT`` frames) writes.
    """

    def __init__(self) -> None:
        self.active = False
        self.held: list[WebSocketConnection] = []
        self.frames = 0

    def flush(self) -> None:
        held = self.held
        self.held = []
        self.frames = 0
        for conn in held:
            conn._flush_held()

    def release(self) -> None:
        self.active = False
        self.flush()


_cork = _Cork()
_CORK_LIMIT = 16_384


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    """Limits and options of WebSocket connections.

    ``max_message_size`` bounds a received message (after inflation) and ``max_fragments`` the frames
    it may take; beyond either the connection closes with 1009. ``compression`` enables
    permessage-deflate (RFC 7692) as configured by ``deflate``; messages shorter than
    ``compression_threshold`` bytes go uncompressed. ``close_timeout`` (seconds) bounds the wait for the
    peer's Close frame and for the last bytes to drain before the transport is aborted.
    ``write_buffer_high``/``write_buffer_low`` are the transport's flow-control marks (see
    :attr:`WebSocketConnection.writable`).
    """

    max_message_size: int = 1_000_000
    max_fragments: int = 4096
    compression: bool = False
    compression_threshold: int = 1024
    deflate: DeflateConfig = field(default_factory=DeflateConfig)
    close_timeout: float = 5.0
    write_buffer_high: int = 64 * 1024
    write_buffer_low: int = 16 * 1024

    def __post_init__(self) -> None:
        if self.max_message_size < 1 or self.max_fragments < 1:
            raise ConfigurationError("max_message_size and max_fragments must be positive")
        if self.compression_threshold < 0 or self.close_timeout <= 0:
            raise ConfigurationError("compression_threshold must be >= 0 and close_timeout > 0")
        if not 0 <= self.write_buffer_low <= self.write_buffer_high:
            raise ConfigurationError("need 0 <= write_buffer_low <= write_buffer_high")


class WebSocketHandler(Protocol):
    """Receives what happens on connections. Callbacks run in the event loop: keep them short."""

    def on_ws_message(self, conn: WebSocketConnection, data: str | bytes) -> None: ...

    def on_ws_close(self, conn: WebSocketConnection, code: int, reason: str) -> None:
        """Called exactly once per connection, however it ends. ``code`` is the peer's close code,
        the one we failed the connection with (1002, 1007, 1009, 1011), or 1006 when it ended without a
        closing handshake."""

    def on_ws_drain(self, conn: WebSocketConnection) -> None:
        """The transport's write buffer went back under ``write_buffer_low``: :attr:`writable` is True."""


class WebSocketConnection(asyncio.Protocol):
    """One server-side WebSocket connection, created after the opening handshake."""

    __slots__ = (
        "_closed",
        "_config",
        "_core",
        "_drain_waiter",
        "_handler",
        "_held",
        "_lost",
        "_out",
        "_pong",
        "_timer",
        "_transport",
        "remote_address",
        "writable",
    )

    def __init__(
        self, handler: WebSocketHandler, config: WebSocketConfig, deflate: DeflateParams | None = None
    ) -> None:
        self._handler = handler
        self._config = config
        self._core = Connection(
            deflate=deflate,
            max_message_size=config.max_message_size,
            max_fragments=config.max_fragments,
            compression_threshold=config.compression_threshold,
        )
        self._transport: asyncio.Transport | None = None
        self._closed = False  # on_ws_close was called: nothing more goes in or out
        self._lost = False  # connection_lost was called
        #: False while the transport's write buffer is above ``write_buffer_high``
        self.writable = True
        self._drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._held: bytearray | None = None  # input that arrived before start() (see attach)
        self._pong: bytes | None = None  # the latest pong, held while writes are paused
        self._out: list[bytes] | None = None  # output held while corked (see _Cork)
        self.remote_address: Any = None

    # -- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = transport = cast(asyncio.Transport, transport)
        self.remote_address = transport.get_extra_info("peername")
        transport.set_write_buffer_limits(self._config.write_buffer_high, self._config.write_buffer_low)

    def attach(self, transport: asyncio.Transport, initial_data: bytes = b"", *, writable: bool = True) -> None:
        """Take over an established transport (after ``transport.set_protocol(self)``).

        ``initial_data`` is what the peer sent behind its handshake. It, and whatever arrives next, is
        held until the next turn of the event loop, so that no callback runs before the caller has the
        connection in hand.
        """
        self.connection_made(transport)
        self.writable = writable
        self._held = bytearray(initial_data)
        asyncio.get_running_loop().call_soon(self._release)
        if not transport.is_reading():
            transport.resume_reading()

    def _release(self) -> None:
        held = self._held
        self._held = None
        if held and not self._closed:
            self.data_received(bytes(held))

    def data_received(self, data: bytes) -> None:
        if self._held is not None:
            self._held += data
            return
        events = self._core.receive_data(data)
        if not events:
            return
        if len(events) == 1:  # the common case: one message, handed on without _dispatch's loop
            event = events[0]
            if event.__class__ is str and not self._closed:
                try:
                    self._handler.on_ws_message(self, event)
                except Exception:
                    logger.exception("on_ws_message failed for %s; closing with 1011", self.remote_address)
                    self.close(CloseCode.INTERNAL_ERROR)
                return
            self._dispatch(events)
        elif not _cork.active:
            _cork.active = True
            try:
                self._dispatch(events)
            finally:
                try:  # after the handlers' tasks, which are already scheduled
                    asyncio.get_running_loop().call_soon(_cork.release)
                except RuntimeError:  # no loop running (a caller driving the protocol by hand)
                    _cork.release()
        else:
            self._dispatch(events)

    def _dispatch(self, events: list[Any]) -> None:
        handler = self._handler
        for event in events:
            if self._closed:
                return
            if isinstance(event, (str, bytes)):
                try:
                    handler.on_ws_message(self, event)
                except Exception:
                    logger.exception("on_ws_message failed for %s; closing with 1011", self.remote_address)
                    self.close(CloseCode.INTERNAL_ERROR)
            elif isinstance(event, Ping):
                if self.writable:
                    self._write(event.reply)
                else:
                    # RFC 6455 5.5.3: answering only the latest ping is allowed. A peer that pings
                    # without reading cannot pile pongs up in our memory.
                    self._pong = event.reply
            elif isinstance(event, Close):
                self._receive_close(event)

    def _receive_close(self, event: Close) -> None:
        reply = self._core.close_reply()
        if reply:
            self._write(reply)
        if event.error is not None:
            logger.info(
                "WebSocket protocol violation from %s: %s (close code %d)",
                self.remote_address,
                event.error.reason,
                event.code,
            )
        self._finish(event.code, event.reason)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost follows (1006 unless we were done)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._held is not None:
            self._release()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_drain()
        self._finish(CloseCode.ABNORMAL_CLOSURE, "connection lost")

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        pong, self._pong = self._pong, None
        if pong is not None and not self._closed:
            self._write(pong)
        self._wake_drain()
        if not self._closed:
            try:
                self._handler.on_ws_drain(self)
            except Exception:
                logger.exception("on_ws_drain failed for %s; closing with 1011", self.remote_address)
                self.close(CloseCode.INTERNAL_ERROR)

    # -- API ---------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the connection is over (``on_ws_close`` was called)."""
        return self._closed

    @property
    def compressing(self) -> bool:
        """Whether :meth:`send` compresses large messages (permessage-deflate was negotiated).

        :meth:`send_frame` stays correct either way: an uncompressed message is valid on a connection
        that negotiated permessage-deflate (RFC 7692 section 6), only larger than it could be.
        """
        return self._core.compressing

    @property
    def buffered_amount(self) -> int:
        """Bytes in the transport's write buffer, not yet handed to the kernel."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None and not self._lost else 0

    async def drain(self) -> None:
        """Wait until the write buffer is below ``write_buffer_low`` (or the connection is over)."""
        if self.writable or self._lost:
            return
        waiter = self._drain_waiter
        if waiter is None:
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(waiter)

    def send(self, data: str | bytes) -> None:
        """Send a message: ``str`` as text, bytes as binary. Ignored once closing or closed."""
        if self._closed:
            return
        core = self._core
        frame = core.send_text(data) if isinstance(data, str) else core.send_binary(data)
        if frame:
            transport = self._transport
            if transport is not None and not self._lost and not _cork.active:  # (_write, uncorked)
                transport.write(frame)
            else:
                self._write(frame)

    def send_frame(self, frame: bytes) -> None:
        """Send a message frame encoded beforehand, e.g. by :func:`~sioserver.proto.websocket.encode_message`
        once for many connections. It must be a complete, unfragmented, unmasked frame."""
        if not self._closed and self._core.state is State.OPEN:
            self._write(frame)

    def send_shared(self, packet: SharedPacket) -> None:
        """Send a message shared by many connections: its frame, encoded once, when this connection does
        not compress; otherwise the message, compressed as :meth:`send` does."""
        if self._closed or self._core.state is not State.OPEN:
            return
        if self._core.compressing and packet.compress:
            self.send(packet.message)
        else:
            self._write(packet.frame)

    def send_batch(self, items: Sequence[SharedPacket | str | bytes]) -> None:
        """Send several messages in one write (what waited in a session's outbox): shared packets as
        their frames (or compressed, as :meth:`send_shared`), ``str`` as text, bytes as binary."""
        if self._closed or self._core.state is not State.OPEN:
            return
        core = self._core
        compressing = core.compressing
        frames = []
        for item in items:
            if isinstance(item, SharedPacket) and not (compressing and item.compress):
                frames.append(item.frame)
                continue
            message = item.message if isinstance(item, SharedPacket) else item
            frames.append(core.send_text(message) if isinstance(message, str) else core.send_binary(message))
        if frames:
            self._write(frames[0] if len(frames) == 1 else b"".join(frames))

    def close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (``code=None``: a Close frame without a status code, which the
        peer reads as 1005). If the peer does not answer within ``close_timeout`` the transport is
        aborted and ``on_ws_close`` reports 1006."""
        if self._closed:
            return
        frame = self._core.send_close(code, reason)
        if not frame:
            return
        self._write(frame)
        self._timer = asyncio.get_running_loop().call_later(self._config.close_timeout, self._close_timed_out)

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        if self._transport is not None and not self._lost:
            self._transport.abort()
        self._finish(CloseCode.ABNORMAL_CLOSURE, "aborted")

    # -- internals ---------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not self._lost:
            if _cork.active:
                out = self._out
                if out is None:
                    self._out = [data]
                    _cork.held.append(self)
                else:
                    out.append(data)
                _cork.frames += 1
                if _cork.frames >= _CORK_LIMIT:
                    _cork.flush()
            else:
                transport.write(data)

    def _flush_held(self) -> None:
        out = self._out
        if out is None:
            return
        self._out = None
        transport = self._transport
        if transport is not None and not self._lost and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _close_timed_out(self) -> None:
        self._timer = None
        logger.info("WebSocket peer %s did not complete the closing handshake", self.remote_address)
        if self._transport is not None and not self._lost:
            self._transport.abort()
        self._finish(CloseCode.ABNORMAL_CLOSURE, "close timeout")

    def _finish(self, code: int, reason: str) -> None:
        """The connection is over: close the transport (servers close first, RFC 6455 section 7.1.1)
        and tell the handler, once."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush_held()
        transport = self._transport
        if transport is not None and not self._lost and not transport.is_closing():
            if transport.can_write_eof():
                # Half-close (FIN once the buffer is out) and read on until the peer's FIN: closing a
                # socket with unread input makes the kernel send RST, and a RST can destroy what the
                # peer has not read yet - our last messages and the Close frame.
                transport.write_eof()
            else:
                transport.close()
            # A peer that neither closes nor reads must not keep the connection forever.
            self._timer = asyncio.get_running_loop().call_later(self._config.close_timeout, transport.abort)
        try:
            self._handler.on_ws_close(self, int(code), reason)
        except Exception:
            logger.exception("on_ws_close failed for %s", self.remote_address)

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)
