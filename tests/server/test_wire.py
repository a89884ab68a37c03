"""The Socket.IO server on the wire: exact packets for connect, errors, events, acks, binary and rooms."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import pytest

import sioserver

from .conftest import RawClient


@pytest.fixture
def sio_app(sio_app_fronts: Any) -> Any:
    """Every wire test runs on aiohttp attach and on ASGIApp under uvicorn: the same bytes either way."""
    return sio_app_fronts

def server(**options: Any) -> sioserver.AsyncServer:
    return sioserver.AsyncServer(ping_interval=10, **options)


async def wait_for(predicate: Any, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


class TestConnect:
    async def test_connect_reply_has_only_a_fresh_sid(self, sio_app: Any) -> None:
        _, client = await sio_app(server())
        c: RawClient = await client()
        await c.send("40")
        reply = await c.recv()
        assert re.fullmatch(r'40\{"sid":"[A-Za-z0-9_-]+"\}', reply)
        sid = json.loads(reply[2:])["sid"]
        assert sid != c.open["sid"]  # never the Engine.IO sid

    async def test_nothing_is_sent_before_connect(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())

        @sio.event
        async def connect(sid: str, environ: dict[str, Any]) -> None:
            await sio.emit("hello", "early", to=sid)

        c = await client()
        await sio.emit("broadcast", 1)
        assert await c.silent(0.3)

    async def test_connect_handler_emits_arrive_after_the_reply(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())

        @sio.event
        async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            await sio.emit("welcome", auth, to=sid)
            await asyncio.sleep(0.05)

        c = await client()
        await c.send('40{"token":"é"}')
        assert (await c.recv()).startswith('40{"sid":')
        assert await c.recv() == '42["welcome",{"token":"é"}]'

    async def test_custom_namespace(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        seen = []
        sio.on("connect", lambda sid, environ: seen.append(sid), namespace="/custom")
        c = await client()
        await c.send("40/custom")  # no comma, no payload
        reply = await c.recv()
        assert reply.startswith('40/custom,{"sid":"')
        assert seen == [json.loads(reply[len("40/custom,"):])["sid"]]

    async def test_unknown_namespace_keeps_the_connection_open(self, sio_app: Any) -> None:
        _, client = await sio_app(server())
        c = await client()
        await c.send("40/random,")
        assert await c.recv() == '44/random,{"message":"Invalid namespace"}'
        await c.connect("/")  # still usable

    async def test_refusal_carries_message_and_data(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())

        @sio.event
        def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
            raise sioserver.ConnectionRefusedError("not authorized", {"retry": False})

        c = await client()
        await c.send("40")
        assert await c.recv() == '44{"message":"not authorized","data":{"retry":false}}'

    async def test_returning_false_refuses(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        sio.on("connect", lambda sid, environ: False)
        c = await client()
        await c.send("40")
        assert await c.recv() == '44{"message":"Connection rejected by server"}'

    async def test_middleware_refuses_before_connect(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        calls = []

        @sio.middleware(namespace="/admin")
        async def auth_required(sid: str, environ: dict[str, Any], auth: Any) -> None:
            if not auth or auth.get("token") != "secret":
                raise sioserver.ConnectionRefusedError("auth required", {"hint": "token"})

        sio.on("connect", lambda sid, environ: calls.append(sid), namespace="/admin")
        c = await client()
        await c.send('40/admin,{"token":"wrong"}')
        assert await c.recv() == '44/admin,{"message":"auth required","data":{"hint":"token"}}'
        assert calls == []
        await c.connect("/admin", {"token": "secret"})
        assert len(calls) == 1

    async def test_dynamic_namespace_and_cleanup(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        pattern = re.compile(r"/room-\d+")
        sio.on("ping", lambda sid: "pong", namespace=pattern)
        c = await client()
        await c.connect("/room-42")
        await c.send('42/room-42,1["ping"]')
        assert await c.recv() == '43/room-42,1["pong"]'
        assert "/room-42" in sio._namespaces
        await c.send("41/room-42,")
        await wait_for(lambda: "/room-42" not in sio._namespaces)
        await c.send("40/room-x,")
        assert await c.recv() == '44/room-x,{"message":"Invalid namespace"}'

    async def test_catch_all_namespace(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        seen: list[tuple[str, ...]] = []
        sio.on("connect", lambda nsp, sid, environ: seen.append((nsp, sid)), namespace="*")
        sio.on("*", lambda event, nsp, sid, *args: f"{event}@{nsp}", namespace="*")
        c = await client()
        await c.connect("/anything")
        await c.send('42/anything,7["what",1]')
        assert await c.recv() == '43/anything,7["what@/anything"]'
        assert seen[0][0] == "/anything"

    async def test_connect_timeout_closes(self, sio_app: Any) -> None:
        sio, client = await sio_app(server(connect_timeout=0.2))
        c = await client()
        assert await c.closed(2)
        assert sio.stats["connect_timeouts"] == 1


class TestViolationsCloseTheConnection:
    @pytest.mark.parametrize(
        "message",
        [
            "4abc",  # unknown Socket.IO packet type
            '42{}',  # EVENT payload not an array
            '42abc["x"]',  # garbage between type and payload
            '42["connect"]',  # reserved event name
            '42["disconnecting",1]',
            "42[]",  # empty EVENT
            "42[1,2",  # bad JSON
            '42/admin,["x"]',  # namespace not connected
            "40",  # duplicate CONNECT
            "43abc[]",  # bad ack id
            '44{"message":"x"}',  # CONNECT_ERROR from a client
            '451-["x",{"_placeholder":true,"num":5}]',  # placeholder out of range
        ],
    )
    async def test_closed_with_a_logged_reason(self, sio_app: Any, message: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
        sio, client = await sio_app(server())
        disconnects: list[str] = []
        sio.on("disconnect", lambda sid, reason: disconnects.append(reason))
        c = await client()
        await c.connect()
        with caplog.at_level(logging.WARNING, logger="sioserver.server"):
            await c.send(message)
            if message.startswith("451-"):
                await c.send(b"\x01")
            assert await c.closed()
        assert disconnects == ["parse error"]
        assert any("closing the connection" in r.getMessage() for r in caplog.records)

    async def test_bad_client_does_not_disturb_others(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        sio.on("echo", lambda sid, x: x)
        good = await client()
        await good.connect()
        bad = await client()
        await bad.connect()
        await bad.send("4abc")
        assert await bad.closed()
        await good.send('421["echo","still here"]')
        assert await good.recv() == '431["still here"]'


class TestEventsAndAcks:
    async def test_handler_return_is_the_ack(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        sio.on("one", lambda sid, x: x)
        sio.on("many", lambda sid, x: (x, "two"))
        sio.on("none", lambda sid: None)

        @sio.on("slow")
        async def slow(sid: str, x: int) -> int:
            await asyncio.sleep(0.02)
            return x * 2

        c = await client()
        await c.connect()
        await c.send('4212["one",{"k":"ü"}]')
        assert await c.recv() == '4312[{"k":"ü"}]'
        await c.send('4213["many",1]')
        assert await c.recv() == '4313[1,"two"]'
        await c.send('4214["none"]')
        assert await c.recv() == "4314[]"
        await c.send('4215["slow",21]')
        assert await c.recv() == "4315[42]"

    async def test_binary_both_ways(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        received = []

        @sio.on("bin")
        def on_bin(sid: str, data: Any) -> Any:
            received.append(data)
            return {"echo": data["blob"], "list": [bytearray(b"\x02"), memoryview(b"\x03")]}

        c = await client()
        await c.connect()
        await c.send('451-1["bin",{"blob":{"_placeholder":true,"num":0}}]')
        await c.send(b"\x00\xff")
        await wait_for(lambda: received == [{"blob": b"\x00\xff"}])
        assert await c.recv() == ('463-1[{"echo":{"_placeholder":true,"num":0},"list":'
                                  '[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]}]')
        assert [await c.recv() for _ in range(3)] == [b"\x00\xff", b"\x02", b"\x03"]

    async def test_server_call_gets_the_answer(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        c = await client()
        sid = await c.connect()
        call = asyncio.ensure_future(sio.call("question", {"q": 1}, to=sid, timeout=2))
        msg = await c.recv()
        m = re.fullmatch(r'42(\d+)\["question",\{"q":1\}\]', msg)
        assert m
        await c.send(f'43{m.group(1)}["answer",2]')
        assert await call == ("answer", 2)

    async def test_call_times_out(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        c = await client()
        sid = await c.connect()
        with pytest.raises(sioserver.AckTimeoutError):
            await sio.call("question", to=sid, timeout=0.1)
        assert not sio._namespaces["/"].sockets[sid].acks  # the pending ack is gone

    async def test_pending_call_fails_at_once_on_disconnect(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        c = await client()
        sid = await c.connect()
        call = asyncio.ensure_future(sio.call("question", to=sid, timeout=30))
        await c.recv()
        await c.ws.close()
        with pytest.raises(sioserver.DisconnectedError, match="transport close"):
            await asyncio.wait_for(call, 2)

    async def test_emit_callback(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        c = await client()
        sid = await c.connect()
        answers: list[Any] = []
        await sio.emit("q", (1, 2), to=sid, callback=lambda *a: answers.append(a))
        msg = await c.recv()
        m = re.fullmatch(r'42(\d+)\["q",1,2\]', msg)
        assert m
        await c.send(f"43{m.group(1)}[3]")
        await wait_for(lambda: answers == [(3,)])

    async def test_broadcast_with_acks_collects_answers(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        clients = [await client() for _ in range(3)]
        for c in clients:
            await c.connect()
        result = asyncio.ensure_future(sio.timeout(1).emit_with_ack("vote"))
        for i, c in enumerate(clients[:2]):
            m = re.fullmatch(r'42(\d+)\["vote"\]', await c.recv())
            assert m
            await c.send(f"43{m.group(1)}[{i}]")
        await clients[2].recv()  # never answers: the result comes at the timeout without it
        assert sorted(await result) == [0, 1]

    async def test_catch_all_event(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        sio.on("*", lambda event, sid, *args: [event, *args])
        c = await client()
        await c.connect()
        await c.send('421["anything",1,2]')
        assert await c.recv() == '431[["anything",1,2]]'

    async def test_class_based_namespace(self, sio_app: Any) -> None:
        class Chat(sioserver.AsyncNamespace):
            def on_connect(self, sid: str, environ: dict[str, Any]) -> None:
                self.connected = sid

            async def on_shout(self, sid: str, text: str) -> str:
                await self.emit("heard", text.upper(), to=sid)
                return "ok"

        sio, client = await sio_app(server())
        chat = Chat("/chat")
        sio.register_namespace(chat)
        c = await client()
        sid = await c.connect("/chat")
        assert chat.connected == sid
        await c.send('42/chat,5["shout","hi"]')
        assert await c.recv() == '42/chat,["heard","HI"]'
        assert await c.recv() == '43/chat,5["ok"]'


class TestRoomsAndBroadcasts:
    async def test_rooms_to_and_excluding(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        a, b, c = [await client() for _ in range(3)]
        sa, sb, sc = [await x.connect() for x in (a, b, c)]
        await sio.enter_room(sa, "red")
        await sio.enter_room(sb, "red")
        await sio.enter_room(sc, "blue")
        await sio.enter_room(sb, "muted")
        assert sio.rooms(sb) == sorted([sb, "red", "muted"])
        await sio.emit("m", "to red", room="red")
        assert await a.recv() == '42["m","to red"]'
        assert await b.recv() == '42["m","to red"]'
        await sio.to("red").except_("muted").emit("m", "red, not muted")
        assert await a.recv() == '42["m","red, not muted"]'
        await sio.emit("m", "all but a", skip_sid=sa)
        assert await b.recv() == '42["m","all but a"]'
        assert await c.recv() == '42["m","all but a"]'
        await sio.to(["red", "blue"]).emit("m", "once each")
        for x in (a, b, c):
            assert await x.recv() == '42["m","once each"]'
            assert await x.silent(0.05)
        await sio.close_room("red")
        await sio.emit("m", "red closed", room="red")
        assert await a.silent(0.1)
        await sio.leave_room(sc, "blue")
        assert sio.rooms(sc) == [sc]

    async def test_no_client_can_join_another_clients_room(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        a, b = await client(), await client()
        sa, sb = await a.connect(), await b.connect()
        with pytest.raises(ValueError, match="private room"):
            await sio.enter_room(sa, sb)

    async def test_session(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        c = await client()
        sid = await c.connect()
        async with sio.session(sid) as session:
            session["user"] = "ada"
        assert (await sio.get_session(sid)) == {"user": "ada"}


class TestDisconnect:
    async def test_server_disconnect(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        reasons: list[str] = []
        sio.on("disconnect", lambda sid, reason: reasons.append(reason))
        c = await client()
        sid = await c.connect()
        await sio.disconnect(sid)
        assert await c.recv() == "41"
        assert reasons == ["server disconnect"]
        assert sio.rooms is not None and sid not in sio._namespaces["/"].sockets

    async def test_client_namespace_disconnect_keeps_the_connection(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        reasons: list[str] = []
        sio.on("disconnect", lambda sid, reason: reasons.append(reason), namespace="/a")
        sio.on("echo", lambda sid, x: x)
        c = await client()
        await c.connect("/a")
        await c.send("41/a,")
        await wait_for(lambda: reasons == ["client disconnect"])
        await c.connect("/")
        await c.send('421["echo",1]')
        assert await c.recv() == "431[1]"

    async def test_disconnect_handler_with_one_argument(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        gone: list[str] = []
        sio.on("disconnect", lambda sid: gone.append(sid))  # noqa: PLW0108 - a one-argument handler
        c = await client()
        sid = await c.connect()
        await c.ws.close()
        await wait_for(lambda: gone == [sid])

    async def test_shutdown(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        reasons: list[str] = []
        sio.on("disconnect", lambda sid, reason: reasons.append(reason))
        c = await client()
        await c.connect()
        await sio.shutdown()
        assert await c.closed()
        assert reasons == ["server shutting down"]


class TestOptions:
    def test_unknown_option_names_the_closest(self) -> None:
        with pytest.raises(TypeError, match="did you mean 'cors_allowed_origins'"):
            sioserver.AsyncServer(cors_allowed_origin="*")
        with pytest.raises(TypeError, match="did you mean 'connect_timeout'"):
            sioserver.AsyncServer(conect_timeout=1)


class TestHandlerTasks:
    async def test_async_handlers_run_in_a_task_of_their_own(self, sio_app: Any) -> None:
        import contextvars

        var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
        sio, client = await sio_app(server())
        tasks: list[Any] = []

        @sio.on("timed")
        async def timed(sid: str) -> str:
            var.set("set by the handler")
            async with asyncio.timeout(1):  # needs a current task: aiohttp's client timeouts do too
                tasks.append(asyncio.current_task())
            return "ok"

        c = await client()
        await c.connect()
        await c.send('421["timed"]')
        assert await c.recv() == '431["ok"]'
        await c.send('422["timed"]')
        assert await c.recv() == '432["ok"]'
        assert len(tasks) == 2 and None not in tasks and tasks[0] is not tasks[1]
        assert var.get() == "unset"  # nothing leaks into the server's context


    async def test_running_handlers_are_held_until_they_end_however_they_end(self, sio_app: Any) -> None:
        # shutdown waits on this set: a handler's task is in it while it runs and leaves it when it
        # returns, raises or is cancelled (each task takes itself out, without a done-callback)
        sio, client = await sio_app(server())
        gate = asyncio.Event()
        started: list[asyncio.Task[Any] | None] = []

        @sio.on("wait")
        async def wait(sid: str, how: str) -> str:
            started.append(asyncio.current_task())
            await gate.wait()
            if how == "raise":
                raise RuntimeError("handler failed")
            return how

        c = await client()
        await c.connect()
        for i, how in enumerate(("return", "raise", "cancel"), 1):
            await c.send(f'42{i}["wait","{how}"]')
        await wait_for(lambda: len(started) == 3)
        assert set(started) == sio._handler_tasks
        task = started[2]
        assert task is not None
        task.cancel()
        gate.set()
        assert await c.recv() == '431["return"]'
        await wait_for(lambda: not sio._handler_tasks)
        assert all(t is not None and t.done() for t in started)


class TestGracefulShutdown:
    async def test_shutdown_waits_for_handlers_fails_acks_and_refuses_handshakes(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        finished: list[str] = []
        reasons: list[str] = []
        sio.on("disconnect", lambda sid, reason: reasons.append(reason))

        @sio.on("work")
        async def work(sid: str) -> None:
            await asyncio.sleep(0.3)
            finished.append(sid)

        c = await client()
        sid = await c.connect()
        await c.send('42["work"]')
        pending_call = asyncio.ensure_future(sio.call("question", to=sid, timeout=30))
        await c.recv()
        await asyncio.sleep(0.05)
        shutdown = asyncio.ensure_future(sio.shutdown(grace=0.1))
        with pytest.raises(sioserver.DisconnectedError, match="server shutting down"):
            await asyncio.wait_for(pending_call, 1)
        with pytest.raises(Exception, match="503"):
            await client()
        await shutdown
        assert finished == [sid]  # the running handler was waited for
        assert reasons == ["server shutting down"]
