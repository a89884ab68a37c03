"""One parsed HTTP/1.1 request, as the engine's :class:`~sioserver.engine.http.HttpRequest`, and the
bytes of a response.

A request is built once its head is parsed and handed to the engine when its body is complete (the
front reads Engine.IO bodies whole, within the limits, before the engine sees them), so
:meth:`Http1Request.read_body` never waits: the engine's ``await`` on it returns at once, and a POST
is answered without suspending. Headers are a plain dict keyed by lower-case name; the WSGI-style
environ is built only when asked for (handshakes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from ...engine.http import BodyTooLarge, IncompleteBody
from ...engine.websocket import WebSocketConfig, WebSocketConnection, WebSocketHandler

if TYPE_CHECKING:
    from ...engine.session import Session
    from .answering import Answering
    from .connection import HttpConnection

__all__ = ["LENGTH_LINES", "OK_LINE", "SHORT_BODY", "Headers", "Http1Request", "Refusal", "Stop", "add_field",
           "encode_response", "origin_form", "parse_query", "reason_body"]


_LOWER: dict[str, str] = {}  # a header name as asked for -> lower case


class Headers(Mapping[str, str]):
    """Request headers: case-insensitive lookup; repeated fields joined with ``", "`` (RFC 9110
    section 5.3), except ``Cookie`` (joined with ``"; "``)."""

    __slots__ = ("_fields", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]], fields: dict[str, str] | None = None) -> None:
        self.raw = raw
        if fields is None:
            fields = {}
            for name, value in raw:
                add_field(fields, name.decode("latin-1").lower(), value.decode("latin-1").strip(" \t"))
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        key = _LOWER.get(name)
        if key is None:
            key = name.lower()
            if len(_LOWER) < 256:  # the few names the engine and apps ask for
                _LOWER[name] = key
        return self._fields.get(key, default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def items_raw(self) -> Iterator[tuple[str, str]]:
        """Every field as sent (names in their original case, repeats kept)."""
        for name, value in self.raw:
            yield name.decode("latin-1"), value.decode("latin-1").strip(" \t")


def add_field(fields: dict[str, str], name: str, value: str) -> None:
    """Add a header field (``name`` in lower case) to ``fields``, joining repeats."""
    if name in fields:
        fields[name] = f"{fields[name]}{'; ' if name == 'cookie' else ', '}{value}"
    else:
        fields[name] = value


def parse_query(query: str) -> dict[str, str]:
    """``a=1&b=2`` -> ``{"a": "1", "b": "2"}``; the first of repeated names wins (as a multidict's
    ``get``). Percent-decoding only where there is something to decode."""
    result: dict[str, str] = {}
    if not query:
        return result
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        if name not in result:
            result[name] = value
    return result


class Http1Request:
    """An HTTP/1.1 request read by the front; satisfies :class:`~sioserver.engine.http.HttpRequest`."""

    __slots__ = ("_body_error", "_body_waiter", "_environ", "body", "body_complete", "conn",
                 "dispatched", "engine", "expect_continue",
                 "headers", "keep_alive", "method", "path", "query", "query_string", "route", "target", "upgrade",
                 "version")

    def __init__(self, conn: HttpConnection, method: str, target: str, path: str, query_string: str,
                 version: str, headers: Headers) -> None:
        self.conn = conn
        self.method = method
        self.target = target
        self.path = path
        self.query_string = query_string
        #: the query's fields; a polling client sends the same query string on every request of a
        #: connection: it is parsed once
        last = conn.last_query
        if last is not None and last[0] == query_string:
            self.query: Mapping[str, str] = last[1]
        else:
            self.query = conn.parse_query(query_string)
        self.version = version
        self.headers = headers
        self.body = b""
        self.body_complete = True  # False while a request handed over early is still receiving its body
        self.dispatched = False
        self._body_waiter: asyncio.Future[None] | None = None
        self.keep_alive = True
        self.upgrade = False
        self.route = "other"  # or "engine"
        self.engine = False  # answered by the Engine.IO server
        self.expect_continue = False  # a 100 Continue is still owed
        self._body_error: Exception | None = None
        self._environ: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<Http1Request {self.method} {self.target[:80]}>"

    @property
    def remote_addr(self) -> str:
        # a request another worker forwarded (over a Unix socket: no peer address) says whose it is
        return self.conn.peer_host or self.headers.get("x-forwarded-for", "")

    def environ(self) -> dict[str, Any]:
        if self._environ is None:
            conn = self.conn
            env: dict[str, Any] = {
                "REQUEST_METHOD": self.method,
                "PATH_INFO": unquote_plus(self.path) if "%" in self.path else self.path,
                "QUERY_STRING": self.query_string,
                "RAW_URI": self.target,
                "SERVER_PROTOCOL": f"HTTP/{self.version}",
                "REMOTE_ADDR": conn.peer_host,
                "REMOTE_PORT": str(conn.peer_port),
                "SERVER_NAME": conn.local_host,
                "SERVER_PORT": str(conn.local_port),
                "SCRIPT_NAME": "",
                "wsgi.url_scheme": "http",
            }
            for name, value in self.headers.items_raw():
                key = name.upper().replace("-", "_")
                if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    env[key] = value
                else:
                    key = "HTTP_" + key
                    env[key] = f"{env[key]},{value}" if key in env else value
            self._environ = env
        return self._environ

    def fail_body(self, error: Exception) -> None:
        """The body will not be read whole (too large, truncated, too slow): ``read_body`` raises this."""
        self._body_error = error
        self.complete_body(self.body)

    def complete_body(self, body: bytes) -> None:
        self.body = body
        self.body_complete = True
        waiter = self._body_waiter
        if waiter is not None:
            self._body_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def read_body(self, limit: int, timeout: float) -> bytes:
        """The body, read by the front within its limits and deadline (``limit`` and ``timeout`` are the
        engine's, which the front applies to Engine.IO requests)."""
        if not self.body_complete:  # handed over before its body arrived whole (see connection.py)
            waiter = self._body_waiter = asyncio.get_running_loop().create_future()
            await waiter
        error = self._body_error
        if error is not None:
            raise error
        if len(self.body) > limit:  # the front read within its own limit; the engine's may be lower
            raise BodyTooLarge(len(self.body))
        return self.body

    def parked(self) -> None:
        """A parked GET's client going away is seen by the connection itself: nothing to start."""

    def is_disconnected(self) -> bool:
        return self.conn.lost

    def upgrade_websocket(
        self, handler: WebSocketHandler, config: WebSocketConfig, extra_headers: Sequence[tuple[str, str]]
    ) -> WebSocketConnection:
        return self.conn.upgrade_websocket(self, handler, config, extra_headers)


class ParkedGet:
    """A GET parked on its session (the engine's ``PollWaiter``): completed by the session, it has the
    connection answered at the end of the loop's turn (:meth:`~.server.Http1Server.hold_turn`), with whatever
    the session owes by then."""

    __slots__ = ("conn", "cors", "fired", "session")

    def __init__(self, conn: Answering, session: Session, cors: list[tuple[str, str]]) -> None:
        self.conn = conn
        self.session = session
        self.cors = cors
        self.fired = False

    def done(self) -> bool:
        return self.fired

    def set_result(self, result: None, /) -> None:
        if not self.fired:
            self.fired = True
            conn = self.conn
            server = conn.server
            server._woken.append(conn)  # answered by server.hold_turn's callback
            if server._flush is None:
                server.hold_turn()


__all__ += ["BodyTooLarge", "IncompleteBody", "ParkedGet"]

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
    return line


class _DateHeader:
    """``Date:`` (RFC 9110 section 6.6.1), formatted once per second. ``value`` is what :meth:`get` last
    gave: the front's polls and posts read it as it is, and the front's sweep (every half second at
    most) calls ``get`` to keep it current."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""
        self.get()

    def get(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.value = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self.value


date_header = _DateHeader()


_HEADER_BYTES: dict[tuple[tuple[str, str], ...], bytes] = {}


def encode_headers(headers: Sequence[tuple[str, str]]) -> bytes:
    """The header lines; the engine answers with a few header lists over and over (content type
    plus CORS), so their bytes are kept (a bounded table: it is emptied when full)."""
    if not headers:
        return b""
    key = tuple(headers)
    data = _HEADER_BYTES.get(key)
    if data is None:
        data = "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")
        if len(data) < 2048:
            if len(_HEADER_BYTES) >= 512:
                _HEADER_BYTES.clear()
            _HEADER_BYTES[key] = data
    return data


def encode_response(status: int, headers: Sequence[tuple[str, str]], body: bytes, *, close: bool,
                    head: bool = False) -> bytes:
    """A whole response with ``Content-Length`` (no body written for HEAD, or for 1xx/204/304)."""
    parts = [status_line(status), date_header.get(), encode_headers(headers)]
    if status >= 200 and status not in (204, 304):
        parts.append(b"Content-Length: %d\r\n" % len(body))
    if close:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if body and not head and status not in (204, 304):
        parts.append(body)
    return b"".join(parts)


#: what the front's answers to polls and posts are made of (HttpConnection.respond): the status line, and
#: the Content-Length line (with the head's end) of each body shorter than SHORT_BODY (about 60 KiB)
OK_LINE = status_line(200)
SHORT_BODY = 1024
LENGTH_LINES = [b"Content-Length: %d\r\n\r\n" % n for n in range(SHORT_BODY)]


class Refusal(Exception):
    """A request the front refuses before anyone else sees it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Stop(Exception):
    """Raised in a parser callback to stop parsing (the connection is closing)."""


def origin_form(target: str) -> str:
    """The path of an absolute-form target (``http://host/path``, RFC 9112 section 3.2.2)."""
    _scheme, sep, rest = target.partition("://")
    if not sep:
        return "/" + target if target != "*" else "*"
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


_REASON_BODIES: dict[int, bytes] = {}


def reason_body(status: int) -> bytes:
    body = _REASON_BODIES.get(status)
    if body is None:
        body = _REASON_BODIES[status] = status_line(status)[len("HTTP/1.1 "):]
    return body
