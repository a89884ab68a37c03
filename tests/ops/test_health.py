"""``GET /health``: 200 while serving, 503 while draining or while the adapter is down (aiohttp attach and
the HTTP/1.1 front of ``sioserver.run``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import socketio
from aiohttp import web

import sioserver
from sioserver.integrations.standalone import serve as serve_http1
from tests._support.redis import RedisServer
from tests._support.serving import AppServer, start
from tests._support.wait import wait_until

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[AppServer] = []

    async def run(sio: sioserver.AsyncServer, app: web.Application | None = None) -> str:
        app = app or web.Application()
        sio.attach(app)
        servers.append(await start(app))
        return servers[-1].url

    yield run
    for server in servers:
        await server.close()


async def health(url: str, path: str = "/health") -> tuple[int, dict[str, object], str]:
    async with aiohttp.ClientSession() as http, http.get(url + path) as response:
        return response.status, await response.json(), response.headers.get("Cache-Control", "")


async def test_serving_then_draining(serve: Serve) -> None:
    sio = sioserver.AsyncServer(shutdown_grace=1.0)
    url = await serve(sio)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"])
    assert await health(url) == (200, {"status": "serving", "sessions": 1}, "no-store")
    shutting = asyncio.create_task(sio.shutdown())
    await asyncio.sleep(0)  # one turn: shutdown() has begun and now spreads the disconnects over 1 s
    status, body, _ = await health(url)
    assert (status, body["status"]) == (503, "draining")
    await shutting
    assert (await health(url))[0] == 503
    await client.disconnect()


async def test_path_option_and_off(serve: Serve) -> None:
    url = await serve(sioserver.AsyncServer(health_path="/healthz"))
    assert (await health(url, "/healthz"))[0] == 200
    async with aiohttp.ClientSession() as http, http.get(url + "/health") as response:
        assert response.status == 404
    url = await serve(sioserver.AsyncServer(health_path=None))
    async with aiohttp.ClientSession() as http, http.get(url + "/health") as response:
        assert response.status == 404
    with pytest.raises(TypeError, match="health_path"):
        sioserver.AsyncServer(health_path="health")


async def test_the_apps_own_health_route_wins(serve: Serve) -> None:
    async def mine(_: web.Request) -> web.Response:
        return web.json_response({"mine": True})

    app = web.Application()
    app.router.add_get("/health", mine)
    url = await serve(sioserver.AsyncServer(), app)
    assert (await health(url))[1] == {"mine": True}


async def test_adapter_down_is_503_until_redis_is_back(serve: Serve, redis_binary: str, tmp_path: Path) -> None:
    redis = RedisServer(redis_binary, tmp_path)
    redis.start()
    try:
        sio = sioserver.AsyncServer(adapter=sioserver.RedisAdapter(redis.url))
        url = await serve(sio)
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"])  # the "/" namespace and its adapter exist now
        # a load balancer polls: so does the test, with a deadline
        assert await poll_health(url, 200) == {"status": "serving", "sessions": 1}
        redis.kill()
        assert (await poll_health(url, 503))["status"] == "adapter down: /"
        redis.start()
        assert (await poll_health(url, 200))["status"] == "serving"
        await client.disconnect()
    finally:
        redis.stop()


async def poll_health(url: str, want: int, timeout: float = 15.0) -> dict[str, object]:
    async def answered() -> dict[str, object] | None:
        status, body, _ = await health(url)
        return body if status == want else None

    return await wait_until(answered, timeout=timeout, what=f"GET /health answering {want}")


async def test_the_http1_front_of_run_serves_it_too() -> None:
    sio = sioserver.AsyncServer(shutdown_grace=1.0)
    stop = asyncio.Event()
    bound: asyncio.Future[list[tuple[str, int]]] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(serve_http1(sio, "127.0.0.1", 0, stop=stop, ready=bound.set_result))
    try:
        host, port = (await asyncio.wait_for(bound, 10))[0]
        url = f"http://{host}:{port}"
        assert await health(url) == (200, {"status": "serving", "sessions": 0}, "no-store")
        async with aiohttp.ClientSession() as http, http.head(url + "/health") as response:
            assert response.status == 200
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"])
        shutting = asyncio.create_task(sio.shutdown())  # what SIGTERM starts; the front still listens here
        await asyncio.sleep(0)  # one turn: shutdown() has begun, and spreads the disconnects over 1 s
        status, body, _ = await health(url)
        assert (status, body["status"]) == (503, "draining")
        await shutting
        await client.disconnect()
    finally:
        stop.set()
        await serving
