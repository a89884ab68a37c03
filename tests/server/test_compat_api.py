"""python-socketio's server API that sioserver keeps (each seen differ before it was added), and Node's
per-socket features in Python's shape: ``use_packets`` (``socket.use``), ``on_any`` / ``on_any_outgoing``
(``onAny`` / ``onAnyOutgoing``) and the ``disconnecting`` event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio as python_socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver

from .conftest import RawClient


@pytest.fixture
async def py_client() -> AsyncIterator[Any]:
    """``client = await py_client(sio)``: python-socketio's client connected to ``sio`` over WebSocket."""
    servers: list[TestServer] = []
    clients: list[Any] = []

    async def connect(sio: sioserver.AsyncServer, **kwargs: Any) -> Any:
        if not servers:
            app = web.Application()
            sio.attach(app)
            servers.append(TestServer(app))
            await servers[0].start_server()
        client = python_socketio.AsyncClient(reconnection=False)
        clients.append(client)
        await client.connect(str(servers[0].make_url("/")), transports=["websocket"], wait_timeout=5, **kwargs)
        return client

    yield connect
    for client in clients:
        await client.disconnect()
    for server in servers:
        await server.close()


# python-socketio's client sends its DISCONNECT packet and closes the WebSocket without waiting for the
# packet to be written: the server sees one or the other first
CLIENT_LEFT = ("client disconnect", "transport close")


def deliveries(client: Any, *events: str) -> asyncio.Queue[tuple[Any, ...]]:
    queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    for event in events:
        client.on(event, lambda *args, _e=event: queue.put_nowait((_e, *args)))
    return queue


async def get(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), 5)


class TestAttributes:
    async def test_get_environ_environ_reason_reserved_events(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        sids: list[str] = []
        sio.on("connect", lambda sid, environ: sids.append(sid))
        client = await py_client(sio, headers={"X-Probe": "p1"})
        (sid,) = sids
        environ = sio.get_environ(sid)
        assert environ is not None and environ["HTTP_X_PROBE"] == "p1"
        assert sio.environ[client.eio.sid] is environ  # python-socketio's key: the Engine.IO sid
        assert sio.environ[sid] is environ
        assert client.eio.sid in sio.environ and len(sio.environ) == 1
        assert sio.get_environ("nobody") is None
        with pytest.raises(KeyError):
            sio.environ["nobody"]
        assert sio.reason.CLIENT_DISCONNECT == "client disconnect"
        assert sio.reason.PING_TIMEOUT == python_socketio.AsyncServer.reason.PING_TIMEOUT
        assert set(python_socketio.AsyncServer().reserved_events) <= set(sio.reserved_events)

    async def test_manager(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        sids: list[str] = []

        @sio.event
        async def connect(sid: str, environ: dict[str, Any]) -> None:
            sids.append(sid)
            await sio.enter_room(sid, "r")

        a = await py_client(sio)
        await py_client(sio)
        sa, sb = sids
        manager = sio.manager
        assert manager.is_connected(sa, "/") and not manager.is_connected("nobody", "/")
        assert sorted(manager.get_participants("/", "r")) == sorted([(sa, a.eio.sid), (sb, manager.eio_sid_from_sid(sb))])
        assert list(manager.get_participants("/", sa)) == [(sa, a.eio.sid)]
        assert manager.sid_from_eio_sid(a.eio.sid, "/") == sa
        assert manager.get_rooms(sa, "/") == sorted([sa, "r"])
        assert manager.rooms["/"]["r"] == {sa: a.eio.sid, sb: manager.eio_sid_from_sid(sb)}
        assert manager.get_namespaces() == ["/"]

    async def test_class_based_namespaces_take_the_same_arguments(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        answers: list[Any] = []

        class Ns(sioserver.AsyncNamespace):
            async def on_go(self, sid: str) -> None:
                environ = self.get_environ(sid)
                answers.append(environ is not None and "REMOTE_ADDR" in environ)
                answers.append(await self.call("ask", to=sid, ignore_queue=True, timeout=5))
                await self.send("done", to=sid, ignore_queue=True)

        sio.register_namespace(Ns("/"))
        client = await py_client(sio)
        client.on("ask", lambda: "yes")
        got = deliveries(client, "message")
        await client.emit("go")
        assert await get(got) == ("message", "done")
        assert answers == [True, "yes"]

    async def test_ignore_queue_is_accepted_on_emit_send_and_call(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        sids: list[str] = []
        sio.on("connect", lambda sid, environ: sids.append(sid))
        client = await py_client(sio)
        client.on("ask", lambda: "answer")
        got = deliveries(client, "news", "message")
        await sio.emit("news", 1, ignore_queue=True)
        await sio.send("hi", to=sids[0], ignore_queue=True)
        assert await get(got) == ("news", 1)
        assert await get(got) == ("message", "hi")
        assert await sio.call("ask", to=sids[0], ignore_queue=True, timeout=5) == "answer"


class TestUnknownSid:
    async def test_as_python_socketio(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        c: RawClient = await client()
        await c.connect()  # the namespace exists
        with pytest.raises(KeyError):
            await sio.get_session("nobody")
        with pytest.raises(KeyError):
            await sio.save_session("nobody", {})
        with pytest.raises(sioserver.DisconnectedError):  # what sioserver raised before: still caught
            await sio.get_session("nobody")
        assert sio.rooms("nobody") == []
        await sio.leave_room("nobody", "r")  # nothing
        await sio.disconnect("nobody")  # nothing
        await sio.emit("to nobody", to="nobody")  # nothing


class TestDisconnectHandlers:
    async def test_session_rooms_and_environ_inside_the_disconnect_handler(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        seen: list[Any] = []
        done = asyncio.Event()

        @sio.event
        async def connect(sid: str, environ: dict[str, Any]) -> None:
            await sio.save_session(sid, {"user": "ann"})
            await sio.enter_room(sid, "team")

        @sio.event
        async def disconnect(sid: str, reason: str) -> None:
            await asyncio.sleep(0)  # the handler may await before it reads
            seen.append((dict(await sio.get_session(sid)), sio.rooms(sid), sio.get_environ(sid) is not None, reason))
            async with sio.session(sid) as session:
                session["seen"] = True
            done.set()

        client = await py_client(sio)
        await client.disconnect()
        await asyncio.wait_for(done.wait(), 5)
        ((session, rooms, environ, reason),) = seen
        assert session == {"user": "ann"} and "team" in rooms and environ
        assert reason in CLIENT_LEFT
        assert sio.manager.get_namespaces() == ["/"] and not list(sio.manager.get_participants("/", "team"))
        with pytest.raises(KeyError):  # gone once the handler is done
            await sio.get_session(rooms[0] if rooms[0] != "team" else rooms[1])

    async def test_disconnecting_runs_first_with_the_rooms_still_joined(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        order: list[Any] = []
        done = asyncio.Event()

        @sio.event
        async def connect(sid: str, environ: dict[str, Any]) -> None:
            await sio.enter_room(sid, "team")

        @sio.on("disconnecting")
        def disconnecting(sid: str, reason: str) -> None:
            # Node's event: the socket is still in its rooms, so a broadcast to them would reach it
            order.append(("disconnecting", sorted(sio.manager.get_rooms(sid, "/")),
                          [s for s, _ in sio.manager.get_participants("/", "team")] == [sid], reason))

        @sio.event
        def disconnect(sid: str) -> None:
            order.append(("disconnect", list(sio.manager.get_participants("/", "team"))))
            done.set()

        client = await py_client(sio)
        sid = client.get_sid()
        await client.disconnect()
        await asyncio.wait_for(done.wait(), 5)
        assert order[0][:3] == ("disconnecting", sorted([sid, "team"]), True) and order[0][3] in CLIENT_LEFT
        assert order[1:] == [("disconnect", [])]

    async def test_class_based_on_disconnecting(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        seen: list[Any] = []
        done = asyncio.Event()

        class Chat(sioserver.AsyncNamespace):
            async def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
                await self.enter_room(sid, "lobby")

            def on_disconnecting(self, sid: str, reason: str) -> None:
                seen.append(self.rooms(sid))

            def on_disconnect(self, sid: str) -> None:
                done.set()

        sio.register_namespace(Chat("/chat"))
        client = await py_client(sio, namespaces=["/chat"])
        sid = client.get_sid("/chat")
        await client.disconnect()
        await asyncio.wait_for(done.wait(), 5)
        assert seen == [sorted([sid, "lobby"])]


class TestTriggerEvent:
    async def test_an_overridden_trigger_event_sees_every_event(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        seen: list[Any] = []

        class Audited(sioserver.AsyncNamespace):
            async def trigger_event(self, event: str, *args: Any) -> Any:
                seen.append((event, len(args)))
                if event == "blocked":
                    return "refused by trigger_event"
                return await super().trigger_event(event, *args)

            def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
                seen.append("on_connect")

            def on_echo(self, sid: str, data: Any) -> Any:
                return data

            def on_blocked(self, sid: str) -> str:
                return "handler ran"

        sio.register_namespace(Audited("/"))
        client = await py_client(sio)
        assert await client.call("echo", {"x": 1}, timeout=5) == {"x": 1}
        assert await client.call("blocked", timeout=5) == "refused by trigger_event"
        assert seen == [("connect", 3), "on_connect", ("echo", 2), ("blocked", 1)]


class TestEmitCallbacks:
    async def test_emit_to_a_room_with_a_callback_calls_it_for_each_answer(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()

        @sio.event
        async def connect(sid: str, environ: dict[str, Any]) -> None:
            await sio.enter_room(sid, "r")

        names = ["a", "b"]
        for name in names:
            client = await py_client(sio)
            client.on("vote", lambda _name=name: _name)
        answers: asyncio.Queue[Any] = asyncio.Queue()
        await sio.emit("vote", room="r", callback=answers.put_nowait)
        assert sorted([await get(answers), await get(answers)]) == names

    async def test_a_callback_with_its_own_timeout_is_told_when_no_answer_comes(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        c: RawClient = await client()
        sid = await c.connect()
        results: asyncio.Queue[Any] = asyncio.Queue()
        await sio.emit("question", to=sid, callback=lambda *args: results.put_nowait(args), timeout=0.05)
        (error,) = await get(results)
        assert isinstance(error, sioserver.AckTimeoutError)
        assert isinstance(error, sioserver.exceptions.TimeoutError)

    async def test_without_a_timeout_the_expiry_is_logged(self, sio_app: Any, caplog: pytest.LogCaptureFixture
                                                          ) -> None:
        sio, client = await sio_app(sioserver.AsyncServer(ack_timeout=0.05))
        c: RawClient = await client()
        sid = await c.connect()
        called: list[Any] = []
        expired = asyncio.Event()
        handler = logging.Handler()
        handler.emit = lambda record: expired.set()  # type: ignore[method-assign]
        logging.getLogger("sioserver.server").addHandler(handler)
        try:
            with caplog.at_level(logging.WARNING, logger="sioserver.server"):
                await sio.emit("question", to=sid, callback=lambda *args: called.append(args))
                await asyncio.wait_for(expired.wait(), 5)
        finally:
            logging.getLogger("sioserver.server").removeHandler(handler)
        assert called == []  # as python-socketio: never called without an answer
        assert any("did not acknowledge 'question'" in r.getMessage() for r in caplog.records)


class TestPacketMiddlewares:
    async def test_they_see_every_event_change_arguments_and_drop(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        seen: list[Any] = []

        @sio.use_packets
        def audit(sid: str, event: str, args: list[Any]) -> None:
            seen.append((event, list(args)))

        @sio.use_packets
        async def policy(sid: str, event: str, args: list[Any]) -> bool:
            await asyncio.sleep(0)
            if event == "secret":
                return False
            if event == "boom":
                raise ValueError("not allowed")
            if args and isinstance(args[0], str):
                args[0] = args[0].upper()
            return True

        @sio.on("echo")
        def echo(sid: str, data: Any) -> Any:
            return data

        ran: list[str] = []
        sio.on("secret", lambda sid: ran.append("secret"))
        sio.on("boom", lambda sid: ran.append("boom"))
        client = await py_client(sio)
        assert await client.call("echo", "quiet", timeout=5) == "QUIET"
        for dropped in ("secret", "boom"):
            with pytest.raises(python_socketio.exceptions.TimeoutError):
                await client.call(dropped, timeout=0.3)  # no handler ran, so no ack
        assert await client.call("echo", "after", timeout=5) == "AFTER"
        assert ran == []
        assert seen == [("echo", ["quiet"]), ("secret", []), ("boom", []), ("echo", ["after"])]


class TestAnyListeners:
    async def test_on_any_sees_handled_events_and_the_catch_all_keeps_its_meaning(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        incoming: list[Any] = []
        caught: list[Any] = []
        sio.on_any(lambda sid, event, *args: incoming.append((event, args)))
        sio.on("*", lambda event, sid, *args: caught.append(event))
        sio.on("known", lambda sid, x: x)
        client = await py_client(sio)
        assert await client.call("known", 1, timeout=5) == 1
        await client.emit("unknown", 2)
        assert await client.call("known", 3, timeout=5) == 3  # in order: unknown was dispatched before
        assert incoming == [("known", (1,)), ("unknown", (2,)), ("known", (3,))]
        assert caught == ["unknown"]

    async def test_on_any_outgoing_sees_emits_broadcasts_and_calls_per_recipient(self, py_client: Any) -> None:
        sio = sioserver.AsyncServer()
        outgoing: list[Any] = []
        sids: list[str] = []
        sio.on("connect", lambda sid, environ: sids.append(sid))

        @sio.on_any_outgoing
        def record(sid: str, event: str, *args: Any) -> None:
            outgoing.append((sid, event, args))

        a = await py_client(sio)
        b = await py_client(sio)
        a.on("ask", lambda: "yes")
        got = deliveries(b, "all")
        await sio.emit("one", 1, to=sids[0])
        await sio.emit("all", (2, 3))
        assert await sio.call("ask", to=sids[0], timeout=5) == "yes"
        assert await get(got) == ("all", 2, 3)
        sa, sb = sids
        assert sorted(outgoing) == sorted([(sa, "one", (1,)), (sa, "all", (2, 3)), (sb, "all", (2, 3)),
                                           (sa, "ask", ())])
