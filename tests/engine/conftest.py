from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import sioserver.engineio

EchoFactory = Callable[..., Awaitable[tuple[sioserver.engineio.AsyncServer, TestClient[Any, Any]]]]


@pytest.fixture
async def echo_server() -> AsyncIterator[EchoFactory]:
    """An Engine.IO echo server on a real port; events are recorded on ``eio.events``."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**options: Any) -> tuple[sioserver.engineio.AsyncServer, TestClient[Any, Any]]:
        eio = sioserver.engineio.AsyncServer(**options)
        events: list[tuple[Any, ...]] = []
        eio.events = events  # type: ignore[attr-defined]

        @eio.on("connect")
        def connect(sid: str, environ: dict[str, Any]) -> bool:
            events.append(("connect", sid))
            return environ.get("QUERY_STRING", "").find("refuse=1") < 0

        @eio.on("message")
        async def message(sid: str, data: str | bytes) -> None:
            events.append(("message", sid, data))
            if data == "close-me":
                await eio.disconnect(sid)
            else:
                await eio.send(sid, data)

        @eio.on("disconnect")
        def disconnect(sid: str, reason: str) -> None:
            events.append(("disconnect", sid, reason))

        app = web.Application()
        eio.attach(app)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return eio, client

    yield make
    for client in clients:
        await client.close()
