"""A FastAPI app with ``sioserver.ASGIApp`` in front of it, for the ASGI tests.

    python -m uvicorn tests.integrations.asgi_app:app --port N     (what test_asgi.py's SIGTERM test runs)

FastAPI: ``/api/ping`` -> ``{"pong": true}``; ``/api/state`` -> what its lifespan put in the state;
``/api/slow`` answers after 0.2 s. Socket.IO: ``echo *args`` acks the arguments; ``environ`` acks
what the session's environ says of the client; ``ask payload`` calls ``question`` on the client and
acks its answer. Every connect and disconnect is printed (``CONNECT sid transport`` / ``DISCONNECT sid
reason``); the hooks print ``ON_STARTUP``, ``ON_SHUTDOWN``, ``API_STARTUP``, ``API_SHUTDOWN``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

import sioserver

STATIC = Path(__file__).resolve().parent / "static"


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def make_app(events: list[str] | None = None, **options: Any) -> tuple[sioserver.ASGIApp, sioserver.AsyncServer]:
    """The app and its Socket.IO server; ``events`` (if given) records what :func:`say` prints."""
    record = events.append if events is not None else (lambda _: None)

    def note(line: str) -> None:
        record(line)
        say(line)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        note("API_STARTUP")
        yield {"db": "ready"}
        note("API_SHUTDOWN")

    api = FastAPI(lifespan=lifespan)

    @api.get("/api/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @api.get("/api/state")
    async def state(request: Request) -> dict[str, Any]:
        return {"db": request.state.db}

    @api.get("/api/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(0.2)
        return {"slow": True}

    sio = sioserver.AsyncServer(**options)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        note(f"CONNECT {sid} {sio.transport(sid)}")

    @sio.event
    async def disconnect(sid: str, reason: Any) -> None:
        note(f"DISCONNECT {sid} {reason}")

    @sio.event
    async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("environ")
    async def environ(sid: str) -> dict[str, Any]:
        env = sio.get_environ(sid) or {}
        return {key: env.get(key) for key in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_X_FORWARDED_FOR",
                                               "QUERY_STRING", "REQUEST_METHOD")}

    @sio.event
    async def ask(sid: str, payload: Any) -> Any:
        return await sio.call("question", payload, to=sid, timeout=5)

    app = sioserver.ASGIApp(sio, other_asgi_app=api, static_files={"/static": str(STATIC)},
                            on_startup=lambda: note("ON_STARTUP"), on_shutdown=lambda: note("ON_SHUTDOWN"))
    return app, sio


app, sio = make_app()
