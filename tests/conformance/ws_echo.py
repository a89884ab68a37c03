"""A raw WebSocket echo server on sioserver's own WebSocket layer, for the Autobahn|Testsuite.

usage: python tests/conformance/ws_echo.py --port N [--host H] [--compression] [--threshold BYTES]

Echoes every message on any path (aiohttp app + sioserver.integrations.aiohttp_ws.upgrade_websocket).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--threshold", type=int, default=0, help="compress messages from this size on")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every protocol violation")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    config = WebSocketConfig(
        max_message_size=64 << 20,  # 9.* sends up to 16 MiB
        max_fragments=1 << 20,  # 9.3.1 sends 4 MiB in 64-byte fragments
        compression=args.compression,
        compression_threshold=args.threshold,
    )
    web.run_app(
        make_app(config),
        host=args.host,
        port=args.port,
        print=lambda *_: print(f"ws_echo on ws://{args.host}:{args.port}/", flush=True),
        access_log=None,
    )


if __name__ == "__main__":
    main()
