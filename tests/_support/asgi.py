"""Serving an ASGI app under a real ASGI server for a test: uvicorn (its ``websockets`` or ``wsproto``
WebSocket implementation) or hypercorn, in the test's loop (``running``) or as the body of a helper
server script (``serve``: ``READY <port>`` on stdout once listening, until SIGTERM or SIGINT).

The listening socket is bound here (port 0: a free one) and handed to the server, so the port is known
before the server runs and a client that connects early waits in the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import aiohttp
from yarl import URL

#: the ASGI servers the fronts are tested under: name -> (server, WebSocket implementation)
SERVERS: dict[str, tuple[str, str]] = {
    "uvicorn": ("uvicorn", "websockets"),
    "uvicorn-wsproto": ("uvicorn", "wsproto"),
    "hypercorn": ("hypercorn", ""),
}


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_on(app: Any, server: str, sock: socket.socket, stop: asyncio.Event, *,
                   proxy_headers: bool = False, lifespan: Literal["auto", "on", "off"] = "on") -> None:
    """Serve ``app`` on ``sock`` under ``server`` (a key of :data:`SERVERS`) until ``stop`` is set.

    uvicorn installs its own SIGTERM/SIGINT handlers (``signal.signal``) while it serves, as it does from
    the command line; hypercorn is given ``stop`` as its shutdown trigger."""
    kind, ws = SERVERS[server]
    if kind == "uvicorn":
        import uvicorn

        config = uvicorn.Config(app, ws=ws, lifespan=lifespan, log_level="warning", proxy_headers=proxy_headers,
                                forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=5)
        userver = uvicorn.Server(config)

        async def until_stop() -> None:
            await stop.wait()
            userver.should_exit = True

        watcher = asyncio.ensure_future(until_stop())
        try:
            await userver.serve(sockets=[sock])
        finally:
            watcher.cancel()
        return
    import hypercorn.asyncio
    import hypercorn.config

    hconfig = hypercorn.config.Config()
    hconfig.bind = [f"fd://{sock.fileno()}"]
    hconfig.graceful_timeout = 3.0
    hconfig.loglevel = "WARNING"
    hconfig.accesslog = None
    await hypercorn.asyncio.serve(app, hconfig, shutdown_trigger=stop.wait)


class AsgiServer:
    """An ASGI app served in this process: ``.port``, ``.url``, ``await .close()``."""

    def __init__(self, task: asyncio.Task[None], stop: asyncio.Event, port: int) -> None:
        self.task = task
        self.stop = stop
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 10)


async def start(app: Any, server: str = "uvicorn", **options: Any) -> AsgiServer:
    sock = listening_socket()
    stop = asyncio.Event()
    task = asyncio.ensure_future(serve_on(app, server, sock, stop, **options))
    return AsgiServer(task, stop, sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running(app: Any, server: str = "uvicorn", **options: Any) -> AsyncIterator[AsgiServer]:
    served = await start(app, server, **options)
    try:
        yield served
    finally:
        await served.close()


class UrlClient:
    """The part of aiohttp's ``TestClient`` the tests use, for a server at ``127.0.0.1:port``."""

    def __init__(self, port: int) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.session = aiohttp.ClientSession()

    def make_url(self, path: str) -> URL:
        return URL(f"http://{self.host}:{self.port}{path}")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.session.request(method, self.make_url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.session.get(self.make_url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.session.post(self.make_url(path), **kwargs)

    def options(self, path: str, **kwargs: Any) -> Any:
        return self.session.options(self.make_url(path), **kwargs)

    def ws_connect(self, path: str, **kwargs: Any) -> Any:
        return self.session.ws_connect(self.make_url(path), **kwargs)

    async def close(self) -> None:
        await self.session.close()


async def serve(app: Any, server: str, *, host: str = "127.0.0.1", port: int = 0,
                before_ready: Callable[[int], Awaitable[None]] | None = None,
                after_ready: Callable[[int], None] | None = None, proxy_headers: bool = False) -> None:
    """A helper script's body: print ``READY <port>`` once listening, serve until SIGTERM/SIGINT."""
    import signal

    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if SERVERS[server][0] == "hypercorn":  # uvicorn installs its own handlers
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    if before_ready is not None:
        await before_ready(bound)
    print(f"READY {bound}", flush=True)
    if after_ready is not None:
        after_ready(bound)
    await serve_on(app, server, sock, stop, proxy_headers=proxy_headers)
