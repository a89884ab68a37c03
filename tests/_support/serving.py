"""Serving an aiohttp application for a test: in the test's own loop (``running``), or as the body of a
helper server script (``serve``: ``READY <port>`` on stdout once listening, until SIGTERM or SIGINT).

Helper scripts run as ``python tests/<suite>/<script>.py``; they put the repository on ``sys.path`` first
(``sys.path.insert(0, str(Path(__file__).resolve().parents[N]))``) to import this module.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web


async def _start(app: web.Application, host: str, port: int, reuse_port: bool, **runner_options: Any
                 ) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    if reuse_port:  # a server killed and started again on the same port: bind over TIME_WAIT
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site: web.BaseSite = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])


class AppServer:
    """An aiohttp application listening in this process: ``.port``, ``.url``, ``await .close()``."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def start(app: web.Application, *, host: str = "127.0.0.1", port: int = 0, **runner_options: Any) -> AppServer:
    """``app`` listening on host:port (a free port by default) in the running loop."""
    return AppServer(*await _start(app, host, port, False, **runner_options))


async def attached(sio: Any, **runner_options: Any) -> AppServer:
    """A server object (``sio.attach(app)``: sioserver's or python-socketio's) on a fresh aiohttp application,
    listening on a free port."""
    app = web.Application()
    sio.attach(app)
    return await start(app, **runner_options)


@contextlib.asynccontextmanager
async def running(app: web.Application, *, host: str = "127.0.0.1", port: int = 0,
                  **runner_options: Any) -> AsyncIterator[AppServer]:
    """``async with running(app) as server``: ``start()``, closed on the way out."""
    server = await start(app, host=host, port=port, **runner_options)
    try:
        yield server
    finally:
        await server.close()


async def serve(app: web.Application, *, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False,
                before_ready: Callable[[int], Awaitable[None]] | None = None,
                after_ready: Callable[[int], None] | None = None,
                before_cleanup: Callable[[], Awaitable[None]] | None = None,
                shutdown_timeout: float = 0.5, **runner_options: Any) -> None:
    """Listen, await ``before_ready(port)`` (e.g. the adapter's subscriptions), print ``READY <port>``, call
    ``after_ready(port)``; on SIGTERM or SIGINT await ``before_cleanup()`` and stop (open long-polls and
    WebSockets are cut after ``shutdown_timeout``)."""
    runner_options.setdefault("handle_signals", False)
    runner_options.setdefault("access_log", None)
    runner, bound = await _start(app, host, port, reuse_port, shutdown_timeout=shutdown_timeout, **runner_options)
    if before_ready is not None:
        await before_ready(bound)
    print(f"READY {bound}", flush=True)
    if after_ready is not None:
        after_ready(bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            if before_cleanup is not None:
                await before_cleanup()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner.cleanup(), timeout=shutdown_timeout + 1.0)


def server_arguments(description: str | None) -> argparse.ArgumentParser:
    """The flags every helper server script takes: --port (0: a free one), --host, --transports (a comma
    list), --ping-interval and --ping-timeout (seconds)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--transports", type=lambda s: [t.strip() for t in s.split(",") if t.strip()],
                   default=["polling", "websocket"])
    p.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    p.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    return p


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)``; Ctrl-C ends it quietly."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main)
