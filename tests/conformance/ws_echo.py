"""A raw WebSocket echo server on sioserver's own WebSocket layer, for the Autobahn|Testsuite.

usage: python tests/conformance/ws_echo.py --port N [--host H] [--compression] [--threshold BYTES] [--front run]

Echoes every message on any path: on aiohttp (sioserver.integrations.aiohttp_ws.upgrade_websocket), or with
``--front run`` on sioserver.run's own HTTP/1.1 front (its upgrade hands the socket to the same connection).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sioserver.engine.websocket import WebSocketConfig, WebSocketConnection
from sioserver.exceptions import HandshakeError
from sioserver.integrations.aiohttp_ws import upgrade_websocket


class Echo:
    def __init__(self) -> None:
        self.connections: set[WebSocketConnection] = set()

    def on_ws_message(self, conn: WebSocketConnection, data: str | bytes) -> None:
        conn.send(data)

    def on_ws_close(self, conn: WebSocketConnection, code: int, reason: str) -> None:
        self.connections.discard(conn)

    def on_ws_drain(self, conn: WebSocketConnection) -> None:
        pass


def make_app(config: WebSocketConfig) -> web.Application:
    echo = Echo()

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            conn, response = upgrade_websocket(request, echo, config)
        except HandshakeError as exc:
            return web.Response(status=exc.status, text=exc.reason + "\n", headers=exc.headers)
        echo.connections.add(conn)
        return response

    async def close_all(app: web.Application) -> None:
        for conn in list(echo.connections):
            conn.close(1001)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    app.on_shutdown.append(close_all)
    return app


class _EchoEngine:
    """What the HTTP/1.1 front asks of an engine, for an echo on every path."""

    body_timeout = 30.0
    logger = logging.getLogger("ws_echo")

    def __init__(self, config: WebSocketConfig) -> None:
        self.config = config
        self.max_http_buffer_size = config.max_message_size
        self.echo = Echo()

    def describe(self) -> str:
        return "WebSocket echo"

    async def handle_request(self, request: Any) -> Any:
        from sioserver.engine.http import HttpResponse

        try:
            conn = request.upgrade_websocket(self.echo, self.config, [])
        except HandshakeError as exc:
            return HttpResponse(exc.status, exc.reason.encode() + b"\n", list(exc.headers.items()))
        self.echo.connections.add(conn)
        return None

    async def shutdown(self) -> None:
        for conn in list(self.echo.connections):
            conn.close(1001)


async def serve_run(config: WebSocketConfig, host: str, port: int) -> None:
    from sioserver.integrations.http1 import Http1Server

    class EveryPath(frozenset[str]):  # every path is the "engine"'s: the echo answers them all
        def __contains__(self, path: object) -> bool:
            return True

    engine = _EchoEngine(config)
    front = Http1Server(engine)  # type: ignore[arg-type]
    front.prefixes = EveryPath()
    await front.start(host, port)
    print(f"ws_echo on ws://{host}:{port}/ (sioserver.run's front)", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await front.stop(engine.shutdown, timeout=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--threshold", type=int, default=0, help="compress messages from this size on")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every protocol violation")
    parser.add_argument("--front", choices=("aiohttp", "run"), default="aiohttp", help="the HTTP server in front")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    config = WebSocketConfig(
        max_message_size=64 << 20,  # 9.* sends up to 16 MiB
        max_fragments=1 << 20,  # 9.3.1 sends 4 MiB in 64-byte fragments
        compression=args.compression,
        compression_threshold=args.threshold,
    )
    if args.front == "run":
        asyncio.run(serve_run(config, args.host, args.port))
        return
    web.run_app(
        make_app(config),
        host=args.host,
        port=args.port,
        print=lambda *_: print(f"ws_echo on ws://{args.host}:{args.port}/", flush=True),
        access_log=None,
    )


if __name__ == "__main__":
    main()
