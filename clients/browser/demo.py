"""The sioserver browser chat demo.

    ./scripts/demo.sh [--host 127.0.0.1] [--port 8000]      (sets everything up on a fresh machine)
    .venv/bin/python clients/browser/demo.py [--host H] [--port N]

``sioserver.run``'s own HTTP/1.1 front serves the page (``/``), its css/js and the official
socket.io-client bundle (``/vendor/socket.io.min.js``, from ``clients/browser/node_modules``: no CDN)
as ``static_files``, and the Socket.IO server at ``/socket.io/``, on the default in-memory adapter
(``--front aiohttp``: one aiohttp application serves the same).

Events (client -> server); the name also rides in the connect ``auth`` payload ({"name"}):
  ``join`` name                 -> ack ``{"name", "count", "history"}``; everyone sees ``presence``
  ``chat`` {"text"}             -> ack ``{"id", "ts"}`` (the sender marks it delivered); everyone
                                   else gets ``chat`` {"id", "name", "text", "ts"}
  ``typing`` bool               -> everyone else gets ``typing`` {"name", "typing"} (volatile)
Server -> client: ``presence`` {"count", "names"} on every connect, join and disconnect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

import sioserver

HERE = Path(__file__).resolve().parent
STATIC = {  # URL path -> (file, content type)
    "/chat.css": (HERE / "chat.css", "text/css"),
    "/chat.js": (HERE / "chat.js", "text/javascript"),
}
BUNDLE = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

MAX_NAME = 24
MAX_TEXT = 500
HISTORY = 20

log = logging.getLogger("demo")


def clean_name(value: Any) -> str | None:
    """A display name: a string, whitespace collapsed, at most MAX_NAME characters."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())[:MAX_NAME]
    return name or None


class Chat:
    """The chat room: who is here, the last few messages, and the Socket.IO handlers."""

    def __init__(self, sio: sioserver.AsyncServer) -> None:
        self.sio = sio
        self.names: dict[str, str] = {}  # sid -> name, for every connected client
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.ids = itertools.count(1)
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        sio.on("join", self.join)
        sio.on("chat", self.chat)
        sio.on("typing", self.typing)

    def presence(self) -> dict[str, Any]:
        return {"count": len(self.names), "names": sorted(self.names.values(), key=str.casefold)}

    async def broadcast_presence(self) -> None:
        await self.sio.emit("presence", self.presence())

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        # The page sends its name in the auth payload too: messages it buffered while offline reach
        # the server right after the CONNECT, before its `join`, and must not arrive nameless.
        name = clean_name(auth.get("name")) if isinstance(auth, dict) else None
        self.names[sid] = name or f"guest-{sid[:4]}"
        log.info("connect %s (%s) from %s over %s (%d online)", sid, self.names[sid], environ.get("REMOTE_ADDR"),
                 self.sio.transport(sid), len(self.names))
        await self.broadcast_presence()

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        name = self.names.pop(sid, None)
        log.info("disconnect %s (%s): %s (%d online)", sid, name or "no name", reason, len(self.names))
        await self.broadcast_presence()

    async def join(self, sid: str, value: Any) -> dict[str, Any]:
        name = clean_name(value)
        if name is None:
            return {"error": "a name is a non-empty string"}
        old = self.names.get(sid)
        self.names[sid] = name
        log.info("join %s as %r%s", sid, name, f" (was {old!r})" if old and old != name else "")
        await self.broadcast_presence()
        return {"name": name, "count": len(self.names), "history": list(self.history)}

    async def chat(self, sid: str, data: Any) -> dict[str, Any]:
        name = self.names.get(sid, "?")
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            return {"error": "empty message"}
        text = text[:MAX_TEXT]
        message: dict[str, Any] = {"id": next(self.ids), "name": name, "text": text, "ts": int(time.time() * 1000)}
        self.history.append(message)
        log.info("chat #%d from %r (%d chars)", message["id"], name, len(text))
        await self.sio.emit("chat", message, skip_sid=sid)
        return {"id": message["id"], "ts": message["ts"]}

    async def typing(self, sid: str, active: Any) -> None:
        name = self.names.get(sid)
        if name is not None:
            await self.sio.emit("typing", {"name": name, "typing": bool(active)}, skip_sid=sid, volatile=True)


async def index(_: web.Request) -> web.FileResponse:
    return web.FileResponse(HERE / "chat.html", headers={"Content-Type": "text/html; charset=utf-8",
                                                          "Cache-Control": "no-cache"})


def make_server(redis_url: str | None = None) -> sioserver.AsyncServer:
    options: dict[str, Any] = {}
    if redis_url:
        options["adapter"] = sioserver.RedisAdapter(redis_url)
    return sioserver.AsyncServer(**options)


#: the page, its files and the client bundle, as ``static_files`` for sioserver's own front
STATIC_FILES = {
    "/": {"filename": str(HERE / "chat.html"), "content_type": "text/html; charset=utf-8"},
    **{path: {"filename": str(file), "content_type": f"{ctype}; charset=utf-8"}
       for path, (file, ctype) in {**STATIC, "/vendor/socket.io.min.js": (BUNDLE, "text/javascript")}.items()},
}


def make_app(redis_url: str | None = None) -> web.Application:
    """The demo's aiohttp application, with the Socket.IO server attached at /socket.io/.

    With ``redis_url`` the workers of a cluster share broadcasts through Redis (each keeps its own
    presence list and history).
    """
    sio = make_server(redis_url)
    app = web.Application()
    app["chat"] = Chat(sio)
    app.router.add_get("/", index)
    for path, (file, ctype) in {**STATIC, "/vendor/socket.io.min.js": (BUNDLE, "text/javascript")}.items():

        async def serve(_: web.Request, file: Path = file, ctype: str = ctype) -> web.FileResponse:
            return web.FileResponse(file, headers={"Content-Type": f"{ctype}; charset=utf-8",
                                                   "Cache-Control": "no-cache"})

        app.router.add_get(path, serve)
    sio.attach(app, socketio_path="socket.io")
    return app


def _announce(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(f"sioserver demo on http://{shown}:{port}", flush=True)


async def serve_run(host: str, port: int, redis_url: str | None = None) -> None:
    """The demo on ``sioserver.run``'s own front (the default)."""
    from sioserver.integrations.standalone import serve as serve_front  # noqa: PLC0415

    sio = make_server(redis_url)
    Chat(sio)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    stopping.add_done_callback(lambda _: log.info("shutting down"))
    try:
        await serve_front(sio, host, port, static_files=STATIC_FILES, stop=stop, shutdown_timeout=2,
                          ready=lambda addresses: _announce(host, addresses[0][1]))
    except OSError as exc:
        raise SystemExit(f"demo.py: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        stopping.cancel()


async def serve(host: str, port: int, redis_url: str | None = None) -> None:
    """The demo as an aiohttp application (``--front aiohttp``)."""
    runner = web.AppRunner(make_app(redis_url), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, shutdown_timeout=2)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SystemExit(f"demo.py: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _announce(host, runner.addresses[0][1] if runner.addresses else port)  # --port 0 picks a free port
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()


def make_asgi_app(redis_url: str | None = None) -> Any:
    """The demo as a FastAPI app (``--front fastapi``): FastAPI serves the page, its files and the
    bundle; ``sioserver.ASGIApp`` serves /socket.io/ and hands every other path to it."""
    from fastapi import FastAPI  # noqa: PLC0415 - only this front needs FastAPI (pip install fastapi uvicorn)
    from fastapi.responses import FileResponse  # noqa: PLC0415

    sio = make_server(redis_url)
    Chat(sio)
    api = FastAPI()
    files = {"/": (HERE / "chat.html", "text/html"), **STATIC, "/vendor/socket.io.min.js": (BUNDLE, "text/javascript")}
    for path, (file, ctype) in files.items():

        async def page(file: Path = file, ctype: str = ctype) -> FileResponse:
            return FileResponse(file, media_type=f"{ctype}; charset=utf-8", headers={"Cache-Control": "no-cache"})

        api.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    return sioserver.ASGIApp(sio, other_asgi_app=api, on_shutdown=lambda: log.info("shutting down"))


async def serve_fastapi(host: str, port: int, redis_url: str | None = None, server: str = "uvicorn") -> None:
    """The FastAPI app under an ASGI server (as ``uvicorn demo:app`` or ``hypercorn demo:app`` would serve
    it: uvicorn with its ``websockets`` or ``wsproto`` WebSocket implementation, or hypercorn), on a socket
    bound here so that ``--port 0`` can say which port it got."""
    import socket  # noqa: PLC0415

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"demo.py: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(1024)
    app = make_asgi_app(redis_url)
    if server == "hypercorn":
        import hypercorn.asyncio  # noqa: PLC0415
        import hypercorn.config  # noqa: PLC0415

        config = hypercorn.config.Config()
        config.bind = [f"fd://{sock.fileno()}"]
        config.graceful_timeout = 2
        config.accesslog = None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        _announce(host, sock.getsockname()[1])
        await hypercorn.asyncio.serve(app, config, shutdown_trigger=stop.wait)
        return
    import uvicorn  # noqa: PLC0415

    ws = "wsproto" if server == "uvicorn-wsproto" else "websockets"
    userver = uvicorn.Server(uvicorn.Config(app, ws=ws, log_level="warning", timeout_graceful_shutdown=2))
    _announce(host, sock.getsockname()[1])
    await userver.serve(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="sioserver browser chat demo")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the Engine.IO/Socket.IO layers too")
    parser.add_argument("--redis", metavar="URL", default=None,
                        help="share broadcasts with other workers through Redis (e.g. redis://127.0.0.1:6379/0)")
    parser.add_argument("--front", choices=("run", "aiohttp", "fastapi"), default="run",
                        help="sioserver.run's own HTTP/1.1 front (default), an aiohttp application, or a "
                             "FastAPI app with sioserver.ASGIApp under an ASGI server (--asgi-server)")
    parser.add_argument("--asgi-server", choices=("uvicorn", "uvicorn-wsproto", "hypercorn"), default="uvicorn",
                        help="with --front fastapi: the ASGI server (default uvicorn, its websockets implementation)")
    args = parser.parse_args(argv)
    if not BUNDLE.is_file():
        raise SystemExit(
            f"demo.py: the socket.io-client bundle is missing ({BUNDLE}).\n"
            "Run ./scripts/demo.sh (it runs `npm ci` in clients/browser and starts the demo)."
        )
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.verbose:
        logging.getLogger("sioserver").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        if args.front == "fastapi":
            asyncio.run(serve_fastapi(args.host, args.port, args.redis, args.asgi_server))
        else:
            asyncio.run((serve_run if args.front == "run" else serve)(args.host, args.port, args.redis))


if __name__ == "__main__":
    main()
