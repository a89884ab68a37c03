"""``sioserver.run(sio)`` and ``python -m sioserver module:sio``: a server with nothing else to set up.

``run`` serves through sioserver's own HTTP/1.1 front (:mod:`sioserver.integrations.http1`); with
``front="aiohttp"`` (or an aiohttp ``app=``) it serves through aiohttp's ``web.run_app`` and
``attach()`` instead, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from .http1 import Http1Server, HttpConfig
from .http1.server import Route
from .nodes import ClusterNode, cluster_node

__all__ = ["load", "run", "serve"]

log = logging.getLogger("sioserver")


def _use_uvloop() -> bool:
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def _default_path(sio: Any) -> str:
    return "engine.io" if sio.__class__.__module__.startswith("sioserver.engineio") else "socket.io"


def _hooks(sio: Any) -> tuple[Any, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """The engine of ``sio`` (a Socket.IO or an Engine.IO server), what starts it, what stops it."""
    if hasattr(sio, "eio"):  # Socket.IO: the registered namespaces exist and their adapters start
        async def stop() -> None:
            await sio.shutdown(sio.shutdown_grace)
        return sio.eio, sio.startup, stop

    async def nothing() -> None:
        return None

    async def stop_engine() -> None:
        await sio.shutdown()
    return sio, getattr(sio, "startup", nothing), stop_engine


async def serve(
    sio: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    socketio_path: str | None = None,
    static_files: dict[str, Any] | None = None,
    other_asgi_app: Any = None,
    http: HttpConfig | None = None,
    shutdown_timeout: float = 5.0,
    stop: asyncio.Event | None = None,
    ready: Callable[[list[tuple[str, int]]], None] | None = None,
    sock: Any = None,
    unix_path: str | None = None,
    advertise: str | None = None,
    node: ClusterNode | None = None,
    routes: dict[str, Route] | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM when ``stop`` is None), then stop gracefully:
    new handshakes get 503, sessions end with "server shutting down", requests in progress get up to
    ``shutdown_timeout`` seconds. ``sock`` is a listening socket to serve on instead of ``host:port``;
    ``ready`` is called with the bound addresses once clients may connect; ``unix_path``: also serve on
    that Unix socket (a worker of ``--workers``, for the others' forwarded requests).

    With a Redis adapter the server is a node of a cluster that forwards requests for each other's
    sessions (:mod:`sioserver.integrations.nodes`); ``advertise`` (``host[:port]``, else the
    ``SIOSERVER_ADVERTISE`` environment variable, else the bound address) is where the others reach it;
    ``node`` is a worker's own; ``routes``: GET paths the front answers itself (a worker's ``/metrics``)."""
    engine, start, shutdown = _hooks(sio)
    path = socketio_path if socketio_path is not None else _default_path(sio)
    if node is None and engine.forward is None and path:
        node = cluster_node(sio, engine, advertise)
    front = Http1Server(engine if path else None, path or "socket.io", config=http, static_files=static_files,
                        other_asgi_app=other_asgi_app, routes=routes)
    loop = asyncio.get_running_loop()
    own_stop = stop is None
    stop = stop or asyncio.Event()
    if own_stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        await start()
        also = node.prepare(host) if node is not None else []
        addresses = await front.start(host, port, sock=sock, unix_path=unix_path, also=also)
        if node is not None:
            await node.start(addresses)
        if ready is not None:
            ready(addresses)
        await stop.wait()
    finally:
        log.info("shutting down")
        await front.stop(shutdown, timeout=shutdown_timeout)
        if node is not None:
            await node.close()
        if own_stop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def run(sio: Any, host: str = "127.0.0.1", port: int = 8000, *, socketio_path: str | None = None,
        static_files: dict[str, Any] | None = None, other_asgi_app: Any = None, http: HttpConfig | None = None,
        front: str = "http1", app: Any = None, uvloop: bool = True, access_log: bool = False,
        shutdown_timeout: float = 5.0, workers: int | None = None, advertise: str | None = None) -> None:
    """Serve ``sio`` (a Socket.IO or Engine.IO server) on ``host:port`` until SIGINT/SIGTERM.

    ``workers=N``: N processes share the port (``SO_REUSEPORT``) under a supervisor that restarts the
    ones that die; they form a cluster over local sockets (see :mod:`sioserver.integrations.workers`).

    With a Redis adapter, every process is a node of one cluster and any node serves any session's
    requests, forwarding them to the session's own (:mod:`sioserver.integrations.nodes`): no sticky
    sessions are needed. ``advertise="host[:port]"`` (or ``SIOSERVER_ADVERTISE``) is where the other
    nodes reach this one, when not at the address it binds (``0.0.0.0``: the machine's primary IP).

    ``static_files`` is python-socketio's mapping (URL path -> file, directory or
    ``{"filename", "content_type"}``); ``other_asgi_app`` answers every other path (else 404);
    ``http`` sets the HTTP limits and deadlines. ``front="aiohttp"`` (or passing an aiohttp
    ``app``) serves through aiohttp instead. uvloop is used when installed
    (``pip install sioserver[uvloop]``). ``port=0`` picks a free port; the line
    ``sioserver listening on http://HOST:PORT`` on stdout says which.
    """
    if front not in ("http1", "aiohttp"):
        raise ValueError(f"front must be 'http1' or 'aiohttp', not {front!r}")
    if workers is not None and (front == "aiohttp" or app is not None):
        raise ValueError("workers= needs the http1 front")
    if workers is None and uvloop and _use_uvloop():
        log.info("using uvloop")
    if front == "aiohttp" or app is not None:
        if static_files or other_asgi_app is not None:
            raise ValueError("static_files and other_asgi_app need the http1 front")
        _run_aiohttp(sio, host, port, app=app, socketio_path=socketio_path, access_log=access_log)
        return

    if workers is not None:
        from .workers import run_workers  # noqa: PLC0415 - only for several processes

        run_workers(sio, host, port, workers, uvloop=uvloop, socketio_path=socketio_path, static_files=static_files,
                    other_asgi_app=other_asgi_app, http=http, shutdown_timeout=shutdown_timeout, advertise=advertise)
        return

    def ready(addresses: list[tuple[str, int]]) -> None:
        shown_host, shown_port = addresses[0] if addresses else (host, port)
        shown = f"[{shown_host}]" if ":" in shown_host else shown_host
        print(f"sioserver listening on http://{shown}:{shown_port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sio, host, port, socketio_path=socketio_path, static_files=static_files,
                          other_asgi_app=other_asgi_app, http=http, shutdown_timeout=shutdown_timeout,
                          ready=ready, advertise=advertise))


def _run_aiohttp(sio: Any, host: str, port: int, *, app: Any, socketio_path: str | None, access_log: bool) -> None:
    from aiohttp import web  # noqa: PLC0415 - only this front needs it

    from .aiohttp import HttpErrorLogger  # noqa: PLC0415

    # One loop, current before attach() (which starts the namespaces' adapter tasks) and then run:
    # without it uvloop's policy has no current loop, and asyncio's would schedule them on a loop
    # that never runs.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = app or web.Application()
    if socketio_path is None:
        socketio_path = _default_path(sio)
    if socketio_path:
        if hasattr(sio, "eio"):
            sio.attach(app, socketio_path=socketio_path)
        else:
            sio.attach(app, engineio_path=socketio_path)
    print(f"sioserver listening on http://{host}:{port}", flush=True)
    web.run_app(app, host=host, port=port, handler_cancellation=True, print=None,
                access_log=log if access_log else None, handle_signals=True,
                shutdown_timeout=5, loop=loop, logger=HttpErrorLogger())


def load(target: str) -> Any:
    """``package.module:attribute`` -> the object."""
    module_name, _, attr = target.partition(":")
    sys.path.insert(0, ".")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in (attr or "sio").split("."):
        obj = getattr(obj, part)
    return obj
