"""WebSocket requests outside the Engine.IO path, for the ASGI app: the ASGI ``websocket`` scope.

The app sees what an ASGI server gives it (spec 2.3): ``websocket.connect``, then ``websocket.receive``
messages, then ``websocket.disconnect`` with the peer's close code. ``websocket.accept`` answers the
handshake (101, with the app's subprotocol and headers) and hands the socket to sioserver's own RFC
6455 connection; ``websocket.close`` before accepting answers 403, after it closes with the app's
code. At most ``_QUEUE_HIGH`` received messages wait for the app: past that the socket is not read
until it catches up. An app that returns without closing closes with 1000 (1011 if it raised).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from ...engine.websocket import WebSocketConfig, WebSocketConnection
from ...exceptions import HandshakeError
from .request import Http1Request

__all__ = ["serve_asgi_websocket"]

log = logging.getLogger("sioserver.http")

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

_QUEUE_HIGH = 64
_QUEUE_LOW = 16


class _Inbox:
    """The connection's events, queued for the app's ``receive()``."""

    def __init__(self, request: Http1Request) -> None:
        self.request = request
        self.messages: deque[Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.paused = False

    def _push(self, message: Message) -> None:
        self.messages.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        transport = self.request.conn.transport
        if len(self.messages) >= _QUEUE_HIGH and not self.paused and transport is not None:
            self.paused = True
            transport.pause_reading()

    # WebSocketHandler
    def on_ws_message(self, conn: WebSocketConnection, data: str | bytes) -> None:
        if isinstance(data, str):
            self._push({"type": "websocket.receive", "text": data})
        else:
            self._push({"type": "websocket.receive", "bytes": data})

    def on_ws_drain(self, conn: WebSocketConnection) -> None:
        """The app's ``websocket.send`` does not wait for the transport: nothing to resume."""

    def on_ws_close(self, conn: WebSocketConnection, code: int, reason: str) -> None:
        self.end(code, reason)

    def end(self, code: int, reason: str) -> None:
        self.closed = True
        self._push({"type": "websocket.disconnect", "code": code, "reason": reason})

    async def get(self) -> Message:
        while not self.messages:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        message = self.messages.popleft()
        transport = self.request.conn.transport
        if self.paused and len(self.messages) <= _QUEUE_LOW and transport is not None and not self.closed:
            self.paused = False
            transport.resume_reading()
        return message


async def serve_asgi_websocket(app: ASGIApp, req: Http1Request, config: WebSocketConfig,
                               state: dict[str, Any] | None) -> None:
    conn = req.conn
    protocols = req.headers.get("sec-websocket-protocol")
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.version,
        "scheme": "ws",
        "path": unquote(req.path),
        "raw_path": req.path.encode("latin-1"),
        "query_string": req.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in req.headers.raw],
        "client": (conn.peer_host, conn.peer_port),
        "server": (conn.local_host, conn.local_port),
        "subprotocols": [p.strip() for p in protocols.split(",") if p.strip()] if protocols else [],
    }
    if state is not None:
        scope["state"] = dict(state)
    inbox = _Inbox(req)
    inbox.messages.append({"type": "websocket.connect"})
    ws: WebSocketConnection | None = None
    refused = False

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        nonlocal ws, refused
        kind = message["type"]
        if kind == "websocket.accept":
            if ws is not None or refused:
                raise RuntimeError("websocket.accept after the handshake was answered")
            headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                       for k, v in message.get("headers", ())]
            if message.get("subprotocol"):
                headers.append(("Sec-WebSocket-Protocol", str(message["subprotocol"])))
            try:
                ws = conn.upgrade_websocket(req, inbox, config, headers)
            except (HandshakeError, OSError) as exc:
                refused = True
                reason = exc.reason if isinstance(exc, HandshakeError) else "client gone"
                log.info("refused a WebSocket handshake from %s: %s", conn.peer_host, reason)
                conn.respond(400, [("Content-Type", "text/plain; charset=utf-8")], b"Bad Request")
                inbox.end(1006, reason)
        elif kind == "websocket.send":
            if ws is None:
                raise RuntimeError("websocket.send before websocket.accept")
            text = message.get("text")
            ws.send(text if text is not None else bytes(message.get("bytes") or b""))
        elif kind == "websocket.close":
            if ws is None:
                if not refused:
                    refused = True
                    conn.respond(403, [("Content-Type", "text/plain; charset=utf-8")], b"Forbidden")
                    inbox.end(1006, "refused")
            else:
                ws.close(int(message.get("code", 1000)), str(message.get("reason") or ""))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    failed = False
    try:
        await app(scope, receive, send)
    except Exception:
        failed = True
        log.exception("the ASGI app failed on a WebSocket from %s", conn.peer_host)
    finally:
        if ws is not None:
            ws.close(1011 if failed else 1000)
        elif not refused:
            conn.respond(500 if failed else 403, [("Content-Type", "text/plain; charset=utf-8")],
                         b"Internal Server Error" if failed else b"Forbidden")
