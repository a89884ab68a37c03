"""How an HTTP/1.1 connection answers: requests one at a time and in order, Engine.IO requests stepped
by hand (or answered at once: :func:`~sioserver.engine.fastpoll.answer_now`), everything else in a task,
the answers held until the end of the loop's turn, refusals and closing.

:class:`Answering` is the half of :class:`~.connection.HttpConnection` that answers; the other half (the
``asyncio.Protocol`` and the parser's callbacks, in connection.py) reads. The state they share is
declared here and held in the connection's slots.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from ...engine.fastpoll import PARKED, answer_now
from ...engine.http import HttpResponse
from .config import HttpConfig
from .request import (
    LENGTH_LINES,
    OK_LINE,
    SHORT_BODY,
    Http1Request,
    ParkedGet,
    Refusal,
    date_header,
    encode_headers,
    encode_response,
    reason_body,
)

if TYPE_CHECKING:
    from ...engine.session import Session
    from .server import Http1Server

__all__ = ["Answering"]

log = logging.getLogger("sioserver.http")

INF = float("inf")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# deadline kinds
NONE, HEAD, BODY, IDLE, LINGER = 0, 1, 2, 3, 4

#: the most a connection's held responses reach before they are written without waiting for the turn's end
_HOLD_LIMIT = 64 * 1024


class Answering:
    """The answering half of an HTTP/1.1 connection (see the module docstring)."""

    # the state both halves use, set up by HttpConnection.__init__ (the reading half's own is in its slots)
    __slots__ = (
        "_active", "_config", "_coro", "_discard", "_in_head", "_out", "_parked", "_parsing", "_paused", "_queue",
        "_refused", "_task", "_upgrade_tail", "_waiting", "closing", "deadline", "deadline_kind", "lost",
        "peer_host", "peer_port", "server", "transport", "upgraded",
    )

    _active: Http1Request | None
    _config: HttpConfig
    _coro: Coroutine[Any, Any, HttpResponse | None] | None
    _discard: bool
    _in_head: bool
    _out: list[bytes] | None
    _parked: ParkedGet | None
    _parsing: Http1Request | None
    _paused: bool
    _queue: deque[Http1Request]
    _refused: Refusal | None
    _task: asyncio.Task[Any] | None
    _upgrade_tail: bytearray | None
    _waiting: asyncio.Future[Any] | None
    closing: bool
    deadline: float
    deadline_kind: int
    lost: bool
    peer_host: str
    peer_port: int
    server: Http1Server
    transport: asyncio.Transport | None
    upgraded: bool

    def _set_deadline(self, kind: int, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.server.clock + seconds  # the sweep's clock: deadlines are that coarse

    # ------------------------------------------------------------------ answering

    def _enqueue(self, req: Http1Request) -> None:
        if self._active is None and not self._queue:
            self._handle(req)
            return
        self._queue.append(req)
        transport = self.transport
        if len(self._queue) >= self.server.config.max_pipelined and not self._paused and transport is not None:
            self._paused = True
            transport.pause_reading()

    def _next(self) -> None:
        queue = self._queue
        while self._active is None and queue and not self.lost:
            self._handle(queue.popleft())
        if self._active is not None or queue or self.lost:
            return
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self._refused is not None:
            self._answer_refusal(self._refused)
        elif self.closing:
            self._close(linger=self._discard)
        elif self._parsing is not None:
            if self._parsing.expect_continue:
                self._parsing.expect_continue = False
                self._write(CONTINUE)
        elif not self._in_head:
            self.deadline_kind = IDLE
            self.deadline = self.server.clock + self._config.keepalive_timeout

    def _handle(self, req: Http1Request) -> None:
        self._active = req
        req.dispatched = True
        if self.deadline_kind == IDLE:
            self.deadline, self.deadline_kind = INF, NONE
        if self._upgrade_tail is not None and not req.upgrade:  # pragma: no cover - llhttp stops at the upgrade
            self._upgrade_tail = None
        route = req.route
        if route == "engine":
            engine = self.server.engine
            assert engine is not None
            if "sid=" in req.query_string:
                body: bytes | None = b""
                if req.method == "POST" and (req._body_error is not None or not req.body_complete
                                             or len(req.body) > self.server.engine_body_limit):
                    body = None  # (the engine answers what is wrong with it)
                elif req.method == "POST":
                    body = req.body
                if body is not None:
                    response = answer_now(engine, req, body, self._park)
                    if response is PARKED:
                        return
                    if response is not None:
                        self.respond(response.status, response.headers, response.body)
                        return
                self._coro = engine.handle_request(req)
                self._step(None)
            else:
                self._task = asyncio.ensure_future(self._run_engine_task(req))
        else:
            self._task = asyncio.ensure_future(self.server.handle_other(req))
            self._task.add_done_callback(self._other_done)

    def _park(self, session: Session, cors: list[tuple[str, str]]) -> ParkedGet:
        parked = self._parked = ParkedGet(self, session, cors)
        return parked

    def answer_parked(self) -> None:
        """The session completed the parked GET (:class:`~.request.ParkedGet`): answer it."""
        parked = self._parked
        req = self._active
        if parked is None or req is None or self.lost:
            return
        self._parked = None
        engine = self.server.engine
        assert engine is not None
        response = engine.polling.answer_parked(req, parked.session, parked.cors)
        self.respond(response.status, response.headers, response.body)

    # an engine request stepped by hand (see the module docstring)

    def _step(self, exc: BaseException | None) -> None:
        coro = self._coro
        if coro is None:
            return
        try:
            yielded = coro.send(None) if exc is None else coro.throw(exc)
        except StopIteration as stop:
            self._coro = None
            self._engine_done(stop.value)
            return
        except asyncio.CancelledError:
            self._coro = None
            return
        except Exception:
            self._coro = None
            log.exception("the engine failed on %s %s from %s", self._active, self.peer_host, self.peer_port)
            self._engine_done(HttpResponse(500, b"Internal Server Error"))
            return
        if yielded is None:  # a bare yield (asyncio.sleep(0))
            asyncio.get_running_loop().call_soon(self._step, None)
            return
        yielded._asyncio_future_blocking = False
        self._waiting = yielded
        yielded.add_done_callback(self._wake)

    def _wake(self, future: asyncio.Future[Any]) -> None:
        self._waiting = None
        if self._coro is not None:
            self._step(None)

    async def _run_engine_task(self, req: Http1Request) -> None:
        engine = self.server.engine
        assert engine is not None
        try:
            response = await engine.handle_request(req)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the engine failed on %s from %s", req, self.peer_host)
            response = HttpResponse(500, b"Internal Server Error")
        self._task = None
        self._engine_done(response)

    def _engine_done(self, response: HttpResponse | None) -> None:
        if self.upgraded:
            return
        if response is None:  # pragma: no cover - the engine returns None only after an upgrade
            response = HttpResponse(500, b"")
        self.respond(response.status, response.headers, response.body)

    def _other_done(self, task: asyncio.Task[Any]) -> None:
        if self._task is task:
            self._task = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("request %s from %s failed", self._active, self.peer_host, exc_info=exc)
            if self._active is not None:
                self.respond(500, [("Content-Type", "text/plain")], b"Internal Server Error")

    def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Answer the active request with a whole response, then go on with the next one."""
        req = self._active
        if req is None or self.lost:
            return
        close = not req.keep_alive or self.closing or req.upgrade
        if status == 200 and not close and len(body) < SHORT_BODY and req.method != "HEAD":  # polls and posts
            self._write(b"".join((OK_LINE, date_header.value, encode_headers(headers), LENGTH_LINES[len(body)], body)))
        else:
            self._write(encode_response(status, headers, body, close=close, head=req.method == "HEAD"))
        if close or self._queue or self._paused or self._parsing is not None or self._in_head:
            self.finish(close)
            return
        self._active = None  # (finish and _next, when nothing else waits)
        self.deadline_kind = IDLE
        self.deadline = self.server.clock + self._config.keepalive_timeout

    def finish(self, close: bool) -> None:
        """The active request is answered (by :meth:`respond` or by a streaming writer)."""
        self._active = None
        if close:
            self.closing = True
            self._queue.clear()
        self._next()

    def write(self, data: bytes) -> None:
        """Write part of a streamed response now (after what is held): the transport's flow control
        (``pause_writing``) sees it at once."""
        self.flush()
        transport = self.transport
        if transport is not None and not self.lost:
            transport.write(data)

    def _write(self, data: bytes) -> None:
        """Whole responses (and 100 Continue) are held until the end of the loop's turn, then written,
        one write per connection, by the server (:meth:`~.server.Http1Server.hold_turn`): the responses
        of a turn go out back to back. A peer on the same host (a reverse proxy, a client) that sleeps
        between them is woken once for the lot rather than once per response - each wake-up is paid by
        the writer, in the send() that delivers to it. Bounded: past ``_HOLD_LIMIT`` bytes they go out
        at once; anything that uses the transport directly (closing, an upgrade) flushes first."""
        transport = self.transport
        if transport is None or self.lost:
            return
        out = self._out
        if out is None:
            self._out = [data]
            server = self.server
            server._held.append(self)  # written by server.hold_turn's callback
            if server._flush is None:
                server.hold_turn()
        else:
            out.append(data)
            if sum(map(len, out)) > _HOLD_LIMIT:
                self.flush()

    def flush(self) -> None:
        """Write what is held, now."""
        out = self._out
        if out is None:
            return
        self._out = None
        transport = self.transport
        if transport is not None and not self.lost and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    # ------------------------------------------------------------------ refusals and closing

    def refuse(self, refusal: Refusal) -> None:
        """Stop reading requests; answer ``refusal`` once the requests before it are answered."""
        self._refused = refusal
        self._parsing = None
        self._in_head = False
        self.closing = True
        self.deadline, self.deadline_kind = INF, NONE
        if self._active is None and not self._queue:
            self._answer_refusal(refusal)

    def _answer_refusal(self, refusal: Refusal) -> None:
        self._refused = None
        self.server.stats["refused"] += 1
        log.info("refused a request from %s: %s (%d)", self.peer_host, refusal.reason, refusal.status)
        body = encode_response(refusal.status, [("Content-Type", "text/plain; charset=utf-8")],
                               reason_body(refusal.status), close=True)
        self._write(body)
        self._close(linger=True)

    def _close(self, linger: bool = False) -> None:
        transport = self.transport
        if transport is None or self.lost or transport.is_closing():
            return
        self.flush()  # the answer goes out before the FIN
        if linger and transport.can_write_eof():
            # Half-close: the answer goes out with our FIN, and what the client still sends is read
            # and dropped for a while; closing with unread input would reset the connection, and the
            # reset can destroy the answer before the client reads it.
            transport.write_eof()
            self._discard = True
            self._set_deadline(LINGER, self.server.config.linger)
            if self._paused:
                self._paused = False
                transport.resume_reading()
        else:
            transport.close()

    def close_idle(self) -> bool:
        """Close now if nothing is in hand (server shutdown); True if closed."""
        if self._active is None and not self._queue and self._parsing is None and self.transport is not None:
            self.flush()
            self.transport.close()
            return True
        self.closing = True
        return False
