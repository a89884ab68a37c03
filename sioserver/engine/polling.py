"""The long-polling transport: GET takes what the session owes (or parks until there is something),
POST delivers the client's packets.

A GET that finds the outbox empty parks on ``session.poll_waiter``; whatever must answer it (a packet,
the close, the upgrade's noop) wakes it. A parked GET whose client went away is noticed by the framework
(the request is cancelled) or, for frameworks that do not say, by a sweep of the parked sessions every
``poll_check_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import EngineIOProtocolError
from ..proto.engineio import SEPARATOR, EngineError
from .http import BodyTooLarge, HttpRequest, HttpResponse, IncompleteBody, compress_body, error_response
from .payload import V4, TooManyPackets
from .session import DisconnectReason, PollWaiter, Session

__all__ = ["PollWaiter", "Polling", "PollingConfig"]

log = logging.getLogger("sioserver.engine")

_TEXT_HEADERS = [("Content-Type", "text/plain; charset=UTF-8")]
_OK_HEADERS = [("Content-Type", "text/html; charset=UTF-8")]
_SEPARATOR = SEPARATOR.encode()
_CLOSED = Session.CLOSED
#: a POST's answer without CORS headers: one object for all (responses are read, never changed)
_OK = HttpResponse(200, b"ok", _OK_HEADERS)


def _future(session: Session, cors: list[tuple[str, str]]) -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(frozen=True, slots=True)
class PollingConfig:
    max_http_buffer_size: int = 1_000_000
    max_payload_packets: int = 1000
    body_timeout: float = 30.0
    http_compression: bool = True
    compression_threshold: int = 1024
    poll_check_interval: float = 1.0


class Polling:
    """Answers the GETs and POSTs of the long-polling sessions of one server."""

    __slots__ = ("_sweeper", "config", "forget", "logger", "parked", "stats")

    def __init__(
        self,
        config: PollingConfig,
        forget: Callable[[Session], None],
        stats: Counter[str],
        logger: logging.Logger = log,
    ) -> None:
        self.config = config
        self.forget = forget
        self.stats = stats
        self.logger = logger
        self.parked: set[Session] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def session_closed(self, session: Session) -> None:
        self.parked.discard(session)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # -------------------------------------------------------------------- GET

    async def get(self, request: HttpRequest, session: Session, cors: list[tuple[str, str]]) -> HttpResponse:
        response = self.get_now(request, session, cors, _future)
        if response is not None:
            return response
        waiter = session.poll_waiter
        assert isinstance(waiter, asyncio.Future)
        parked = getattr(request, "parked", None)  # optional: see the HttpRequest contract
        if parked is not None:
            parked()
        try:
            await waiter
        except asyncio.CancelledError:
            self.abandon(session)  # the client went away mid-poll and the framework cancelled us
            raise
        return self.answer_parked(request, session, cors)

    def get_now(self, request: HttpRequest, session: Session, cors: list[tuple[str, str]],
                waiter: Callable[[Session, list[tuple[str, str]]], PollWaiter]) -> HttpResponse | None:
        """A GET answered now, or parked (None): ``session.poll_waiter`` is then ``waiter(session, cors)``, which the
        session completes when the GET is to be answered; the front then calls :meth:`answer_parked`, or
        :meth:`abandon` if the client went away first. (A front may step this without a coroutine.)"""
        if session.poll_waiter is not None:
            # a second concurrent GET: the first gets a CLOSE packet, this one an empty 400, the session
            # ends (as the reference)
            self.logger.info("session %s: overlapping GET requests; closing it", session.sid)
            session.close(DisconnectReason.TRANSPORT_ERROR)
            return HttpResponse(400, b"", list(cors))
        if session.state == _CLOSED:
            # the server closed it while no GET was parked: this GET takes the close packet
            self.forget(session)
            return HttpResponse(200, session.payload.noop_close_body, [*_TEXT_HEADERS, *cors])
        if session.upgrading:
            return HttpResponse(200, session.payload.noop_body, [*_TEXT_HEADERS, *cors])
        if not session._outbox:  # (outbox_empty)
            session.poll_waiter = waiter(session, cors)
            session.poll_request = request
            self.parked.add(session)  # (_park)
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().call_later(self.config.poll_check_interval, self._sweep)
            return None
        return self._take(request, session, cors)

    def answer_parked(self, request: HttpRequest, session: Session, cors: list[tuple[str, str]]) -> HttpResponse:
        """The answer of a parked GET whose waiter the session completed."""
        session.poll_waiter = None
        session.poll_request = None
        self.parked.discard(session)
        if session.state == _CLOSED:
            self.forget(session)
            # a close the client sent itself is not echoed: the parked GET gets a noop
            fmt = session.payload
            body = fmt.noop_body if session.client_closed else fmt.close_body
            return HttpResponse(200, body, [*_TEXT_HEADERS, *cors])
        if session.upgrading or not session._outbox:
            return HttpResponse(200, session.payload.noop_body, [*_TEXT_HEADERS, *cors])
        return self._take(request, session, cors)

    def abandon(self, session: Session) -> None:
        """A parked GET's client went away: the session ends (its transport is gone)."""
        session.close(DisconnectReason.TRANSPORT_CLOSE)
        session.poll_waiter = None
        session.poll_request = None
        self.parked.discard(session)

    def _take(self, request: HttpRequest, session: Session, cors: list[tuple[str, str]]) -> HttpResponse:
        box = session._outbox
        if session.payload is V4 and box is not None and len(box) == 1 and box[0].__class__ is str:
            body = session.take_outbox()[0].encode()  # type: ignore[union-attr]  # (one text packet owed)
            content_type = _TEXT_HEADERS
        else:
            body, content_type = session.payload.encode(session.take_outbox())
        headers = [*content_type, *cors] if cors else content_type
        config = self.config
        if config.http_compression and len(body) >= config.compression_threshold:  # (compress_body's own test first)
            body, encoding = compress_body(body, request.headers.get("Accept-Encoding"), config.compression_threshold)
            if encoding:
                headers = [*headers, ("Content-Encoding", encoding)]
        return HttpResponse(200, body, headers)

    def _sweep(self) -> None:
        """Close sessions whose parked GET was aborted by the client (frameworks do not always say)."""
        self._sweeper = None
        for session in list(self.parked):
            request = session.poll_request
            if request is not None and request.is_disconnected():
                self.logger.info("session %s: the client aborted its GET; closing it", session.sid)
                session.close(DisconnectReason.TRANSPORT_CLOSE)
        if self.parked:
            self._sweeper = asyncio.get_running_loop().call_later(self.config.poll_check_interval, self._sweep)

    # ------------------------------------------------------------------- POST

    async def post(self, request: HttpRequest, session: Session, cors: list[tuple[str, str]]) -> HttpResponse:
        if session.posting:
            self.logger.info("session %s: overlapping POST requests; closing it", session.sid)
            session.close(DisconnectReason.TRANSPORT_ERROR)
            return HttpResponse(400, b"", list(cors))
        config = self.config
        session.posting = True
        try:
            body = await request.read_body(config.max_http_buffer_size, config.body_timeout)
        except BodyTooLarge:
            self.stats["refused:payload_too_large"] += 1
            # as the reference server: 413, and the session stays (the client's transport errors out)
            self.logger.warning(
                "session %s: POST body over max_http_buffer_size=%d; answered 413",
                session.sid,
                config.max_http_buffer_size,
            )
            return HttpResponse(413, b'{"code":3,"message":"Payload too large"}',
                                [("Content-Type", "application/json"), *cors])
        except IncompleteBody as exc:
            self.logger.info("session %s: truncated POST body (%s); not processed, closing the session",
                             session.sid, exc)
            session.close(DisconnectReason.TRANSPORT_ERROR)
            return error_response(EngineError.BAD_REQUEST, cors)
        except asyncio.CancelledError:
            # the client went away mid-body and the framework cancelled us: same answer, nobody to tell
            self.logger.info("session %s: truncated POST body (the client went away mid-body); not processed, "
                             "closing the session", session.sid)
            session.close(DisconnectReason.TRANSPORT_ERROR)
            raise
        finally:
            session.posting = False
        return self.deliver(body, request, session, cors)

    def deliver(self, body: bytes, request: HttpRequest, session: Session,
                cors: list[tuple[str, str]]) -> HttpResponse:
        """A POST whose body is read: its packets go to the session (a front that has the body whole, within
        ``max_http_buffer_size``, and no POST of the session in progress, may call this directly)."""
        payload = session.payload
        if payload is V4 and body[:1] == b"4" and _SEPARATOR not in body:  # the common case: one text MESSAGE
            try:
                text = body[1:].decode("utf-8")
            except UnicodeDecodeError:
                pass  # the general path refuses it
            else:
                session.receive_message(text)
                return HttpResponse(200, b"ok", [*_OK_HEADERS, *cors]) if cors else _OK
        config = self.config
        try:
            packets = payload.decode(body, request.headers.get("Content-Type"), config.max_payload_packets)
        except TooManyPackets:
            self.logger.warning("session %s: bad POST payload (payload carries more than %d packets); refused "
                                "(400), closing it", session.sid, config.max_payload_packets)
            self.stats["refused:max_payload_packets"] += 1
            session.close(DisconnectReason.TRANSPORT_ERROR)
            return error_response(EngineError.BAD_REQUEST, cors)
        except (UnicodeDecodeError, EngineIOProtocolError) as exc:
            # as the reference: the POST is answered "ok", the session ends at once ("parse error"), a
            # parked GET gets the close packet and the next request an unknown sid; nothing of the body
            # is processed
            self.logger.info("session %s: bad POST payload (%s); closing it", session.sid, exc)
            self.stats["protocol_errors"] += 1
            session.close(DisconnectReason.PARSE_ERROR)
            return HttpResponse(200, b"ok", [*_OK_HEADERS, *cors])
        for packet in packets:
            if session.closed:
                break
            session.receive(packet)
        return HttpResponse(200, b"ok", [*_OK_HEADERS, *cors]) if cors else _OK
