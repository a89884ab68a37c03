"""``sioserver.ASGIApp`` and ``sioserver.engineio.ASGIApp``: python-socketio's and python-engineio's ASGI
apps, on sioserver's engine.

Routing, in order: ``/<socketio_path>`` and ``/<socketio_path>/`` (``http`` and ``websocket`` scopes) go
to the engine; ``GET`` of the server's own endpoints (``/health``, ``/metrics`` when on); the static
files; ``other_asgi_app``; else 404 (a WebSocket is refused, which the ASGI server answers 403). A
mount's ``root_path`` is taken off the path first.

The ``lifespan`` scope starts the server (its namespaces' adapters) and ``on_startup``, then
``other_asgi_app``'s own lifespan with the ASGI server's state; at shutdown it runs the graceful
``shutdown()``, ``on_shutdown`` and the app's lifespan shutdown. Without a lifespan (``uvicorn
--lifespan off``) the server starts on its first request.

Stopping: uvicorn (and hypercorn) wait for every response in progress before they send the lifespan
shutdown, parked long-polls included, so a shutdown hook alone would run only once every poll timed
out. At startup the app chains itself onto the ASGI server's SIGTERM/SIGINT handler (where that
server installed one with ``signal.signal``, as uvicorn does, or with asyncio's
``add_signal_handler``, as hypercorn does): the signal starts the graceful shutdown at once, so
long-polls are answered, WebSockets get their close and clients are told "server shutting down".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ...engine.server import EngineServer
from ..http1.asgi import Lifespan
from ..http1.static import StaticFiles
from .request import AsgiRequest, Message, Receive, Send

__all__ = ["ASGIApp", "EngineASGIApp"]

log = logging.getLogger("sioserver.http")

_NOT_FOUND = (404, [(b"content-type", b"text/plain; charset=utf-8")], b"Not Found")
_header_cache: dict[tuple[str, str], tuple[bytes, bytes]] = {}


_headers_cache: dict[tuple[tuple[str, str], ...], list[tuple[bytes, bytes]]] = {}


def _encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """The engine's headers as ASGI's. Most responses carry one of a few header sets (a poll's
    content type and CORS headers): each set is encoded once (the ASGI servers only read the list)."""
    key = tuple(headers)
    found = _headers_cache.get(key)
    if found is not None:
        return found
    cache = _header_cache
    out = []
    for header in headers:
        raw = cache.get(header)
        if raw is None:
            raw = (header[0].lower().encode("latin-1"), header[1].encode("latin-1"))
            if len(cache) < 1024:
                cache[header] = raw
        out.append(raw)
    if len(_headers_cache) < 256:  # bounded: sets with per-request values (a cookie) are not kept for long
        _headers_cache[key] = out
    return out


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Front:
    """What both ASGI apps share: an engine, its start and stop, and the routing."""

    def __init__(self, server: Any, engine: EngineServer, path: str, other_asgi_app: Any,
                 static_files: dict[str, Any] | None, on_startup: Callable[[], Any] | None,
                 on_shutdown: Callable[[], Any] | None) -> None:
        self.server = server
        self.engine = engine
        self.other_asgi_app = other_asgi_app
        self.static_files = static_files
        self._static = StaticFiles(static_files) if static_files else None
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        prefix = "/" + path.strip("/")
        self.prefix = prefix
        self._prefixes = frozenset([prefix, prefix + "/"])
        self._started: asyncio.Future[None] | None = None
        self._ready = False  # the server has started (checked on every request)
        self._stopping: asyncio.Task[None] | None = None
        self._signals_chained = False

    # --------------------------------------------------------------------------- life cycle

    async def _server_startup(self) -> None:
        raise NotImplementedError

    async def _server_shutdown(self) -> None:
        raise NotImplementedError

    async def _server_close(self) -> None:
        """What the server keeps open after its shutdown (the adapters): closed last."""

    async def _ensure_started(self) -> None:
        started = self._started
        if started is None:
            started = self._started = asyncio.get_running_loop().create_future()
            try:
                await self._server_startup()
                self._chain_signals()
                self.engine.logger.info("sioserver at %s/ (ASGI): %s", self.prefix, self.engine.describe())
            except BaseException as exc:
                started.set_exception(exc)
                self._started = None
                raise
            started.set_result(None)
        elif not started.done():
            await asyncio.shield(started)

    def begin_stop(self) -> asyncio.Task[None]:
        """Start the graceful shutdown now (once): long-polls are answered, sessions end."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._server_shutdown())
        return self._stopping

    def _chain_signals(self) -> None:
        """Run :meth:`begin_stop` when the ASGI server's SIGTERM/SIGINT handler runs (see the module doc)."""
        if self._signals_chained or threading.current_thread() is not threading.main_thread():
            return
        self._signals_chained = True
        loop = asyncio.get_running_loop()

        def stop_soon() -> None:
            loop.call_soon_threadsafe(self.begin_stop)

        for sig in (signal.SIGTERM, signal.SIGINT):
            current = signal.getsignal(sig)
            handlers = getattr(loop, "_signal_handlers", None)  # asyncio's add_signal_handler table
            if isinstance(handlers, dict) and sig in handlers:
                handle = handlers[sig]
                callback, args = handle._callback, handle._args

                def via_loop(callback: Any = callback, args: Any = args) -> None:
                    stop_soon()
                    callback(*args)

                loop.add_signal_handler(sig, via_loop)
            elif callable(current) and current is not signal.default_int_handler:
                def via_signal(signum: int, frame: Any, previous: Any = current) -> None:
                    stop_soon()
                    previous(signum, frame)

                signal.signal(sig, via_signal)
            else:
                log.debug("no ASGI server handler for %s: sioserver stops at the lifespan shutdown", sig.name)

    async def _lifespan(self, scope: Message, receive: Receive, send: Send) -> None:
        other: Lifespan | None = None
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        try:
            await self._ensure_started()
            await _call(self.on_startup)
            if self.other_asgi_app is not None:
                state = scope.get("state")
                other = Lifespan(self.other_asgi_app, state if isinstance(state, dict) else None)
                await other.startup()
        except Exception as exc:
            log.exception("ASGI startup failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        try:
            await self.begin_stop()
            await _call(self.on_shutdown)
            if other is not None:
                await other.shutdown()
            await self._server_close()
        except Exception as exc:
            log.exception("ASGI shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    # --------------------------------------------------------------------------- requests

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if not self._ready:
            await self._ensure_started()
            self._ready = True
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if kind == "http":
            if path in self._prefixes:
                await self._engine_http(scope, receive, send)
                return
            method = scope["method"]
            if method in ("GET", "HEAD"):
                answer = self.engine.endpoints().get(path)  # /health, /metrics
                if answer is not None:
                    response = answer()
                    await _respond(send, response.status, _encode_headers(response.headers),
                                   b"" if method == "HEAD" else response.body)
                    return
            if self._static is not None:
                found = await self._static.answer(method, path, _header(scope, b"if-none-match"))
                if found is not None:
                    status, headers, body = found
                    await _respond(send, status, _encode_headers(headers), b"" if method == "HEAD" else body)
                    return
        elif kind == "websocket":
            if path in self._prefixes:
                await self._engine_websocket(scope, receive, send)
                return
        else:
            raise ValueError(f"sioserver's ASGIApp does not serve {kind!r} scopes")
        if self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "http":
            await _respond(send, *_NOT_FOUND)
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})  # refused: the server answers 403

    async def _engine_http(self, scope: Message, receive: Receive, send: Send) -> None:
        request = AsgiRequest(scope, receive, send)
        try:
            response = await self.engine.handle_request(request)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if request.gone and task is not None and task.uncancel() == 0:
                return  # the watcher cancelled the parked GET: its client is gone, nobody to answer
            raise
        finally:
            request.done()
        if response is None:  # pragma: no cover - an http scope never becomes a WebSocket
            await _respond(send, 500, [], b"")
            return
        await _respond(send, response.status, _encode_headers(response.headers), response.body)

    async def _engine_websocket(self, scope: Message, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        request = AsgiRequest(scope, receive, send)
        response = await self.engine.handle_request(request)
        if response is None and request.upgraded is not None:
            await request.upgraded.run(receive)
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):  # the engine's answer, as is
            status, headers, body = (response.status, response.headers, response.body) if response is not None \
                else (400, [], b"")
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": _encode_headers(headers)})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})  # the server answers 403


class ASGIApp(_Front):
    """A Socket.IO server as an ASGI app (python-socketio's ``socketio.ASGIApp``)::

        sio = sioserver.AsyncServer(cors_allowed_origins="*")
        app = sioserver.ASGIApp(sio, other_asgi_app=fastapi_app)   # uvicorn module:app
    """

    def __init__(self, socketio_server: Any, other_asgi_app: Any = None, static_files: dict[str, Any] | None = None,
                 socketio_path: str = "socket.io", on_startup: Callable[[], Any] | None = None,
                 on_shutdown: Callable[[], Any] | None = None) -> None:
        super().__init__(socketio_server, socketio_server.eio, socketio_path, other_asgi_app, static_files,
                         on_startup, on_shutdown)
        socketio_server.prepare()

    async def _server_startup(self) -> None:
        await self.server.startup()

    async def _server_shutdown(self) -> None:
        await self.server.shutdown(self.server.shutdown_grace)

    async def _server_close(self) -> None:
        await self.server.close_adapters()


class EngineASGIApp(_Front):
    """An Engine.IO server as an ASGI app (python-engineio's ``engineio.ASGIApp``)."""

    def __init__(self, engineio_server: Any, other_asgi_app: Any = None, static_files: dict[str, Any] | None = None,
                 engineio_path: str = "engine.io", on_startup: Callable[[], Any] | None = None,
                 on_shutdown: Callable[[], Any] | None = None) -> None:
        super().__init__(engineio_server, engineio_server, engineio_path, other_asgi_app, static_files,
                         on_startup, on_shutdown)

    async def _server_startup(self) -> None:
        startup = getattr(self.server, "startup", None)
        if startup is not None:
            await startup()

    async def _server_shutdown(self) -> None:
        await self.server.shutdown()


def _header(scope: Message, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _call(hook: Callable[[], Any] | None) -> None:
    if hook is None:
        return
    result = hook()
    if inspect.isawaitable(result):
        await result
