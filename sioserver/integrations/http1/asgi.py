"""The ASGI app of ``sioserver.run(other_asgi_app=...)``: HTTP requests and the lifespan protocol.

Requests outside the Engine.IO path that no static file answers go to the app, as an ASGI 3 ``http``
scope (spec 2.3). The body was read whole by the front, within ``HttpConfig.max_body_size``; it is
delivered as one ``http.request`` message. A response with a ``content-length`` header, or sent in one
body message, goes out as is; a streamed one is chunked (close-delimited for HTTP/1.0 clients). The
lifespan protocol runs at start and stop when the app speaks it; an app that does not (it raises on
the ``lifespan`` scope) is served all the same, as uvicorn's ``--lifespan auto`` does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from .request import Http1Request, date_header, status_line

__all__ = ["Lifespan", "serve_asgi"]

log = logging.getLogger("sioserver.http")

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


async def serve_asgi(app: ASGIApp, req: Http1Request, state: dict[str, Any] | None) -> None:
    conn = req.conn
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.version,
        "method": req.method,
        "scheme": "http",
        "path": unquote(req.path),
        "raw_path": req.path.encode("latin-1"),
        "query_string": req.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in req.headers.raw],
        "client": (conn.peer_host, conn.peer_port),
        "server": (conn.local_host, conn.local_port),
    }
    if state is not None:
        scope["state"] = dict(state)
    body_sent = False
    disconnected: asyncio.Future[None] | None = None
    started: Message | None = None
    streaming = False  # the head went out; body messages follow
    chunked = False
    done = False
    close = not req.keep_alive or conn.closing
    head_only = req.method == "HEAD"

    async def receive() -> Message:
        nonlocal body_sent, disconnected
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": req.body, "more_body": False}
        if disconnected is None:
            disconnected = asyncio.get_running_loop().create_future()
        if not conn.lost and not done:
            await disconnected  # the task is cancelled when the client goes away
        return {"type": "http.disconnect"}

    def head(extra: bytes) -> bytes:
        assert started is not None
        parts = [status_line(int(started["status"])), date_header.get()]
        for name, value in started.get("headers", ()):
            parts += [bytes(name), b": ", bytes(value), b"\r\n"]
        if close:
            parts.append(b"Connection: close\r\n")
        parts += [extra, b"\r\n"]
        return b"".join(parts)

    async def send(message: Message) -> None:
        nonlocal started, streaming, chunked, done, close
        kind = message["type"]
        if done or conn.lost:
            return
        if kind == "http.response.start":
            if started is not None:
                raise RuntimeError("http.response.start sent twice")
            started = message
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if started is None:
            raise RuntimeError("http.response.body before http.response.start")
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        names = {bytes(name).lower() for name, _ in started.get("headers", ())}
        status = int(started["status"])
        no_body = head_only or status in (204, 304) or status < 200
        if not streaming:
            streaming = True
            if b"content-length" in names or no_body:
                conn.write(head(b""))
            elif not more:
                conn.write(head(b"Content-Length: %d\r\n" % len(body)))
            elif req.version == "1.1":
                chunked = True
                conn.write(head(b"Transfer-Encoding: chunked\r\n"))
            else:
                close = True
                conn.write(head(b""))
        if body and not no_body:
            conn.write(b"%x\r\n%s\r\n" % (len(body), body) if chunked else body)
        if not more:
            if chunked:
                conn.write(b"0\r\n\r\n")
            done = True
            if disconnected is not None and not disconnected.done():
                disconnected.set_result(None)
            conn.finish(close)

    try:
        await app(scope, receive, send)
    finally:
        if not done and not conn.lost:
            if not streaming:
                conn.respond(500, [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error")
            else:  # the app stopped mid-response: the client must not take it for complete
                done = True
                conn.finish(True)
        if disconnected is not None and not disconnected.done():
            disconnected.set_result(None)


class Lifespan:
    """Runs an ASGI app's ``lifespan`` scope: startup before serving, shutdown after."""

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        self.app = app
        #: the lifespan state (ASGI's ``scope["state"]``): the app's requests get a copy of it
        self.state: dict[str, Any] = state if state is not None else {}
        self.supported = True
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._startup: asyncio.Future[None] | None = None
        self._shutdown: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self._queue.get, self._send)
        except Exception as exc:
            if self._startup is not None and not self._startup.done():
                # an app without lifespan support raises on the scope: serve it without one
                self.supported = False
                log.info("the ASGI app does not support the lifespan protocol (%s); serving it without one",
                         exc.__class__.__name__)
                self._startup.set_result(None)
            elif self._shutdown is not None and not self._shutdown.done():
                log.exception("the ASGI app failed in its lifespan shutdown")
                self._shutdown.set_result(None)
        finally:
            for future in (self._startup, self._shutdown):
                if future is not None and not future.done():
                    future.set_result(None)

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete" and self._startup is not None:
            self._startup.set_result(None)
        elif kind == "lifespan.startup.failed" and self._startup is not None:
            self._startup.set_exception(RuntimeError(f"ASGI app startup failed: {message.get('message', '')}"))
        elif kind.startswith("lifespan.shutdown") and self._shutdown is not None:
            if kind == "lifespan.shutdown.failed":
                log.error("the ASGI app's lifespan shutdown failed: %s", message.get("message", ""))
            self._shutdown.set_result(None)

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        self._startup = loop.create_future()
        self._task = asyncio.ensure_future(self._run())
        await self._queue.put({"type": "lifespan.startup"})
        await self._startup

    async def shutdown(self) -> None:
        if self._task is None or self._task.done() or not self.supported:
            return
        self._shutdown = asyncio.get_running_loop().create_future()
        await self._queue.put({"type": "lifespan.shutdown"})
        await self._shutdown
        await asyncio.wait([self._task], timeout=5)
