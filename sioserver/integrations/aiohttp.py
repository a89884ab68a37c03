"""Serve an Engine.IO (or Socket.IO) server on an aiohttp ``web.Application``."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError
from aiohttp.http_exceptions import ContentLengthError, HttpProcessingError

from ..engine.http import BodyTooLarge, HttpResponse, IncompleteBody
from ..engine.server import EngineServer
from ..engine.websocket import WebSocketConfig, WebSocketConnection, WebSocketHandler
from .aiohttp_ws import upgrade_websocket

if TYPE_CHECKING:
    from ..server.server import AsyncServer

__all__ = ["AiohttpRequest", "HttpErrorLogger", "attach", "attach_server", "make_handler"]


class AiohttpRequest:
    """An aiohttp request as the engine's :class:`~sioserver.engine.http.HttpRequest`."""

    __slots__ = ("_environ", "request", "takeover")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.takeover: web.StreamResponse | None = None
        self._environ: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    @property
    def remote_addr(self) -> str:
        return self.request.remote or ""

    def environ(self) -> dict[str, Any]:
        if self._environ is None:
            request = self.request
            env: dict[str, Any] = {
                "REQUEST_METHOD": request.method,
                "PATH_INFO": request.path,
                "QUERY_STRING": request.query_string,
                "RAW_URI": request.raw_path,
                "SERVER_PROTOCOL": "HTTP/%d.%d" % request.version,
                "REMOTE_ADDR": request.remote or "",
                "wsgi.url_scheme": request.scheme,
                "aiohttp.request": request,
            }
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if isinstance(peer, tuple) and len(peer) >= 2:
                env["REMOTE_PORT"] = str(peer[1])
            for name, value in request.headers.items():
                key = name.upper().replace("-", "_")
                if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    env[key] = value
                else:
                    key = sys.intern("HTTP_" + key)  # one copy of each name for every idle connection
                    env[key] = f"{env[key]},{value}" if key in env else value
            self._environ = env
        return self._environ

    async def read_body(self, limit: int, timeout: float) -> bytes:
        request = self.request
        length = request.content_length
        if length is not None and length > limit:
            raise BodyTooLarge(length)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                while True:
                    chunk = await request.content.readany()
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(size)
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise IncompleteBody(f"{size} bytes in {timeout}s, body not complete") from exc
        except (ClientPayloadError, ContentLengthError, ConnectionResetError, asyncio.IncompleteReadError) as exc:
            raise IncompleteBody(str(exc)) from exc
        if length is not None and size != length:
            raise IncompleteBody(f"{size} of {length} bytes")
        return b"".join(chunks)

    def release(self) -> None:
        """The handshake is over: the session keeps its environ, but not aiohttp's request (about 4 KB
        per connection with everything it holds): ``environ["aiohttp.request"]`` is there until the
        connect handler has run (for Socket.IO: the first namespace's)."""
        if self._environ is not None:
            self._environ.pop("aiohttp.request", None)

    def parked(self) -> None:
        """A parked GET's client going away is seen by the connection itself: nothing to start."""

    def is_disconnected(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    def upgrade_websocket(
        self, handler: WebSocketHandler, config: WebSocketConfig, extra_headers: Sequence[tuple[str, str]]
    ) -> WebSocketConnection:
        conn, response = upgrade_websocket(self.request, handler, config, extra_headers)
        self.takeover = response
        return conn


def make_handler(server: EngineServer) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        req = AiohttpRequest(request)
        response = await server.handle_request(req)
        if response is None:
            if req.takeover is None:  # pragma: no cover - the engine only returns None after an upgrade
                raise web.HTTPInternalServerError()
            return req.takeover
        return web.Response(status=response.status, body=response.body, headers=response.headers)

    return handle


def attach(server: EngineServer, app: web.Application, path: str = "engine.io",
           shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
    """Route ``/<path>/`` (with and without the trailing slash) of ``app`` to ``server``.

    aiohttp's shutdown (SIGTERM under ``web.run_app``) calls ``shutdown`` (default: the engine's)."""
    prefix = "/" + path.strip("/")
    handler = make_handler(server)
    app.router.add_route("*", prefix + "/", handler)
    app.router.add_route("*", prefix, handler)
    taken = {route.resource.canonical for route in app.router.routes()
             if route.method == "GET" and route.resource is not None}
    for endpoint, answer in server.endpoints().items():
        if endpoint in taken:
            server.logger.info("the app serves GET %s itself: sioserver leaves it alone", endpoint)
            continue

        async def serve(_: web.Request, answer: Callable[[], HttpResponse] = answer) -> web.Response:
            response = answer()
            return web.Response(status=response.status, body=response.body, headers=response.headers)

        app.router.add_get(endpoint, serve)

    async def on_startup(_: web.Application) -> None:
        server.logger.info("sioserver at %s/: %s", prefix, server.describe())

    async def on_shutdown(_: web.Application) -> None:
        await (shutdown() if shutdown is not None else server.shutdown())

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)


def attach_server(sio: AsyncServer, app: web.Application, path: str = "socket.io") -> None:
    """Serve a Socket.IO server on ``app`` at ``/<path>/`` (what ``sio.attach(app)`` does).

    The registered namespaces are created at once; their adapters start on the app's startup (a
    cluster adapter needs the running loop); the app's shutdown runs ``sio.shutdown(shutdown_grace)``
    and its cleanup closes the adapters of every namespace, including those made while serving.
    """
    sio.prepare()
    attach(sio.eio, app, path, shutdown=lambda: sio.shutdown(sio.shutdown_grace))

    async def start_adapters(_: web.Application) -> None:
        await sio.startup()

    async def close_adapters(_: web.Application) -> None:
        await sio.close_adapters()

    app.on_startup.append(start_adapters)
    app.on_cleanup.append(close_adapters)


class HttpErrorLogger:
    """The logger for aiohttp's request handlers (``web.run_app(app, logger=HttpErrorLogger())``).

    aiohttp reports a malformed request (bad request line, oversize header, bad chunking, TLS bytes on
    the plain port...) as ``ERROR`` with a traceback, or at ``DEBUG`` when it is a connection's first
    request with a bad method: anyone could fill the logs, or be refused unseen. Here each becomes
    one ``INFO`` line naming the peer and the reason; everything else passes through unchanged.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("aiohttp.server")
        self._refusals = logging.getLogger("sioserver.http")

    def _refused(self, msg: object, args: tuple[Any, ...], exc_info: Any) -> bool:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if msg != "Error handling request from %s" or not isinstance(exc, HttpProcessingError):
            return False
        reason = exc.message if isinstance(exc.message, str) else exc.__class__.__name__
        if len(reason) > 200:
            reason = reason[:200] + "..."
        self._refusals.info("refused a malformed HTTP request from %s: %s (%s)", args[0] if args else "?",
                            reason.replace("\n", " "), exc.__class__.__name__)
        return True

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self._refused(msg, args, kwargs.get("exc_info")):
            self._logger.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self._refused(msg, args, kwargs.get("exc_info")):
            self._logger.exception(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)
