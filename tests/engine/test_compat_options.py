"""python-engineio's forms of the Engine.IO options: ``ping_interval=(interval, grace)``, its cookie keys,
a ``cors_allowed_origins`` callable taking ``(origin, environ)``, unknown transports dropped."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

import pytest
import socketio as python_socketio

import sioserver

from .conftest import EchoFactory

PATH = "/engine.io/"

HANDSHAKE = {"EIO": "4", "transport": "polling"}


class TestPingIntervalTuple:
    async def test_the_client_is_told_interval_plus_grace_and_pings_come_every_interval(
        self, echo_server: EchoFactory
    ) -> None:
        eio, client = await echo_server(ping_interval=(0.2, 0.3), ping_timeout=1)
        opening = json.loads((await (await client.get(PATH, params=HANDSHAKE)).text())[1:])
        assert opening["pingInterval"] == 500 and opening["pingTimeout"] == 1000
        assert eio.ping_interval == 0.2
        async with client.session.ws_connect(client.make_url(PATH + "?EIO=4&transport=websocket")) as ws:
            assert json.loads((await ws.receive_str())[1:])["pingInterval"] == 500
            for _ in range(2):
                assert await ws.receive_str(timeout=2) == "2"
                await ws.send_str("3")

    def test_a_bad_tuple_is_refused(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match="tuple"):
            sioserver.AsyncServer(ping_interval=(1, 2, 3))
        with pytest.raises(sioserver.ConfigurationError, match="negative"):
            sioserver.AsyncServer(ping_interval=(1, -2))

    async def test_python_socketio_client_stays_connected(self) -> None:
        from aiohttp import web
        from aiohttp.test_utils import TestServer

        sio = sioserver.AsyncServer(ping_interval=(0.1, 0.2), ping_timeout=0.5)
        answers: list[Any] = []
        app = web.Application()
        sio.attach(app)
        sio.on("echo", lambda sid, data: data)
        server = TestServer(app)
        await server.start_server()
        client = python_socketio.AsyncClient(reconnection=False)
        try:
            await client.connect(str(server.make_url("/")), transports=["websocket"])
            assert client.eio.ping_interval == 0.3
            for i in range(3):
                answers.append(await client.call("echo", i, timeout=2))
            assert client.connected and answers == [0, 1, 2]
        finally:
            await client.disconnect()
            await server.close()


class TestCookie:
    async def test_python_engineio_keys_callables_and_extras(self, echo_server: EchoFactory) -> None:
        expires = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        _, client = await echo_server(cookie={
            "name": "sticky", "SameSite": "None", "Secure": True, "HttpOnly": False, "path": "/app",
            "domain": "example.com", "max_age": lambda: 3600, "expires": expires,
        })
        resp = await client.get(PATH, params=HANDSHAKE)
        sid = json.loads((await resp.text())[1:])["sid"]
        assert resp.headers["Set-Cookie"] == (
            f"sticky={sid}; Path=/app; SameSite=None; Secure; Domain=example.com; Max-Age=3600; "
            f"Expires=Thu, 02 Jan 2031 03:04:05 GMT")

    async def test_a_callable_is_called_at_every_handshake(self, echo_server: EchoFactory) -> None:
        counter = iter(range(1, 10))
        _, client = await echo_server(cookie={"name": "io", "max_age": lambda: next(counter)})
        first = (await client.get(PATH, params=HANDSHAKE)).headers["Set-Cookie"]
        second = (await client.get(PATH, params=HANDSHAKE)).headers["Set-Cookie"]
        assert first.endswith("; Max-Age=1") and second.endswith("; Max-Age=2")
        assert "<function" not in first

    def test_an_unknown_key_is_refused_with_the_closest(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match="did you mean 'samesite'"):
            sioserver.AsyncServer(cookie={"same_site": "Lax"})

    def test_a_value_that_would_split_the_header_is_refused(self) -> None:
        from sioserver.engine.server import _cookie_options, _set_cookie

        opts = _cookie_options({"domain": "a.example; Secure"})
        assert opts is not None
        with pytest.raises(ValueError, match="split the header"):
            _set_cookie("sid", opts)


class TestCorsCallable:
    async def test_origin_and_environ(self, echo_server: EchoFactory) -> None:
        seen: list[tuple[str, str]] = []

        def allowed(origin: str, environ: dict[str, Any]) -> bool:
            seen.append((origin, environ["HTTP_ORIGIN"]))
            return origin.endswith(".trusted.example") and environ.get("HTTP_X_TENANT") == "t1"

        _, client = await echo_server(cors_allowed_origins=allowed)
        ok = await client.get(PATH, params=HANDSHAKE, headers={"Origin": "https://a.trusted.example",
                                                               "X-Tenant": "t1"})
        assert ok.status == 200
        assert ok.headers["Access-Control-Allow-Origin"] == "https://a.trusted.example"
        refused = await client.get(PATH, params=HANDSHAKE, headers={"Origin": "https://a.trusted.example",
                                                                    "X-Tenant": "t2"})
        assert refused.status == 403 and "Access-Control-Allow-Origin" not in refused.headers
        assert seen == [("https://a.trusted.example",) * 2] * 2

    async def test_origin_only_still_works(self, echo_server: EchoFactory) -> None:
        _, client = await echo_server(cors_allowed_origins=lambda origin: origin == "https://ok.example")
        assert (await client.get(PATH, params=HANDSHAKE, headers={"Origin": "https://ok.example"})).status == 200
        assert (await client.get(PATH, params=HANDSHAKE, headers={"Origin": "https://no.example"})).status == 403


class TestTransports:
    async def test_unknown_transports_are_dropped_with_a_warning(self, echo_server: EchoFactory,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="sioserver.engine"):
            _, client = await echo_server(transports=["websocket", "flashsocket"])
        assert any("ignoring 'flashsocket'" in r.getMessage() for r in caplog.records)
        resp = await client.get(PATH, params=HANDSHAKE)  # polling is not served
        assert resp.status == 400 and (await resp.json())["code"] == 0
        async with client.session.ws_connect(client.make_url(PATH + "?EIO=4&transport=websocket")) as ws:
            assert json.loads((await ws.receive_str())[1:])["upgrades"] == []

    def test_no_known_transport_is_refused(self) -> None:
        with pytest.raises(sioserver.ConfigurationError, match="must include"):
            sioserver.AsyncServer(transports=["flashsocket"])
