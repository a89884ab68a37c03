"""An asyncio WebSocket client: aiohttp carries the opening handshake's HTTP request and response,
:mod:`sioserver.proto.websocket` makes and checks the handshake (the key, Sec-WebSocket-Accept, the
permessage-deflate offer and the server's answer to it) and speaks RFC 6455 / RFC 7692 on the connection
afterwards: client and server share one implementation of the protocol.

::

    async with aiohttp.ClientSession() as session:
        ws = await connect("ws://127.0.0.1:8000/echo", session=session)
        await ws.send("hello")
        print(await ws.recv())
        await ws.close()

Taking the connection over from aiohttp
---------------------------------------
The handshake is an ordinary ``session.request("GET", ..., read_until_eof=False)`` with the upgrade
headers, so proxies, TLS, cookies, default headers and the connector's limits are aiohttp's. When the
101 arrives, aiohttp's response parser stops and keeps every byte that follows the headers (frames
the server sent right behind its 101, often in the same segment) as the protocol's *tail*. The
documented-by-use hook that aiohttp's own ``ws_connect`` uses to hand the connection over is
``ResponseHandler.set_parser(parser, payload)``: from then on every ``data_received`` goes to
``parser.feed_data(data)`` - the tail first - and ``connection_lost`` to ``parser.feed_eof()``. We
register a small adapter there that feeds our :class:`~sioserver.proto.websocket.Connection`
(``client=True``: it masks what we send and refuses masked frames) and write frames with
``transport.write``.

Why that hook rather than ``transport.set_protocol()`` with a protocol of our own: the tail would
have to be fished out of the ResponseHandler's private buffer (with a race against bytes arriving
before the swap), and the connector tracks the connection by its ResponseHandler: it closes it on
``session.close()`` and waits for that protocol's ``connection_lost``, which would never come after
a swap, so closing the session would hang. With ``set_parser`` aiohttp keeps owning the socket's
life cycle (``response.close()`` releases the connector slot and closes the transport) and we own
the bytes. Read back-pressure pauses the transport (public asyncio API); write back-pressure waits
on the protocol's drain helper, as aiohttp's own WebSocket writer does. The hook's contract
(``feed_data`` returns a ``(bool, bytes)`` pair, ``feed_eof``, ``set_exception``) has been stable
across aiohttp 3.x; a test checks it against the installed version.

Closing follows section 7: we answer a Close frame with one (the proto core makes it), then wait up
to ``close_timeout`` for the server to close TCP first (section 7.1.1), and close it ourselves after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from yarl import URL

from sioserver.exceptions import HandshakeError
from sioserver.proto.websocket import (
    Close,
    CloseCode,
    Connection,
    DeflateOffer,
    Ping,
    Pong,
    State,
    client_key,
    client_request_headers,
    validate_handshake_response,
)

from .exceptions import WebSocketClosed, WebSocketHandshakeError

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "DeflateOffer", "WebSocket", "connect"]

log = logging.getLogger("sioclient.websocket")

#: Messages larger than this (after inflation) fail the connection with 1009 (Node's ``ws`` default).
DEFAULT_MAX_MESSAGE_SIZE = 100 * 2**20

class _Takeover:
    """What ``ResponseHandler.set_parser`` expects as parser *and* payload: it receives every byte the
    server sends after its 101 (``feed_data``) and the end of the connection (``feed_eof``,
    ``set_exception``)."""

    __slots__ = ("_eof", "_ws")

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._eof = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        try:
            self._ws._on_data(data)
        except Exception:  # never into aiohttp's data_received: fail this connection instead
            log.exception("WebSocket input handler failed")
            self._ws._abort(CloseCode.INTERNAL_ERROR, "internal error")
        return False, b""

    def feed_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._ws._on_lost()

    def set_exception(self, exc: BaseException, exc_cause: BaseException | None = None) -> None:
        self.feed_eof()

    def is_eof(self) -> bool:
        return self._eof


class WebSocket:
    """One open client WebSocket. Use :func:`connect` to make one.

    ``recv()`` returns text messages as ``str`` and binary ones as ``bytes``; once the connection is
    closed it raises :class:`~sioclient.exceptions.WebSocketClosed` (after the messages that arrived
    before). Pings are answered and the closing handshake is completed without anyone reading.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        protocol: ResponseHandler,
        transport: asyncio.Transport,
        connection: Connection,
        *,
        close_timeout: float,
        read_limit: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._response = response
        self._protocol = protocol
        self._transport = transport
        self._conn = connection
        self.close_timeout = close_timeout
        self._read_limit = read_limit
        self._inbox: deque[str | bytes] = deque()
        self._inbox_bytes = 0
        self._reading_paused = False
        self._recv_waiter: asyncio.Future[None] | None = None
        self._close_sent = False
        self._input_closed = asyncio.Event()  # a Close frame arrived, we failed the input, or EOF
        self._lost = asyncio.Event()  # the TCP connection is gone
        self._released = False
        self._finisher: asyncio.Task[None] | None = None
        self._pings: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self._pending_close: Close | None = None  # a Close event behind unread messages
        self._pending_timer: asyncio.TimerHandle | None = None
        self.close_code: int | None = None  # set once the input is closed
        self.close_reason = ""
        self.protocol_error: Exception | None = None  # the server broke the protocol

    @property
    def deflate(self) -> bool:
        """Whether permessage-deflate was negotiated."""
        return self._conn._deflate is not None

    @property
    def closed(self) -> bool:
        return self._input_closed.is_set()

    @property
    def response_headers(self) -> Mapping[str, str]:
        return self._response.headers

    # -- input (called by _Takeover from aiohttp's data_received) -----------------------------------
    def _on_data(self, data: bytes) -> None:
        if self._input_closed.is_set():
            return
        for event in self._conn.receive_data(data):
            if isinstance(event, str | bytes):
                self._inbox.append(event)
                self._inbox_bytes += len(event)
                self._wake()
            elif isinstance(event, Ping):
                if not self._close_sent:
                    self._write(event.reply)
            elif isinstance(event, Pong):
                self._on_pong(event.data)
            elif isinstance(event, Close):
                if self._inbox:
                    # Messages that came before the Close frame (or the violation) keep their place:
                    # the Close is handled when the reader asks for more than them (or close_timeout
                    # later), so an echo of the last message still goes out before our Close frame.
                    self._pending_close = event
                    self._pending_timer = self._loop.call_later(self.close_timeout, self._handle_pending_close)
                else:
                    self._on_close(event)
                return
        if self._inbox_bytes > self._read_limit and not self._reading_paused:
            self._reading_paused = True
            with contextlib.suppress(RuntimeError, NotImplementedError, AttributeError):
                self._transport.pause_reading()

    def _handle_pending_close(self) -> None:
        event, self._pending_close = self._pending_close, None
        if self._pending_timer is not None:
            self._pending_timer.cancel()
            self._pending_timer = None
        if event is not None:
            self._on_close(event)

    def _on_close(self, event: Close) -> None:
        reply = self._conn.close_reply()
        if reply:
            self._close_sent = True
            self._write(reply)
        if event.error is not None:
            self.protocol_error = event.error
            log.debug("failing the WebSocket: %s", event.error)
        self._set_closed(event.code, event.reason)
        # Section 7.1.1: the server closes TCP first; give it close_timeout to do so.
        if self._finisher is None:
            self._finisher = self._loop.create_task(self._finish())

    def _on_lost(self) -> None:
        self._lost.set()
        self._handle_pending_close()
        self._set_closed(CloseCode.ABNORMAL_CLOSURE, "connection lost")
        self._release()

    def _on_pong(self, data: bytes) -> None:
        # A pong answers the ping with the same data and every ping sent before it (section 5.5.3).
        while self._pings:
            sent, future = self._pings.popleft()
            if not future.done():
                future.set_result(None)
            if sent == data:
                break

    def _set_closed(self, code: int, reason: str) -> None:
        if self._input_closed.is_set():
            return
        self.close_code, self.close_reason = code, reason
        self._input_closed.set()
        self._wake()
        for _, future in self._pings:
            if not future.done():
                future.set_exception(WebSocketClosed(code, reason))
        self._pings.clear()

    def _wake(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- output ----------------------------------------------------------------------------------
    def _write(self, frame: bytes) -> None:
        if frame and not self._transport.is_closing():
            self._transport.write(frame)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self._protocol.writing_paused:
            try:
                await self._protocol._drain_helper()  # aiohttp's WebSocketWriter waits on the same helper
            except (ConnectionError, aiohttp.ClientConnectionError):
                raise WebSocketClosed(self.close_code or CloseCode.ABNORMAL_CLOSURE, "connection lost") from None

    def _check_open(self) -> None:
        if self._close_sent or self._input_closed.is_set() or self._transport.is_closing():
            raise WebSocketClosed(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)

    async def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send one message: ``str`` as text, bytes-like as binary. Waits while the transport's write
        buffer is over its high-water mark."""
        self._check_open()
        frame = self._conn.send_text(data) if isinstance(data, str) else self._conn.send_binary(bytes(data))
        self._write(frame)
        await self.drain()

    def send_nowait(self, data: str | bytes) -> None:
        """Queue one message on the transport without waiting for its buffer to drain."""
        self._check_open()
        self._write(self._conn.send_text(data) if isinstance(data, str) else self._conn.send_binary(data))

    async def ping(self, data: bytes = b"") -> asyncio.Future[None]:
        """Send a Ping; the returned future completes when its Pong arrives."""
        self._check_open()
        future: asyncio.Future[None] = self._loop.create_future()
        self._pings.append((data, future))
        self._write(self._conn.send_ping(data))
        await self.drain()
        return future

    async def recv(self) -> str | bytes:
        """The next message; raises WebSocketClosed once the connection is closed and drained."""
        while not self._inbox:
            if self._pending_close is not None:
                self._handle_pending_close()
            if self._input_closed.is_set():
                raise WebSocketClosed(self.close_code or CloseCode.ABNORMAL_CLOSURE, self.close_reason)
            waiter = self._recv_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None
        message = self._inbox.popleft()
        self._inbox_bytes -= len(message)
        if self._reading_paused and self._inbox_bytes <= self._read_limit // 2:
            self._reading_paused = False
            with contextlib.suppress(RuntimeError, NotImplementedError, AttributeError):
                self._transport.resume_reading()
        return message

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.recv()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    # -- closing -----------------------------------------------------------------------------------
    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """The closing handshake (section 7.1.2): send a Close frame, wait up to ``close_timeout`` for
        the server's, then for it to close TCP; close it ourselves after that. Never raises for a
        connection that is already gone."""
        self._handle_pending_close()
        if not self._close_sent and not self._transport.is_closing():
            frame = self._conn.send_close(code, reason)
            self._close_sent = True
            self._write(frame)
        if self._finisher is None:
            self._finisher = self._loop.create_task(self._finish())
        await asyncio.shield(self._finisher)

    async def _finish(self) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):
                await self._input_closed.wait()
                await self._lost.wait()
        except TimeoutError:
            pass
        finally:
            self._release()

    def _abort(self, code: int, reason: str) -> None:
        """Drop the connection at once (no closing handshake)."""
        self._set_closed(code, reason)
        with contextlib.suppress(Exception):
            self._transport.abort()
        self._release()

    def abort(self) -> None:
        self._abort(CloseCode.ABNORMAL_CLOSURE, "aborted")

    def _release(self) -> None:
        """Give the connection back to aiohttp, which closes it (it is never reused after an upgrade)."""
        if not self._released:
            self._released = True
            self._response.close()

    async def wait_closed(self) -> None:
        """Until the TCP connection is gone."""
        await self._lost.wait()

    @property
    def state(self) -> State:
        return self._conn.state


def _http_url(url: str | URL) -> URL:
    u = URL(url)
    scheme = {"ws": "http", "wss": "https"}.get(u.scheme, u.scheme)
    if scheme not in ("http", "https"):
        raise ValueError(f"not a WebSocket URL: {url}")
    return u.with_scheme(scheme)


async def connect(
    url: str | URL,
    *,
    session: aiohttp.ClientSession,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    compression: DeflateOffer | bool = True,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_fragments: int = 1 << 20,
    open_timeout: float | None = 10.0,
    close_timeout: float = 5.0,
    read_limit: int = 1 << 20,
    ssl: Any = True,
) -> WebSocket:
    """Open a WebSocket (``ws://``, ``wss://``, or the same with ``http(s)://``) through ``session``.

    ``max_message_size`` bytes (after inflation) or ``max_fragments`` frames per message at most, else
    the connection fails with 1009. ``compression``: True offers permessage-deflate with
    :class:`DeflateOffer` defaults, a
    :class:`DeflateOffer` offers that, False offers nothing. ``read_limit``: bytes of unread messages
    after which reading pauses. Raises :class:`~sioclient.exceptions.WebSocketHandshakeError` when the
    server does not switch protocols (its status and body are on the exception), ``aiohttp``'s
    errors and TimeoutError as they come.
    """
    offer = DeflateOffer() if compression is True else (compression or None)
    request_headers: list[tuple[str, str]] = []
    if headers is not None:
        request_headers.extend(headers.items() if isinstance(headers, Mapping) else headers)
    key = client_key()
    request_headers += client_request_headers(key, offer)
    timeout = aiohttp.ClientTimeout(total=open_timeout)
    response = await session.request(
        "GET",
        _http_url(url),
        headers=request_headers,
        read_until_eof=False,
        allow_redirects=False,
        timeout=timeout,
        ssl=ssl,
    )
    try:
        if response.status != 101:
            body = b""
            with contextlib.suppress(Exception):
                body = await response.content.read(65536)
            raise WebSocketHandshakeError(
                f"WebSocket handshake refused: HTTP {response.status} {body[:200]!r}", response.status, body
            )
        try:
            deflate = validate_handshake_response(key, response.headers, offer)
        except HandshakeError as exc:
            raise WebSocketHandshakeError(exc.reason, 101) from None
        conn = response.connection
        protocol = conn.protocol if conn is not None else None
        transport = conn.transport if conn is not None else None
        if protocol is None or transport is None:
            raise WebSocketHandshakeError("connection closed right after the 101", 101)
        protocol.read_timeout = None  # our own heartbeat decides when a silent server is dead
        ws = WebSocket(
            response,
            protocol,
            transport,
            Connection(client=True, deflate=deflate, max_message_size=max_message_size, max_fragments=max_fragments),
            close_timeout=close_timeout,
            read_limit=read_limit,
        )
        takeover = _Takeover(ws)
        protocol.set_parser(takeover, takeover)  # feeds the tail at once, then every later byte
        if not protocol.is_connected() and not takeover.is_eof():
            takeover.feed_eof()
        return ws
    except BaseException:
        response.close()
        raise
