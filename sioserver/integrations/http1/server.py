"""The HTTP/1.1 server of ``sioserver.run``: routing, the deadline sweep, start and graceful stop.

``/<path>`` and ``/<path>/`` go to the Engine.IO server (as with ``attach()`` on aiohttp); any other
path to the static files (python-socketio's ``static_files`` mapping), then to the ASGI app
(``other_asgi_app``: HTTP requests as ``http`` scopes, WebSocket upgrades as ``websocket`` scopes), else
404.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...engine.http import HttpResponse
from ...engine.server import EngineServer
from ...engine.websocket import WebSocketConfig
from .answering import Answering
from .asgi import Lifespan, serve_asgi
from .asgi_ws import serve_asgi_websocket
from .config import HttpConfig
from .connection import HttpConnection
from .request import Http1Request, date_header
from .static import StaticFiles

__all__ = ["Http1Server"]

log = logging.getLogger("sioserver.http")

ASGIApp = Callable[..., Awaitable[None]]
#: a front's own GET route: the request -> the answer (a worker's ``/metrics`` of the whole group)
Route = Callable[[Http1Request], Awaitable[HttpResponse]]


class Http1Server:
    """Serves one Engine.IO (or Socket.IO) server, static files and an ASGI app on HTTP/1.1."""

    def __init__(
        self,
        engine: EngineServer | None,
        path: str = "socket.io",
        *,
        config: HttpConfig | None = None,
        static_files: dict[str, Any] | None = None,
        other_asgi_app: ASGIApp | None = None,
        routes: dict[str, Route] | None = None,
    ) -> None:
        self.engine = engine
        #: GET paths this front answers itself, before the engine's endpoints (which they may replace)
        self.routes = routes or {}
        self.config = config or HttpConfig()
        prefix = "/" + path.strip("/")
        self.prefixes = frozenset([prefix, prefix + "/"]) if engine is not None else frozenset()
        self.prefix = prefix
        self.static = StaticFiles(static_files) if static_files else None
        self.asgi_app = other_asgi_app
        self.lifespan = Lifespan(other_asgi_app) if other_asgi_app is not None else None
        #: WebSockets of the ASGI app (outside the Engine.IO path): its messages are bounded like bodies
        self.ws_config = WebSocketConfig(max_message_size=self.config.max_body_size)
        self.engine_body_limit = engine.max_http_buffer_size if engine is not None else 0
        self.engine_body_timeout = engine.body_timeout if engine is not None else self.config.body_timeout
        self.connections: set[HttpConnection] = set()
        self.stats: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        smallest = min(self.config.head_timeout, self.config.keepalive_timeout, self.config.body_timeout,
                       self.engine_body_timeout, self.config.linger)
        self._sweep_interval = max(0.02, min(0.5, smallest / 10))
        #: the loop's time at the last sweep (or connection): deadlines are set from it, so a request
        #: costs no clock read; they fire within one sweep interval of their due time
        self.clock = 0.0
        self._servers: list[asyncio.Server] = []
        #: connections with responses held until the end of this turn of the loop (HttpConnection._write)
        self._held: list[Answering] = []
        #: connections whose parked GET is to be answered at the end of this turn (:meth:`hold_turn`)
        self._woken: list[Answering] = []
        self._flush: asyncio.Handle | None = None

    # ------------------------------------------------------------------ for the connections

    def now(self) -> float:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time()

    def connection_made(self, conn: HttpConnection) -> None:
        self.connections.add(conn)
        self.stats["connections"] += 1
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self.clock = loop.time()
        if self._sweeper is None:
            date_header.get()
            self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    def connection_lost(self, conn: HttpConnection) -> None:
        self.connections.discard(conn)

    def hold_turn(self) -> None:
        """Answer the connections in ``_woken`` (their parked GET is to be answered, with what else the
        session is sent in this turn) and write what the connections in ``_held`` hold, once the callbacks
        already scheduled have run: one ``call_soon`` per turn, not per response. A connection appends
        itself to either list and calls this when ``_flush`` is None."""
        loop = self._loop or asyncio.get_running_loop()
        self._flush = loop.call_soon(self._flush_held)

    def _flush_held(self) -> None:
        woken = self._woken
        if woken:
            self._woken = []
            for conn in woken:
                conn.answer_parked()  # holds its answer: written below
        self._flush = None
        held, self._held = self._held, []
        for conn in held:
            conn.flush()

    def _sweep(self) -> None:
        """One timer for every connection's deadline (head, body, keep-alive, linger)."""
        self._sweeper = None
        now = self.clock = self.now()
        date_header.get()
        for conn in list(self.connections):
            if conn.deadline <= now:
                conn.on_deadline()
        if self.connections:
            assert self._loop is not None
            self._sweeper = self._loop.call_later(self._sweep_interval, self._sweep)

    async def handle_other(self, req: Http1Request) -> None:
        """Everything that is not Engine.IO: the server's own endpoints (health, metrics), a static file,
        the ASGI app, or 404."""
        conn = req.conn
        if req.method in ("GET", "HEAD") and not req.upgrade:
            route = self.routes.get(req.path) if self.routes else None
            if route is not None:
                response = await route(req)
                conn.respond(response.status, response.headers, b"" if req.method == "HEAD" else response.body)
                return
            answer = self.engine.endpoints().get(req.path) if self.engine is not None else None  # /health, /metrics
            if answer is not None:
                response = answer()
                conn.respond(response.status, response.headers, b"" if req.method == "HEAD" else response.body)
                return
        if req.upgrade:
            if self.asgi_app is None:
                conn.respond(404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found")
            else:
                await serve_asgi_websocket(self.asgi_app, req, self.ws_config,
                                           self.lifespan.state if self.lifespan else None)
            return
        if self.static is not None and await self.static.serve(req):
            return
        if self.asgi_app is not None:
            await serve_asgi(self.asgi_app, req, self.lifespan.state if self.lifespan else None)
            return
        conn.respond(404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found")

    # ------------------------------------------------------------------ life cycle

    async def start(self, host: str | None = "127.0.0.1", port: int = 8000,
                    sock: socket.socket | None = None, unix_path: str | None = None,
                    also: Sequence[socket.socket] = ()) -> list[tuple[str, int]]:
        """Listen (and run the ASGI app's lifespan startup); returns the bound addresses. ``also``: more
        listening sockets served the same way (a worker's door for forwarded requests)."""
        self._loop = asyncio.get_running_loop()
        if self.lifespan is not None:
            await self.lifespan.startup()
        if sock is not None:
            server = await self._loop.create_server(lambda: HttpConnection(self), sock=sock,
                                                    backlog=self.config.backlog)
        else:
            server = await self._loop.create_server(lambda: HttpConnection(self), host, port,
                                                    backlog=self.config.backlog, reuse_address=True)
        self._servers.append(server)
        if unix_path is not None:  # the door the other workers forward their requests for our sessions to
            self._servers.append(await self._loop.create_unix_server(lambda: HttpConnection(self), unix_path,
                                                                     backlog=self.config.backlog))
        for extra in also:
            self._servers.append(await self._loop.create_server(lambda: HttpConnection(self), sock=extra,
                                                                backlog=self.config.backlog))
        addresses = []
        for s in server.sockets:
            name = s.getsockname()
            addresses.append((str(name[0]), int(name[1])))
        if self.engine is not None:
            self.engine.logger.info("sioserver at %s/: %s", self.prefix, self.engine.describe())
        return addresses

    async def stop(self, engine_shutdown: Callable[[], Awaitable[None]] | None = None,
                   timeout: float = 5.0) -> None:
        """Stop listening; shut the Engine.IO server down (its sessions end, parked polls are
        answered); close idle connections; give requests in progress up to ``timeout`` seconds;
        then close what is left and run the ASGI app's lifespan shutdown."""
        for server in self._servers:
            server.close()
        if engine_shutdown is not None:
            await engine_shutdown()
        elif self.engine is not None:
            await self.engine.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            busy = [conn for conn in list(self.connections) if not conn.close_idle()]
            if not busy or loop.time() >= deadline:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.lifespan is not None:
            await self.lifespan.shutdown()
