"""``sioserver.ASGIApp`` beside a FastAPI app, under real ASGI servers: uvicorn (its ``websockets`` and
``wsproto`` implementations) and hypercorn (tests/integrations/asgi_app.py is the app).

What a FastAPI user sees: the app's routes and lifespan state still work, the Socket.IO clients
(python-socketio's AsyncClient and sioclient) work over every transport, the engine's error answers
are the same as under aiohttp, static files and the server's own endpoints are served, a mount's
root path is honoured, and SIGTERM to uvicorn ends every session at once.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sioclient
import socketio
from aiohttp import web

import sioserver
from tests._support import asgi
from tests._support.ports import free_port
from tests._support.procs import Process, start_or_fail
from tests._support.serving import running as aiohttp_running
from tests._support.wait import wait_until
from tests.integrations.asgi_app import make_app

ROOT = Path(__file__).resolve().parents[2]
SERVERS = list(asgi.SERVERS)
TRANSPORTS = [["websocket"], ["polling"], ["polling", "websocket"]]


@pytest.fixture(params=SERVERS)
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[asgi.AsgiServer, list[str]]]:
    events: list[str] = []
    app, _ = make_app(events)
    async with asgi.running(app, request.param) as server:
        yield server, events


async def get(url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_fastapi_routes_and_lifespan_state_beside_socketio(served: tuple[asgi.AsgiServer, list[str]]) -> None:
    server, events = served
    status, _, body = await get(server.url + "/api/ping")
    assert (status, json.loads(body)) == (200, {"pong": True})
    status, _, body = await get(server.url + "/api/state")  # the app's lifespan ran, with the server's state
    assert (status, json.loads(body)) == (200, {"db": "ready"})
    status, _, body = await get(server.url + "/api/nowhere")  # FastAPI's own 404
    assert (status, json.loads(body)) == (404, {"detail": "Not Found"})
    status, headers, body = await get(server.url + "/static/hello.txt")
    assert (status, body, headers["Content-Type"]) == (200, b"hello static\n", "text/plain; charset=utf-8")
    status, _, body = await get(server.url + "/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert status == 200 and body.startswith(b"0{") and json.loads(body[1:])["upgrades"] == ["websocket"]
    assert events[:2] == ["ON_STARTUP", "API_STARTUP"], events


async def test_lifespan_shutdown_runs_every_hook_once() -> None:
    events: list[str] = []
    app, _ = make_app(events)
    async with asgi.running(app, "uvicorn") as server:
        status, _, _ = await get(server.url + "/api/ping")
        assert status == 200
    assert events == ["ON_STARTUP", "API_STARTUP", "ON_SHUTDOWN", "API_SHUTDOWN"]


ERRORS = [  # query -> (status, body): the reference's answers, the same as tests/engine/test_server.py's
    ({"EIO": "3", "transport": "polling"}, 400, {"code": 5, "message": "Unsupported protocol version"}),
    ({"EIO": "4", "transport": "carrier-pigeon"}, 400, {"code": 0, "message": "Transport unknown"}),
    ({"EIO": "4", "transport": "polling", "sid": "nope"}, 400, {"code": 1, "message": "Session ID unknown"}),
    ({"EIO": "4", "transport": "websocket"}, 400, {"code": 3, "message": "Bad request"}),  # no Upgrade
]


@pytest.mark.parametrize(("query", "status", "body"), ERRORS, ids=["eio3", "transport", "sid", "no-upgrade"])
async def test_engine_errors_are_the_reference_answers(served: tuple[asgi.AsgiServer, list[str]],
                                                       query: dict[str, str], status: int, body: Any) -> None:
    server, _ = served
    got_status, headers, got = await get(server.url + "/socket.io/", params=query)
    assert (got_status, json.loads(got)) == (status, body)
    assert headers["Content-Type"] == "application/json"


async def test_a_websocket_for_an_unknown_sid_is_refused(served: tuple[asgi.AsgiServer, list[str]]) -> None:
    """Refused before the 101: with ASGI's ``websocket.http.response`` the engine's own 400 and body go
    out (uvicorn); without it the ASGI server answers 403."""
    server, _ = served
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(server.url + "/socket.io/?EIO=4&transport=websocket&sid=nope")
    assert info.value.status in (400, 403)


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
async def test_python_socketio_client(served: tuple[asgi.AsgiServer, list[str]], transports: list[str]) -> None:
    server, events = served
    client = socketio.AsyncClient(reconnection=False)
    client.on("question", lambda payload: {"answer": payload})
    await client.connect(server.url, transports=transports, auth={"token": "t"})
    try:
        assert await client.call("echo", ("héllo", 42, b"\x00\x01\xff", {"b": [b"nested"]})) == \
            ("héllo", 42, b"\x00\x01\xff", {"b": [b"nested"]})
        assert await client.call("ask", {"q": 1}) == {"answer": {"q": 1}}  # an ack from the client
        if transports == ["polling", "websocket"]:
            await wait_until(lambda: client.transport() == "websocket", what="the upgrade", timeout=5)
        assert client.transport() == transports[-1]
        sid = client.get_sid()
    finally:
        await client.disconnect()
    # (python-socketio's client aborts its WebSocket right after queueing its DISCONNECT: the server may see
    # "transport close" first, as under aiohttp attach)
    await wait_until(lambda: any(e.startswith(f"DISCONNECT {sid} ") for e in events), what="the disconnect handler",
                     timeout=5)


@pytest.mark.parametrize("transports", TRANSPORTS, ids=["websocket", "polling", "upgrade"])
async def test_sioclient(served: tuple[asgi.AsgiServer, list[str]], transports: list[str]) -> None:
    server, _ = served
    client = sioclient.AsyncClient(reconnection=False)

    @client.on("question")
    async def question(payload: Any) -> Any:
        return {"answer": payload}

    await client.connect(server.url, transports=transports)
    try:
        assert await client.call("echo", ("x", b"\x01\x02", {"n": [b"deep"]}), timeout=5) == \
            ("x", b"\x01\x02", {"n": [b"deep"]})
        assert await client.call("ask", [1, 2], timeout=5) == {"answer": [1, 2]}  # an ack from the client
        assert client.transport == transports[-1]
    finally:
        await client.disconnect()


async def test_mounted_under_a_root_path() -> None:
    """``fastapi_app.mount("/rt", ASGIApp(sio))``: the client uses ``/rt/socket.io``."""
    from fastapi import FastAPI

    sio = sioserver.AsyncServer()

    @sio.event
    async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
        return args

    api = FastAPI()
    api.mount("/rt", sioserver.ASGIApp(sio))
    async with asgi.running(api, "uvicorn") as server:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(server.url, socketio_path="/rt/socket.io", transports=["polling"])
        try:
            assert await client.call("echo", "mounted") == "mounted"
        finally:
            await client.disconnect()


async def test_proxy_headers_reach_environ_as_under_aiohttp() -> None:
    """Behind a proxy (``uvicorn --proxy-headers``) the session's environ has the proxy's client address
    and scheme; the forwarded headers themselves are there as under aiohttp attach, whose environ keys
    the ASGI environ has too."""
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}

    async def environ_of(url: str) -> dict[str, Any]:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["polling"], headers=headers)
        try:
            return dict(await client.call("environ"))
        finally:
            await client.disconnect()

    app, _ = make_app()
    async with asgi.running(app, "uvicorn", proxy_headers=True) as server:
        behind_proxy = await environ_of(server.url)
    assert behind_proxy["REMOTE_ADDR"] == "203.0.113.9"
    assert behind_proxy["wsgi.url_scheme"] == "https"
    assert behind_proxy["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"

    aio_sio = sioserver.AsyncServer()

    @aio_sio.on("environ")
    async def environ(sid: str) -> dict[str, Any]:
        env = aio_sio.get_environ(sid) or {}
        return {key: env.get(key) for key in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_X_FORWARDED_FOR")}

    aio_app = web.Application()
    aio_sio.attach(aio_app)
    async with aiohttp_running(aio_app) as aio:
        direct = await environ_of(aio.url)
    assert direct["HTTP_X_FORWARDED_FOR"] == behind_proxy["HTTP_X_FORWARDED_FOR"]
    assert direct["REMOTE_ADDR"] == "127.0.0.1" and direct["wsgi.url_scheme"] == "http"  # aiohttp: the peer


async def test_health_and_metrics_under_asgi() -> None:
    app, _ = make_app(metrics=True)
    async with asgi.running(app, "uvicorn") as server:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(server.url, transports=["websocket"])
        try:
            status, headers, body = await get(server.url + "/metrics")
            assert status == 200 and headers["Content-Type"].startswith("text/plain")
            assert 'sioserver_connected_clients{transport="websocket"} 1.0' in body.decode()
            status, _, body = await get(server.url + "/health")
            assert status == 200
        finally:
            await client.disconnect()


def test_sigterm_to_uvicorn_with_20_clients(tmp_path: Path) -> None:
    """``uvicorn app:app`` with 10 WebSocket and 10 long-polling clients: SIGTERM ends every session at
    once (uvicorn waits for parked long-polls before its lifespan shutdown: the app ends them when the
    signal comes) and the process exits within 10 s."""
    port = free_port()
    server = Process([sys.executable, "-m", "uvicorn", "tests.integrations.asgi_app:app", "--port", str(port)],
                     log_path=tmp_path / "uvicorn.log", cwd=ROOT,
                     ready=re.compile(r"Uvicorn running on"), name="uvicorn")
    start_or_fail(server)
    try:
        url = f"http://127.0.0.1:{port}"
        seen: dict[int, list[str]] = {}

        async def scenario() -> float:
            clients = []
            gone: list[asyncio.Event] = []
            for i in range(20):
                client = socketio.AsyncClient(reconnection=False)
                done = asyncio.Event()
                gone.append(done)

                def bye(*reason: Any, i: int = i, done: asyncio.Event = done) -> None:
                    seen[i] = [str(r) for r in reason]
                    done.set()

                client.on("disconnect", bye)
                await client.connect(url, transports=["websocket"] if i % 2 else ["polling"])
                assert await client.call("echo", i) == i
                clients.append(client)
            start = time.monotonic()
            server.send(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in gone)), 10)
            told = time.monotonic() - start
            for client in clients:
                await client.disconnect()
            return told

        told = asyncio.run(scenario())
        start = time.monotonic()
        code = server.wait_exit(10)
        exited = time.monotonic() - start + told
    finally:
        server.stop()
    log = server.output()
    assert code is not None, f"uvicorn still running 10 s after SIGTERM\n{log}"
    assert len(seen) == 20, seen
    assert told < 2.0, f"the clients were told after {told:.2f}s\n{log}"
    assert exited < 10.0
    assert log.count("server shutting down") == 20, log
    assert "ON_SHUTDOWN" in log and "API_SHUTDOWN" in log, log
    print(f"SIGTERM: 20 clients told in {told:.3f}s, uvicorn exited after {exited:.2f}s (code {code})")


@pytest.mark.parametrize("server_name", SERVERS)
async def test_a_client_that_stops_reading_is_bounded(server_name: str) -> None:
    """Under every ASGI server the session's bounds hold: a WebSocket client that stops reading while the
    server sends is disconnected as a slow consumer once it owes ``max_buffered_bytes`` (what the ASGI
    server's flow control holds back waits in the session's outbox, counted), not buffered for ever."""
    from tests.hostile.helpers import RawWS

    eio = sioserver.engineio.AsyncServer(max_buffered_bytes=256 * 1024)
    reasons: dict[str, str] = {}
    eio.on("disconnect", reasons.setdefault)
    async with asgi.running(sioserver.engineio.ASGIApp(eio), server_name) as server:
        ws = await RawWS.connect(server.port, path="/engine.io/", rcvbuf=4096)
        ws.writer.transport.pause_reading()
        session = eio.sessions[ws.eio_sid]
        sent = 0
        chunk = "x" * 1000
        while not session.closed and sent < 200_000:  # 200 MB would be unbounded
            await eio.send(ws.eio_sid, chunk)
            sent += 1
            if sent % 50 == 0:
                await asyncio.sleep(0)  # the transport's writer hands what it can to the ASGI server
        assert session.closed, f"still open after {sent} KB sent"
        await wait_until(lambda: ws.eio_sid in reasons, what="the disconnect handler", timeout=5)
        assert reasons[ws.eio_sid] == "slow consumer"
        assert eio.stats["slow_consumers"] == 1
        ws.writer.close()
    print(f"{server_name}: slow consumer disconnected after {sent} KB sent")
