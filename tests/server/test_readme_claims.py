"""What the README promises about options and features, each seen on the wire or through a real client.

The callable namespace matcher, a local ``volatile`` drop, the orjson fast path, ``max_connections``,
``always_connect``, ``async_handlers=False`` with ``max_backlog``, ``cors_credentials`` and
``engineio_logger``; python-socketio's exception names.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio as python_socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver

from .conftest import RawClient

Serve = Callable[[sioserver.AsyncServer], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(sio)``: sioserver on aiohttp on a free port, stopped at teardown."""
    servers: list[TestServer] = []

    async def start(sio: sioserver.AsyncServer) -> str:
        app = web.Application()
        sio.attach(app)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


async def polling_handshake(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None,
                            ) -> aiohttp.ClientResponse:
    return await http.get(f"{url}/socket.io/?EIO=4&transport=polling", headers=headers or {})


class TestCallableNamespaceMatcher:
    async def test_the_matcher_sees_name_and_auth_and_runs_again_once_the_namespace_emptied(
        self, sio_app: Any
    ) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        asked: list[tuple[str, Any]] = []

        def matcher(name: str, auth: Any) -> bool:
            asked.append((name, auth))
            return name.startswith("/team-") and auth == {"ok": True}

        joined: list[str] = []
        sio.on("connect", lambda sid, environ: joined.append(sid), namespace=matcher)

        @sio.on("where", namespace=matcher)
        async def where(sid: str) -> str:
            return "here"

        c: RawClient = await client()
        await c.send('40/other,{"ok":true}')
        assert await c.recv() == '44/other,{"message":"Invalid namespace"}'
        sid = await c.connect("/team-1", {"ok": True})
        assert joined == [sid]
        await c.send('40/team-2,{"ok":false}')
        assert await c.recv() == '44/team-2,{"message":"Invalid namespace"}'
        await c.send('42/team-1,7["where"]')
        assert await c.recv() == '43/team-1,7["here"]'
        assert asked == [("/other", {"ok": True}), ("/team-1", {"ok": True}), ("/team-2", {"ok": False})]

        # a second client joins the existing namespace: the matcher is not asked again
        c2: RawClient = await client()
        await c2.connect("/team-1", {"anything": 1})
        assert len(asked) == 3
        # both leave: the dynamic namespace is removed, so the next CONNECT asks the matcher again
        await c.send("41/team-1,")
        await c2.send("41/team-1,")
        c3: RawClient = await client()
        await c3.send('40/team-1,{"ok":false}')
        assert await c3.recv() == '44/team-1,{"message":"Invalid namespace"}'
        assert asked[-1] == ("/team-1", {"ok": False})


class TestVolatile:
    async def test_a_volatile_emit_to_a_polling_client_with_no_request_open_is_dropped(
        self, serve: Serve
    ) -> None:
        sio = sioserver.AsyncServer()
        url = await serve(sio)
        async with aiohttp.ClientSession() as http:
            handshake = await polling_handshake(http, url)
            sid = json.loads((await handshake.text())[1:])["sid"]
            poll = f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}"
            assert await (await http.post(poll, data="40")).text() == "ok"
            connected = await (await http.get(poll)).text()
            assert connected.startswith('40{"sid":')
            ns_sid = json.loads(connected[2:])["sid"]
            # no GET is parked: the volatile emit cannot go out at once, so it is dropped
            await sio.emit("lost", 1, to=ns_sid, volatile=True)
            await sio.emit("kept", 2, to=ns_sid)
            await sio.to(ns_sid).volatile.emit("lost too", 3)
            assert await (await http.get(poll)).text() == '42["kept",2]'
            assert sio.stats["volatile_dropped"] == 2

    async def test_a_volatile_emit_to_an_idle_websocket_arrives(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        c: RawClient = await client()
        sid = await c.connect()
        await sio.emit("news", "fresh", to=sid, volatile=True)
        assert await c.recv() == '42["news","fresh"]'
        assert sio.stats["volatile_dropped"] == 0


class TestOrjson:
    async def test_json_orjson_is_used_and_the_wire_is_the_same_as_with_the_standard_library(
        self, sio_app: Any
    ) -> None:
        orjson = pytest.importorskip("orjson")
        payload = {"text": "é ✓ \u2028", "n": [1, 2.5, None, True], "nested": {"b": 1, "a": 2}}
        wires = []
        for json_module in (json, orjson):  # json=None is orjson too when it is installed
            sio, client = await sio_app(sioserver.AsyncServer(json=json_module))

            @sio.on("echo")
            async def echo(sid: str, data: Any) -> Any:
                return data

            c: RawClient = await client()
            sid = await c.connect()
            await c.send("421" + json.dumps(["echo", payload], ensure_ascii=False))
            wires.append(await c.recv())
            await sio.emit("push", payload, to=sid)
            wires.append(await c.recv())
            if json_module is orjson:
                # only orjson encodes a datetime: proof that the option's module does the encoding
                await sio.emit("when", datetime.datetime(2026, 1, 2, 3, 4, 5), to=sid)
                assert await c.recv() == '42["when","2026-01-02T03:04:05"]'
        assert wires[:2] == wires[2:]
        assert wires[0] == '431[{"text":"é ✓ \u2028","n":[1,2.5,null,true],"nested":{"b":1,"a":2}}]'

    def test_the_default_install_uses_orjson(self) -> None:
        orjson = pytest.importorskip("orjson")
        assert sioserver.AsyncServer().parser.json is orjson


class TestMaxConnections:
    async def test_handshakes_past_the_limit_get_503_and_a_freed_slot_is_reused(self, serve: Serve) -> None:
        sio = sioserver.AsyncServer(max_connections=2)
        url = await serve(sio)
        async with aiohttp.ClientSession() as http:
            sids = []
            for _ in range(2):
                response = await polling_handshake(http, url)
                assert response.status == 200
                sids.append(json.loads((await response.text())[1:])["sid"])
            refused = await polling_handshake(http, url)
            assert refused.status == 503
            assert await refused.json() == {"code": 3, "message": "Too many connections"}
            # the client closes one session (Engine.IO close packet): the next handshake is accepted
            close = await http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sids[0]}", data="1")
            assert close.status == 200
            assert (await polling_handshake(http, url)).status == 200


class TestAlwaysConnect:
    async def test_the_client_is_in_before_the_handler_runs_and_is_told_when_it_refuses(
        self, sio_app: Any
    ) -> None:
        sio, client = await sio_app(sioserver.AsyncServer(always_connect=True))
        release = asyncio.Event()
        handler_started = asyncio.Event()

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
            handler_started.set()
            await release.wait()
            return bool(auth and auth.get("ok"))

        c: RawClient = await client()
        await c.send('40{"ok":false}')
        assert (await c.recv()).startswith('40{"sid":')  # the reply comes while the handler waits
        await handler_started.wait()
        release.set()
        assert await c.recv() == "41"  # refused after all: a DISCONNECT, not a CONNECT_ERROR

    async def test_without_it_a_refusal_is_a_connect_error(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        sio.on("connect", lambda sid, environ: False)
        c: RawClient = await client()
        await c.send("40")
        assert await c.recv() == '44{"message":"Connection rejected by server"}'


class TestAsyncHandlersFalse:
    async def test_one_clients_events_are_handled_one_at_a_time_in_order(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer(async_handlers=False))
        log: list[str] = []

        @sio.on("slow")
        async def slow(sid: str) -> str:
            log.append("slow start")
            await asyncio.sleep(0.1)  # the scenario: a handler that takes a while
            log.append("slow end")
            return "slow"

        @sio.on("fast")
        def fast(sid: str) -> str:
            log.append("fast")
            return "fast"

        c: RawClient = await client()
        await c.connect()
        await c.send('421["slow"]')
        await c.send('422["fast"]')
        assert await c.recv() == '431["slow"]'
        assert await c.recv() == '432["fast"]'
        assert log == ["slow start", "slow end", "fast"]

    async def test_by_default_a_fast_event_overtakes_a_slow_one(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        done = asyncio.Event()

        @sio.on("slow")
        async def slow(sid: str) -> str:
            await done.wait()  # released only by the fast handler: deadlocks if handled in order
            return "slow"

        @sio.on("fast")
        def fast(sid: str) -> str:
            done.set()
            return "fast"

        c: RawClient = await client()
        await c.connect()
        await c.send('421["slow"]')
        await c.send('422["fast"]')
        assert await c.recv() == '432["fast"]'
        assert await c.recv() == '431["slow"]'

    async def test_past_max_backlog_waiting_messages_the_connection_is_closed(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer(async_handlers=False, max_backlog=3))
        reasons: list[str] = []
        sio.on("disconnect", lambda sid, reason: reasons.append(reason))
        started = asyncio.Event()
        never = asyncio.Event()

        @sio.on("block")
        async def block(sid: str) -> None:
            started.set()
            await never.wait()

        c: RawClient = await client()
        await c.connect()
        await c.send('42["block"]')
        await started.wait()
        for i in range(3):
            await c.send(f'42["queued",{i}]')
        assert not await c.closed(0.2)  # three waiting messages are within the limit
        await c.send('42["one too many"]')
        assert await c.closed()
        assert reasons == ["parse error"]


class TestCorsCredentials:
    @pytest.mark.parametrize(("credentials", "expected"), [(True, "true"), (False, None)])
    async def test_the_allow_credentials_header(self, serve: Serve, credentials: bool, expected: str | None
                                                ) -> None:
        sio = sioserver.AsyncServer(cors_allowed_origins=["https://app.example"], cors_credentials=credentials)
        url = await serve(sio)
        origin = {"Origin": "https://app.example"}
        async with aiohttp.ClientSession() as http:
            response = await polling_handshake(http, url, origin)
            assert response.status == 200
            assert response.headers.get("Access-Control-Allow-Origin") == "https://app.example"
            assert response.headers.get("Access-Control-Allow-Credentials") == expected
            preflight = await http.options(f"{url}/socket.io/?EIO=4&transport=polling", headers={
                **origin, "Access-Control-Request-Method": "POST"})
            assert preflight.headers.get("Access-Control-Allow-Credentials") == expected


class TestEngineioLogger:
    async def test_a_logger_object_receives_the_engine_lines(self, serve: Serve,
                                                             caplog: pytest.LogCaptureFixture) -> None:
        engine_log = logging.getLogger("test.readme.engineio")
        sio = sioserver.AsyncServer(engineio_logger=engine_log, max_connections=1)
        url = await serve(sio)
        caplog.set_level(logging.INFO, logger="test.readme.engineio")
        async with aiohttp.ClientSession() as http:
            assert (await polling_handshake(http, url)).status == 200
            assert (await polling_handshake(http, url)).status == 503
            bad = await http.get(f"{url}/socket.io/?EIO=4&transport=carrier-pigeon")
            assert bad.status == 400
        lines = [(r.name, r.getMessage()) for r in caplog.records if r.name == "test.readme.engineio"]
        assert ("test.readme.engineio", "refusing a handshake: max_connections=1 reached") in lines
        assert any("Transport unknown" in message for _, message in lines)

    async def test_true_logs_at_info(self, serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
        root, engine_log = logging.getLogger(), logging.getLogger("sioserver.engine")
        saved = root.level, engine_log.level
        root.setLevel(logging.WARNING)  # so INFO lines are hidden without the option
        engine_log.setLevel(logging.NOTSET)
        try:
            sio = sioserver.AsyncServer(engineio_logger=True)
            url = await serve(sio)
            async with aiohttp.ClientSession() as http:
                assert (await http.get(f"{url}/socket.io/?EIO=4&transport=carrier-pigeon")).status == 400
        finally:
            root.setLevel(saved[0])
            engine_log.setLevel(saved[1])
        assert any(r.levelno == logging.INFO and "Transport unknown" in r.getMessage()
                   for r in caplog.records if r.name == "sioserver.engine")


class TestExceptionNames:
    def test_python_socketio_names_exist_and_catch_what_they_catch_there(self) -> None:
        from sioserver import exceptions

        assert exceptions.TimeoutError is sioserver.AckTimeoutError
        assert issubclass(exceptions.TimeoutError, TimeoutError)  # the builtin too
        assert exceptions.SocketIOError is sioserver.SioserverError
        assert issubclass(exceptions.ConnectionRefusedError, exceptions.ConnectionError)
        assert issubclass(exceptions.BadNamespaceError, exceptions.SocketIOError)
        for name in ("SocketIOError", "ConnectionError", "ConnectionRefusedError", "TimeoutError",
                     "BadNamespaceError", "DisconnectedError"):
            assert hasattr(python_socketio.exceptions, name)
            assert issubclass(getattr(exceptions, name), exceptions.SocketIOError), name

    def test_socketio_exceptions_is_reachable_right_after_the_import(self) -> None:
        import subprocess
        import sys

        code = ("import sioserver as socketio; "
                "assert socketio.exceptions.TimeoutError is socketio.AckTimeoutError; "
                "assert issubclass(socketio.UnknownSidError, KeyError)")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

    async def test_a_call_timeout_is_caught_as_socketio_exceptions_timeout_error(self, sio_app: Any) -> None:
        import sioserver as socketio

        sio, client = await sio_app(socketio.AsyncServer())
        c: RawClient = await client()
        sid = await c.connect()
        with pytest.raises(socketio.exceptions.TimeoutError):
            await sio.call("question", to=sid, timeout=0.05)  # the raw client never answers

    @pytest.mark.parametrize(("args", "payload"), [
        ((), {"message": "Connection rejected by server"}),
        (("no",), {"message": "no"}),
        (("no", {"code": 1}), {"message": "no", "data": {"code": 1}}),
        (("no", 1, "two", [3]), {"message": "no", "data": [1, "two", [3]]}),
        ((401,), {"message": "401"}),
    ])
    async def test_connection_refused_takes_python_socketios_arguments(
        self, sio_app: Any, args: tuple[Any, ...], payload: dict[str, Any]
    ) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())

        @sio.event
        def connect(sid: str, environ: dict[str, Any]) -> None:
            raise sioserver.ConnectionRefusedError(*args)

        reference = python_socketio.exceptions.ConnectionRefusedError(*args)
        # the same arguments mean this to python-socketio (its tuple of data is a JSON array on the wire)
        assert json.loads(json.dumps(reference.error_args)) == payload
        assert sioserver.ConnectionRefusedError(*args).error_args == payload
        c: RawClient = await client()
        await c.send("40")
        assert json.loads((await c.recv())[2:]) == payload
