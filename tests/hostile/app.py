"""The server under attack: ``python -m sioserver tests.hostile.app:sio --port N`` on aiohttp
(``--front aiohttp``) or on sioserver's own front (``--asgi tests.hostile.app:debug_app``).

Options come from the environment as JSON (``HOSTILE_OPTIONS``), plus ``HOSTILE_FEATURES``, a
comma-separated list of extras (``catchall``: a ``"*"`` namespace with handlers; ``regex``: a dynamic
``/dyn-<n>`` namespace; ``soak``: the handlers of ``churn.py``). Besides ``/socket.io/`` the app serves, for the tests only:

``GET /_debug/state``  the server's tables (sessions, parked polls, namespaces with their sockets,
                       rooms, sids and pending acks), task count, RSS, ``stats`` and ``marks``
``GET /_debug/logs?since=N``  log records at INFO and above (every logger), from sequence number N

Events: ``echo`` (the arguments are the ack), ``mark`` (records its argument in ``marks``: the test
can tell whether a packet was processed), ``blast`` (``count``, ``size``, ``rate``: that many broadcasts of
``[i, time, payload]``, at ``rate`` per second or as fast as the loop goes, yielding after each), ``connect`` with ``auth={"boom": 1}``
raises an exception whose text must never reach the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import socket
import time
from collections import deque
from typing import Any

from aiohttp import web

import sioserver
from sioserver.engine.websocket import WebSocketConnection
from sioserver.server.client import Client

SECRET = "internal-detail-7f3a"  # text of the exception the connect handler raises

if os.environ.get("HOSTILE_PARENT"):
    # die with the test run that started us (PR_SET_PDEATHSIG), so no server outlives a killed run
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    if os.getppid() != int(os.environ["HOSTILE_PARENT"]):
        os._exit(1)

OPTIONS: dict[str, Any] = json.loads(os.environ.get("HOSTILE_OPTIONS", "{}"))
FEATURES = set(filter(None, os.environ.get("HOSTILE_FEATURES", "").split(",")))

# ------------------------------------------------------------------------------------- logs

_seq = itertools.count(1)
RECORDS: deque[dict[str, Any]] = deque(maxlen=int(os.environ.get("HOSTILE_LOG_KEEP", "20000")))


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is itself worth a record
            message = f"unformattable: {record.msg!r}"
        RECORDS.append({
            "seq": next(_seq),
            "time": record.created,
            "logger": record.name,
            "level": record.levelname,
            "message": message[:2000],
            "length": len(message),
            "exc": record.exc_info is not None and record.exc_info[0] is not None,
            "exc_type": record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None,
        })


_capture = _Capture(logging.INFO)
logging.getLogger().addHandler(_capture)
logging.getLogger().setLevel(logging.INFO)


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Anything the event loop reports (unretrieved task exceptions, failing callbacks)."""
    exc = context.get("exception")
    logging.getLogger("hostile.loop").error("loop: %s", context.get("message"), exc_info=exc)


# ----------------------------------------------------------------------------------- server

MARKS: list[Any] = []


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class HostileServer(sioserver.AsyncServer):
    def attach(self, app: web.Application, socketio_path: str = "socket.io") -> None:  # type: ignore[override]
        """The aiohttp front (``--front aiohttp``): the debug routes are aiohttp routes."""
        super().attach(app, socketio_path)

        async def state(request: web.Request) -> web.Response:
            return web.json_response(self.state())

        async def session(request: web.Request) -> web.Response:
            return web.json_response(self.session_info(request.match_info["sid"]))

        async def logs(request: web.Request) -> web.Response:
            return web.json_response(logs_since(int(request.query.get("since", "0"))))

        app.router.add_get("/_debug/state", state)
        app.router.add_get("/_debug/logs", logs)
        app.router.add_get("/_debug/session/{sid}", session)

        async def startup(_: web.Application) -> None:
            asyncio.get_running_loop().set_exception_handler(_loop_exception)

        app.on_startup.append(startup)

    def state(self) -> dict[str, Any]:
        eio = self.eio
        namespaces = {}
        for name, nsp in list(self._namespaces.items()):
            namespaces[name] = {
                "sockets": len(nsp.sockets),
                "rooms": len(nsp.adapter.rooms),
                "sids": len(nsp.adapter.sids),
                "acks": sum(len(s.acks) for s in nsp.sockets.values()),
            }
        return {
            "sessions": len(eio.sessions),
            "open_sessions": sum(1 for s in eio.sessions.values() if not s.closed),
            "parked": len(eio.polling.parked),
            "namespaces": namespaces,
            "namespace_count": len(self._namespaces),
            "specs": len(self._specs),
            "tasks": len(asyncio.all_tasks()),
            "background_tasks": len(self._tasks),
            "rss": _rss(),
            "stats": dict(self.stats),
            "marks": MARKS[-100:],
            "mark_count": len(MARKS),
            "pid": os.getpid(),
        }

    def session_info(self, sid: str) -> dict[str, Any]:
        session = self.eio.sessions.get(sid)
        if session is None:
            return {"exists": False, "closed": True}
        client = session.receiver
        return {
            "exists": True,
            "closed": session.closed,
            "transport": session.transport,
            "queued_bytes": session.owed,
            "get_parked": session in self.eio.polling.parked,  # a long-poll GET waits for packets
            "sockets": sorted(client.sockets) if isinstance(client, Client) else [],
        }


def logs_since(since: int) -> list[dict[str, Any]]:
    return [r for r in list(RECORDS) if r["seq"] > since]


async def debug_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The debug routes as an ASGI app, for sioserver's own front (``--asgi tests.hostile.app:debug_app``)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            asyncio.get_running_loop().set_exception_handler(_loop_exception)
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    query = dict(part.partition("=")[::2] for part in scope["query_string"].decode().split("&") if part)
    body: Any
    if path == "/_debug/state":
        body = sio.state()
    elif path == "/_debug/logs":
        body = logs_since(int(query.get("since", "0")))
    elif path.startswith("/_debug/session/"):
        body = sio.session_info(path[len("/_debug/session/"):])
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


sio = HostileServer(**OPTIONS)


def _install(nsp: str | re.Pattern[str]) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        if isinstance(auth, dict) and auth.get("boom"):
            raise RuntimeError(f"connect handler exploded: {SECRET}")
        if SNDBUF:
            _shrink_send_buffer(environ)

    async def echo(sid: str, *args: Any) -> Any:
        return tuple(args)

    def mark(sid: str, token: Any) -> str:
        MARKS.append(token)
        return "marked"

    async def blast(sid: str, count: int, size: int, rate: float = 0) -> int:
        """``count`` broadcasts, ``rate`` per second (0: as fast as the loop goes)."""
        payload = "x" * int(size)
        start = time.monotonic()
        for i in range(int(count)):
            await sio.emit("blast", (i, time.time(), payload))
            delay = start + (i + 1) / rate - time.monotonic() if rate else 0
            await asyncio.sleep(max(0.0, delay))
        return int(count)

    sio.on("connect", connect, namespace=nsp)
    for handler in (echo, mark, blast):
        sio.on(handler.__name__, handler, namespace=nsp)


#: HOSTILE_SNDBUF: the kernel send buffer of every WebSocket (scale.py: on loopback the kernel would
#: otherwise take megabytes per connection, and the server's own buffering would not show)
SNDBUF = int(os.environ.get("HOSTILE_SNDBUF", "0"))


def _shrink_send_buffer(environ: dict[str, Any]) -> None:
    for session in sio.eio.sessions.values():
        if session.environ is environ and isinstance(session.ws, WebSocketConnection):
            sock = session.ws._transport.get_extra_info("socket") if session.ws._transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
            return


_install("/")
if "catchall" in FEATURES:

    @sio.on("connect", namespace="*")
    async def _any_connect(namespace: str, sid: str, environ: dict[str, Any]) -> None:
        return None

    @sio.on("echo", namespace="*")
    async def _any_echo(namespace: str, sid: str, *args: Any) -> Any:
        return tuple(args)

if "regex" in FEATURES:
    _install(re.compile(r"/dyn-\d+"))

if "soak" in FEATURES:
    from .churn import install

    install(sio)
