"""What the Engine.IO server needs from an HTTP server, and what it answers.

The engine never imports a web framework: a front end (``sioserver.integrations``) wraps its server's
request in something that satisfies :class:`HttpRequest`, awaits ``EngineServer.handle_request(request)``
and turns the :class:`HttpResponse` it returns back into its server's response.

The contract, for whoever writes a front end:

* ``handle_request`` returns ``None`` only after it called ``request.upgrade_websocket``: the request
  became a WebSocket and the front end sends no HTTP response of its own (other than what its upgrade
  sent).
* ``upgrade_websocket(handler, config, extra_headers)`` validates the handshake (raising
  :class:`~sioserver.exceptions.HandshakeError` with the reason when it is invalid, ``OSError`` when the
  client is gone), answers 101 with ``extra_headers`` (and permessage-deflate when ``config.compression``
  is on and the front end can do it), and returns a
  :class:`~sioserver.engine.transport.WebSocketTransport` whose events go to ``handler`` (see
  :mod:`sioserver.engine.transport`). A front end that does its own WebSocket framing (ASGI) returns a
  transport of its own; one that takes the socket over returns
  :class:`~sioserver.engine.websocket.WebSocketConnection`. No handler callback may run before
  ``upgrade_websocket`` has returned. ``config.max_message_size`` bounds a received message (close 1009).
* ``read_body`` and ``is_disconnected`` are only called on long-polling requests; ``environ()`` is called
  at the handshake (possibly more than once: build it once) and the session keeps it for its life.
* Optional: ``parked()``, called (in the request's task) when a long-polling GET parks to wait for
  packets, for a front end that must watch for the client going away itself (ASGI).
* Optional: ``release()``, called once the connect handler has run (for Socket.IO: the first namespace's),
  for a front end to drop what it keeps of the handshake request (its environ may hold the framework's
  request object for the connect handler; an idle connection should not keep it).
* Headers are looked up case-insensitively; ``query`` holds the decoded query parameters (first value of
  each).
"""

from __future__ import annotations

import gzip
import inspect
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..proto.engineio import EngineError, error_body
from .transport import TransportHandler, WebSocketTransport
from .websocket import WebSocketConfig

__all__ = [
    "BodyTooLarge",
    "CorsPolicy",
    "HttpRequest",
    "HttpResponse",
    "IncompleteBody",
    "compress_body",
    "error_response",
]


class BodyTooLarge(Exception):
    """The request body is larger than the limit (answered 413)."""


class IncompleteBody(Exception):
    """The client sent fewer bytes than its Content-Length (the body is not processed)."""


class HttpRequest(Protocol):
    """One HTTP request, as the Engine.IO server sees it."""

    @property
    def method(self) -> str: ...

    @property
    def query(self) -> Mapping[str, str]: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive header lookup."""
        ...

    @property
    def remote_addr(self) -> str: ...

    def environ(self) -> dict[str, Any]:
        """A WSGI-style environ (REQUEST_METHOD, QUERY_STRING, REMOTE_ADDR, HTTP_* ...)."""
        ...

    async def read_body(self, limit: int, timeout: float) -> bytes:
        """The whole body; raises :class:`BodyTooLarge` past ``limit`` (checked from Content-Length
        before reading, and while reading), and :class:`IncompleteBody` when fewer bytes than announced
        arrive or the body is not complete within ``timeout`` seconds."""
        ...

    def is_disconnected(self) -> bool:
        """True once the client has gone away (used to notice an aborted long-poll)."""
        ...

    def upgrade_websocket(
        self, handler: TransportHandler, config: WebSocketConfig, extra_headers: Sequence[tuple[str, str]]
    ) -> WebSocketTransport:
        """Answer 101 and hand the connection to ``handler``; raises HandshakeError if invalid."""
        ...


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def error_response(error: EngineError, headers: Sequence[tuple[str, str]] = ()) -> HttpResponse:
    """The reference server's error answer: 400 (403 for FORBIDDEN) and ``{"code","message"}``."""
    return HttpResponse(
        error.status, error_body(error), [("Content-Type", "application/json"), *headers]
    )


OriginCheck = Callable[[str], bool] | Callable[[str, dict[str, Any]], bool]
"""``check(origin)`` or python-engineio's ``check(origin, environ)``."""


def _positional_count(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


class CorsPolicy:
    """Which origins may talk to the server, and the headers that say so.

    ``allowed``: ``None`` allows only the server's own origin (the Origin's host equals the Host
    header); ``"*"`` allows every origin; a string or a list names the allowed origins; a callable
    decides per origin. An empty list turns CORS handling off altogether (no checks, no headers),
    for servers behind a proxy that does it. Requests without an Origin header (non-browser clients)
    are always allowed. The same check applies to WebSocket upgrades, which browsers send cross-site
    without any preflight (cross-site WebSocket hijacking).
    """

    __slots__ = ("_any", "_check", "_origins", "_with_environ", "credentials", "enabled")

    def __init__(self, allowed: str | Sequence[str] | OriginCheck | None, credentials: bool = True) -> None:
        self.credentials = credentials
        self.enabled = True
        self._any = False
        self._origins: frozenset[str] = frozenset()
        self._check: Callable[..., Any] | None = None
        self._with_environ = False
        if allowed is None:
            pass
        elif allowed == "*":
            self._any = True
        elif isinstance(allowed, str):
            self._origins = frozenset([allowed.rstrip("/")])
        elif callable(allowed):
            self._check = allowed
            self._with_environ = _positional_count(allowed) >= 2
        else:
            origins = list(allowed)
            if "*" in origins:
                self._any = True
            elif not origins:
                self.enabled = False
            self._origins = frozenset(o.rstrip("/") for o in origins)

    def describe(self) -> str:
        if not self.enabled:
            return "CORS off (no origin checks, no headers)"
        if self._any:
            return "any origin"
        if self._check is not None:
            return f"origins decided by {getattr(self._check, '__name__', repr(self._check))}"
        if self._origins:
            return "origins " + ", ".join(sorted(self._origins))
        return "same origin only"

    def allows(self, origin: str | None, host: str | None,
               environ: Callable[[], dict[str, Any]] | None = None) -> bool:
        if not self.enabled or origin is None:
            return True
        if self._any:
            return True
        if self._check is not None:
            if self._with_environ:  # python-engineio's (origin, environ)
                return bool(self._check(origin, environ() if environ is not None else {}))
            return bool(self._check(origin))
        if self._origins:
            return origin.rstrip("/") in self._origins
        # same origin only: compare the Origin's authority with the Host header
        authority = origin.split("://", 1)[-1].rstrip("/")
        return host is not None and authority.lower() == host.lower()

    def headers(self, origin: str | None) -> list[tuple[str, str]]:
        """The CORS headers for an allowed request (also put on error responses)."""
        if not self.enabled or origin is None:
            return []
        headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def preflight_headers(self, origin: str | None, request_headers: str | None) -> list[tuple[str, str]]:
        headers = self.headers(origin)
        if headers:
            headers.append(("Access-Control-Allow-Methods", "OPTIONS, GET, POST"))
            if request_headers:
                headers.append(("Access-Control-Allow-Headers", request_headers))
            headers.append(("Access-Control-Max-Age", "86400"))
        return headers


def compress_body(body: bytes, accept_encoding: str | None, threshold: int) -> tuple[bytes, str | None]:
    """gzip or deflate a polling body over ``threshold`` bytes when the client accepts it."""
    if not accept_encoding or len(body) < threshold:
        return body, None
    accepted = {part.split(";", 1)[0].strip().lower() for part in accept_encoding.split(",")}
    if "gzip" in accepted:
        return gzip.compress(body, compresslevel=6, mtime=0), "gzip"
    if "deflate" in accepted:
        return zlib.compress(body, 6), "deflate"
    return body, None
