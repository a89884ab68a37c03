"""One HTTP/1.1 connection: an :class:`asyncio.Protocol` over httptools (llhttp, Node's parser).

Theory of operation
-------------------
Bytes go straight into the parser; its callbacks build the request: ``on_url`` and ``on_header``
count against the limits of :class:`~.config.HttpConfig` (414, 431), ``on_headers_complete`` builds
an :class:`~.request.Http1Request` and decides how the body is read (its limit, inflating,
``Expect: 100-continue``), ``on_body`` accumulates it up to the limit (413) and
``on_message_complete`` queues the request. Requests are answered one at a time and in order
(pipelining); at most ``max_pipelined`` wait, beyond that the connection is not read.

Engine.IO requests carrying a ``sid`` (the polls and posts of an open session) are answered without
a coroutine where they can be (:func:`~sioserver.engine.fastpoll.answer_now`): a POST, its body read
whole, and a GET that finds packets waiting are answered at once; a GET that parks waits on a
:class:`~.request.ParkedGet`, which the session completes and which has the GET answered at the end
of that turn of the loop; a parked GET whose client goes away ends its session
(:meth:`~sioserver.engine.polling.Polling.abandon`). The rest of them run the engine's
``handle_request`` coroutine stepped by hand, without a task; if the client goes away meanwhile,
``CancelledError`` is thrown into the coroutine. Handshakes, which run user code (``allow_request``,
connect handlers), static files and the ASGI app run in tasks, so that ``asyncio.current_task()`` and
``asyncio.timeout()`` work in that code.

Deadlines (head, body, keep-alive idle, linger) are one float per connection, checked by one sweep
timer of the server for all its connections: no timer object per request.

A WebSocket upgrade hands the transport to sioserver's own
:class:`~sioserver.engine.websocket.WebSocketConnection` (``transport.set_protocol``), with the bytes
the client sent behind its handshake.

Every refusal is answered (400, 408, 413, 414, 417, 431), logged as one line and the connection is
closed; what the client still sends is read and dropped for ``linger`` seconds so that it sees the
answer rather than a reset.

This module is the reading half of the connection; the answering half (dispatch, the stepped engine
requests, the held writes, refusals and closing) is :class:`~.answering.Answering`, its base class.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, cast

import httptools

from ...engine.http import BodyTooLarge, HttpResponse, IncompleteBody
from ...engine.websocket import WebSocketConfig, WebSocketConnection, WebSocketHandler
from .answering import BODY, CONTINUE, HEAD, IDLE, INF, LINGER, NONE, Answering
from .request import Headers, Http1Request, ParkedGet, Refusal, Stop, add_field, origin_form, parse_query
from .websocket import accept_websocket

if TYPE_CHECKING:
    from .server import Http1Server

__all__ = ["HttpConnection"]

log = logging.getLogger("sioserver.http")

# the lower-case names of the header fields clients send most, as sent: one dict lookup instead of a
# decode and a lower() per field (a fixed table: names not in it take the general path)
_NAMES: dict[bytes, str] = {}
for _name in ("Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection", "Content-Type",
              "Content-Length", "Origin", "Referer", "Cookie", "Upgrade", "Sec-WebSocket-Key",
              "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Cache-Control", "Pragma", "Transfer-Encoding",
              "Content-Encoding", "Expect", "X-Forwarded-For"):
    for _form in (_name, _name.lower()):
        _NAMES[_form.encode()] = _name.lower()
del _name, _form
_METHODS = {m.encode(): m for m in ("GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", "PATCH")}


class HttpConnection(Answering, asyncio.Protocol):
    __slots__ = (
        "_body_limit", "_body_parts", "_body_size", "_fields", "_head_counted", "_head_raw", "_headers",
        "_inflated", "_inflater", "_parser", "_url", "_write_paused", "_ws", "last_query", "local_host",
        "local_port",
    )

    def __init__(self, server: Http1Server) -> None:
        self.server = server
        self._config = server.config
        self.transport: asyncio.Transport | None = None
        self._parser: Any = httptools.HttpRequestParser(self)
        self.peer_host = ""
        self.peer_port = 0
        self.local_host = ""
        self.local_port = 0
        self.lost = False
        self.closing = False  # answer what is in hand, then close
        self.upgraded = False
        self.deadline = INF
        self.deadline_kind = NONE
        # the request being parsed
        self._in_head = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._fields: dict[str, str] = {}
        self._head_counted = 0
        self._head_raw = 0
        self._parsing: Http1Request | None = None
        self._body_parts: list[bytes] = []
        self._body_size = 0
        self._body_limit = 0
        self._inflater: Any = None
        self._inflated = 0
        self._discard = False  # the rest of this request's body is not wanted
        self._upgrade_tail: bytearray | None = None
        self._ws: WebSocketConnection | None = None
        # requests read whole, waiting their turn; the one being answered
        self._queue: deque[Http1Request] = deque()
        self._active: Http1Request | None = None
        self._coro: Coroutine[Any, Any, HttpResponse | None] | None = None
        self._waiting: asyncio.Future[Any] | None = None
        self._parked: ParkedGet | None = None  # a GET parked on its session without a coroutine
        #: the last query string parsed on this connection, and its fields (see Http1Request.query)
        self.last_query: tuple[str, dict[str, str]] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._refused: Refusal | None = None  # to answer once the requests before it are answered
        self._paused = False
        self._write_paused = False
        self._out: list[bytes] | None = None  # responses held until the end of the loop's turn (see _write)

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer_host, self.peer_port = str(peer[0]), int(peer[1])
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, tuple) and len(sock) >= 2:
            self.local_host, self.local_port = str(sock[0]), int(sock[1])
        self.server.connection_made(self)
        self._set_deadline(HEAD, self.server.config.head_timeout)

    def data_received(self, data: bytes) -> None:
        if self.deadline_kind == LINGER or self.upgraded:
            return
        tail = self._upgrade_tail
        if tail is not None:  # bytes behind a WebSocket handshake not yet answered
            tail += data
            return
        if self._discard or self._refused is not None:
            return
        in_head = self._in_head
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[int(exc.args[0]):]
            if self._ws is not None:  # upgraded while the parser ran: the rest is WebSocket input
                if rest:
                    self._ws.data_received(rest)
            elif self._upgrade_tail is not None:
                self._upgrade_tail += rest
            return
        except httptools.HttpParserCallbackError as exc:
            context = exc.__context__
            if isinstance(context, Stop):
                return
            if isinstance(context, Refusal):
                self.refuse(context)
            else:  # pragma: no cover - a bug of ours in a callback
                log.exception("HTTP parser callback failed for %s", self.peer_host, exc_info=context)
                self.refuse(Refusal(500, "internal error"))
            return
        except httptools.HttpParserError as exc:
            reason = str(exc) or exc.__class__.__name__
            self.refuse(Refusal(400, f"malformed request: {reason}"))
            return
        req = self._parsing
        if (req is not None and req.engine and not req.dispatched and self._active is None and not self._queue
                and not self._in_head and not self._discard):
            # An Engine.IO request whose body is still coming is handed over now (the engine sees a POST in
            # progress, as on any front: a second one for the session is refused); its body follows.
            req.body_complete = False
            self._handle(req)
        if self._in_head:
            # Header bytes not yet delivered by the parser (it joins a header line before calling
            # on_header) are counted here: whole chunks read while inside a head.
            self._head_raw = self._head_raw + len(data) if in_head else 0
            limit = self.server.config.max_head_size
            if self._head_raw > limit or self._head_counted > limit:
                self.refuse(Refusal(431, f"request head over {limit} bytes"))

    def eof_received(self) -> bool | None:
        req = self._parsing
        if req is not None and not self._discard:
            # the client half-closed in the middle of a body: the request is not processed
            self._parsing = None
            req.keep_alive = False
            if req.engine:
                req.fail_body(IncompleteBody(
                    f"the client closed the connection after {self._body_size} bytes of the body"))
                if not req.dispatched:
                    self._enqueue(req)
                self.closing = True
                return True
            log.info("client %s closed the connection in the middle of a request body", self.peer_host)
            return None
        if self._waiting is not None or self._parked is not None:
            return None  # a parked long-poll whose client went away: connection_lost aborts it
        if self._active is not None or self._queue:
            self.closing = True  # answer, then close (a half-closed client can still read)
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._out = None
        self.deadline = INF
        self.server.connection_lost(self)
        if self.upgraded:
            return
        self._parser = None  # it refers back to us
        self._queue.clear()
        task = self._task
        if task is not None:
            self._task = None
            task.cancel()
        parked = self._parked
        if parked is not None:  # a parked GET whose client went away: the session's transport is gone
            self._parked = None
            engine = self.server.engine
            assert engine is not None
            engine.polling.abandon(parked.session)
        if self._coro is not None:
            waiting = self._waiting
            if waiting is not None:
                self._waiting = None
                waiting.remove_done_callback(self._wake)
            self._step(asyncio.CancelledError())

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False

    def parse_query(self, query_string: str) -> dict[str, str]:
        """``query_string``'s fields, kept as the connection's last (see :class:`~.request.Http1Request`)."""
        query = parse_query(query_string)
        self.last_query = (query_string, query)
        return query

    # ------------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        if self.closing:
            raise Stop  # nothing after a request that closes the connection is read
        self._in_head = True
        self._url = b""
        self._headers = []
        self._fields = {}
        self._head_counted = 0
        self._head_raw = 0
        if self.deadline_kind != BODY or self._active is None:
            self.deadline_kind = HEAD
            self.deadline = self.server.clock + self._config.head_timeout

    def on_url(self, fragment: bytes) -> None:
        url = self._url = self._url + fragment  # (mostly one fragment: b"" + it is it)
        if len(url) > self._config.max_request_target:
            raise Refusal(414, f"request target over {self._config.max_request_target} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + 4
        headers = self._headers
        headers.append((name, value))
        config = self._config
        if size > config.max_header_line or len(headers) > config.max_headers:
            raise Refusal(431, f"a header line over {config.max_header_line} bytes" if size > config.max_header_line
                          else f"more than {config.max_headers} header fields")
        self._head_counted += size
        key = _NAMES.get(name) or name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if text and text[-1] in " \t":  # llhttp drops the whitespace before a value, not after
            text = text.rstrip(" \t")
        fields = self._fields
        if key in fields:
            add_field(fields, key, text)
        else:
            fields[key] = text

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        server = self.server
        target = self._url.decode("latin-1")
        path, _, query = target.partition("?")
        if "#" in query:
            query = query.partition("#")[0]
        if path[:1] != "/":
            path = origin_form(path)
        method = parser.get_method()
        fields = self._fields
        req = Http1Request(self, _METHODS.get(method) or method.decode("ascii"), target, path, query,
                           parser.get_http_version(), Headers(self._headers, fields))
        req.keep_alive = parser.should_keep_alive() and not self.closing
        if parser.should_upgrade():  # what follows the head is not HTTP: held for the WebSocket, if there is one
            req.upgrade = True
            self._upgrade_tail = bytearray()
        engine = path in server.prefixes
        if engine:
            req.engine = True
            req.route = "engine"
        self._parsing = req
        self._body_size = 0
        self._inflater = None
        self._discard = False
        self._body_limit = limit = server.engine_body_limit if engine else self._config.max_body_size
        length_text = fields.get("content-length")
        length = int(length_text) if length_text is not None and length_text.isdigit() else 0
        if engine:
            encoding = fields.get("content-encoding")
            if encoding is not None and encoding.lower() not in ("identity", ""):
                kind = encoding.lower()
                self._inflated = 0
                if kind == "gzip":
                    self._inflater = zlib.decompressobj(31)
                elif kind == "deflate":
                    self._inflater = zlib.decompressobj(15)
                else:
                    raise Refusal(400, f"unsupported Content-Encoding {encoding[:40]!r}")
        expect = fields.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise Refusal(417, f"unsupported Expect {expect[:40]!r}")
            req.expect_continue = True
        if length > limit and not self._inflater:
            self._too_large(req, length)
            return
        if length or fields.get("transfer-encoding") is not None:
            self.deadline_kind = BODY
            self.deadline = server.clock + (server.engine_body_timeout if engine else self._config.body_timeout)
            if req.expect_continue and self._active is None and not self._queue:
                self._write(CONTINUE)
                req.expect_continue = False

    def on_body(self, chunk: bytes) -> None:
        if self._discard:
            return
        req = self._parsing
        assert req is not None
        self._body_size += len(chunk)
        inflater = self._inflater
        if inflater is not None:
            room = self._body_limit - self._inflated + 1
            try:
                chunk = inflater.decompress(chunk, room)
            except zlib.error as exc:
                self._bad_body(req, f"body does not inflate ({exc})")
                return
            self._inflated += len(chunk)
            if self._inflated > self._body_limit or inflater.unconsumed_tail:
                self._too_large(req, self._inflated)
                return
        elif self._body_size > self._body_limit:
            self._too_large(req, self._body_size)
            return
        self._body_parts.append(chunk)

    def on_message_complete(self) -> None:
        req = self._parsing
        self._parsing = None
        if req is None or self._discard:
            self._discard = False
            return
        parts = self._body_parts
        self._body_parts = []
        body = (parts[0] if len(parts) == 1 else b"".join(parts)) if parts else b""
        inflater = self._inflater
        if self.deadline_kind in (BODY, HEAD):  # a request without a body still has its head deadline
            self.deadline_kind, self.deadline = NONE, INF
        if inflater is not None:
            self._inflater = None
            if not inflater.eof:
                req.fail_body(IncompleteBody("compressed body incomplete"))
        if req.dispatched or req._body_waiter is not None:  # handed over before its body was whole
            req.complete_body(body)
            return
        req.body = body
        if self._active is None and not self._queue:  # (_enqueue's common case)
            self._handle(req)
        else:
            self._enqueue(req)

    # ------------------------------------------------------------------ body failures

    def _too_large(self, req: Http1Request, size: int) -> None:
        """The body is over the limit: answer now (413), read no more of it, close after."""
        self._discard = True
        self._parsing = None
        self._body_parts = []
        req.keep_alive = False
        self.closing = True
        if req.engine:
            req.fail_body(BodyTooLarge(size))
            if not req.dispatched:
                self._enqueue(req)
        else:
            self.refuse(Refusal(413, f"body over {self._body_limit} bytes"))

    def _bad_body(self, req: Http1Request, reason: str) -> None:
        self._discard = True
        self._parsing = None
        self._body_parts = []
        req.keep_alive = False
        self.closing = True
        if req.engine:
            req.fail_body(IncompleteBody(reason))
            if not req.dispatched:
                self._enqueue(req)
        else:
            self.refuse(Refusal(400, reason))

    # ------------------------------------------------------------------ deadlines

    def on_deadline(self) -> None:
        """Called by the server's sweep once ``deadline`` has passed."""
        kind = self.deadline_kind
        self.deadline, self.deadline_kind = INF, NONE
        transport = self.transport
        if transport is None or self.lost:
            return
        self.flush()
        if kind == LINGER:
            transport.abort()
        elif kind == IDLE:
            transport.close()
        elif kind == HEAD:
            if self._in_head or self._url:
                self.refuse(Refusal(408, "request head not complete in time"))
            else:
                transport.close()  # connected and sent nothing
        elif kind == BODY:
            req = self._parsing
            if req is not None and req.engine:
                self._bad_body(req, f"{self._body_size} bytes in {self.server.engine_body_timeout}s, "
                                    "body not complete")
            else:
                self.refuse(Refusal(408, "request body not complete in time"))

    # ------------------------------------------------------------------ WebSocket upgrade

    def take_over(self) -> tuple[asyncio.Transport, bytes]:
        """Hand the connection (an upgrade request in hand) to someone else (a WebSocket forwarded to the
        worker that owns the session): its transport, and the bytes read behind the head."""
        transport = self.transport
        if transport is None or self.lost or transport.is_closing():
            raise ConnectionResetError("client disconnected before the WebSocket upgrade")
        self.flush()  # the answers before the upgrade request go first
        tail = bytes(self._upgrade_tail or b"")
        self.upgraded = True
        self._upgrade_tail = None
        self._active = None
        self.deadline, self.deadline_kind = INF, NONE
        self.server.connection_lost(self)
        self._parser = None
        return transport, tail

    def upgrade_websocket(self, req: Http1Request, handler: WebSocketHandler, config: WebSocketConfig,
                          extra_headers: Sequence[tuple[str, str]]) -> WebSocketConnection:
        transport = self.transport
        tail = self._upgrade_tail
        if transport is None or self.lost or transport.is_closing():
            raise ConnectionResetError("client disconnected before the WebSocket upgrade")
        response, conn = accept_websocket(req, handler, config, extra_headers, tail)
        self.flush()  # the answers before the upgrade request go first
        self.upgraded = True
        self._upgrade_tail = None
        self._active = None
        self.deadline, self.deadline_kind = INF, NONE
        self.server.connection_lost(self)
        self._ws = conn
        self._parser = None  # it refers back to us: no cycle left for the collector (idle WebSocket memory)
        transport.set_protocol(conn)
        conn.attach(transport, bytes(tail or b""), writable=not self._write_paused)
        transport.write(response)
        return conn
