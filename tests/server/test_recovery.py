"""Connection state recovery on the wire (Node's ``connectionStateRecovery``): the pid in the CONNECT
reply, offsets on broadcasts, a dropped transport recovered with sid, rooms, data and every missed packet,
and what makes a connection new instead. The Node peers are in tests/interop/socketio/test_recovery_node.py."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

import aiohttp
import pytest

import sioserver
from sioserver.exceptions import ConfigurationError
from sioserver.server.adapter import BroadcastOptions
from sioserver.server.recovery import MemorySessionStore, PersistedSession, RecoveryOptions
from tests._support import serving

from .conftest import RawClient


def server(**recovery: Any) -> sioserver.AsyncServer:
    return sioserver.AsyncServer(ping_interval=10, connection_state_recovery=recovery or True)


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def connect(raw: RawClient, auth: Any = None) -> dict[str, Any]:
    await raw.send("40" + ("" if auth is None else json.dumps(auth)))
    reply = str(await raw.recv())
    assert reply.startswith("40{"), reply
    body: dict[str, Any] = json.loads(reply[2:])
    return body


def event(message: str | bytes) -> list[Any]:
    assert isinstance(message, str) and message.startswith("42["), message
    data: list[Any] = json.loads(message[2:])
    return data


class Tracker:
    """Handlers that record what the server saw: connects (with ``sio.recovered``), disconnect reasons."""

    def __init__(self, sio: sioserver.AsyncServer, room: str = "news") -> None:
        self.connects: list[tuple[str, bool]] = []
        self.reasons: list[str] = []
        self.middleware_runs = 0
        self.gone = asyncio.Event()

        @sio.use
        def middleware(sid: str, environ: Any, auth: Any) -> None:
            self.middleware_runs += 1

        @sio.event
        async def connect(sid: str, environ: Any, auth: Any) -> None:
            recovered = sio.recovered(sid)
            self.connects.append((sid, recovered))
            if not recovered:
                await sio.enter_room(sid, room)
                await sio.save_session(sid, {"user": "ada"})

        @sio.event
        def disconnect(sid: str, reason: str) -> None:
            self.reasons.append(reason)
            self.gone.set()


class TestWire:
    async def test_the_connect_reply_carries_a_pid(self, sio_app: Any) -> None:
        _sio, client = await sio_app(server())
        raw = await client()
        reply = await connect(raw)
        assert list(reply) == ["sid", "pid"]
        assert reply["pid"] != reply["sid"] and len(reply["pid"]) == 20

    async def test_without_the_option_no_pid_and_no_offset(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer())
        raw = await client()
        assert list(await connect(raw)) == ["sid"]
        await sio.emit("hi", 1)
        assert event(await raw.recv()) == ["hi", 1]

    async def test_broadcasts_carry_an_offset_as_their_last_argument_and_nothing_else_does(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        raw = await client()
        sid = (await connect(raw))["sid"]
        await sio.emit("all", {"a": 1})
        await sio.emit("one", "x", to=sid)
        await sio.to(sid).volatile.emit("volatile")
        await sio.emit("acked", 2, to=sid, callback=lambda *a: None)
        first, second = event(await raw.recv()), event(await raw.recv())
        assert first[:2] == ["all", {"a": 1}] and second[:2] == ["one", "x"]
        assert isinstance(first[2], str) and isinstance(second[2], str) and first[2] != second[2]
        assert event(await raw.recv()) == ["volatile"]
        acked = str(await raw.recv())
        assert acked.startswith("421[") and json.loads(acked[3:]) == ["acked", 2]

    def test_bad_options_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="max_disconection_duration"):
            sioserver.AsyncServer(connection_state_recovery={"max_disconection_duration": 5})
        with pytest.raises(ConfigurationError, match="must be > 0"):
            sioserver.AsyncServer(connection_state_recovery={"max_disconnection_duration": 0})
        with pytest.raises(ConfigurationError):
            sioserver.AsyncServer(connection_state_recovery="yes")


class TestRecovery:
    async def test_a_dropped_transport_recovers_sid_rooms_data_and_every_missed_packet_in_order(
            self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        sid, pid = first["sid"], first["pid"]
        await sio.to("news").emit("n", 0)
        offset = event(await raw.recv())[-1]
        await raw.ws.close()  # the transport goes, no Socket.IO DISCONNECT
        await seen.gone.wait()
        assert seen.reasons == ["transport close"]
        for i in range(1, 21):
            await sio.to("news").emit("n", i)
            await sio.to("elsewhere").emit("other", i)  # not for it
        await sio.emit("n", 21, to=sid)  # its own room is kept too
        again = await client()
        reply = await connect(again, {"token": "t", "pid": pid, "offset": offset})
        assert reply == {"sid": sid, "pid": pid}
        missed = [event(await again.recv()) for _ in range(21)]
        assert [m[:2] for m in missed] == [["n", i] for i in range(1, 22)]
        assert len({m[2] for m in missed}) == 21
        assert await again.silent()
        assert seen.connects == [(sid, False), (sid, True)]
        assert seen.middleware_runs == 1  # skip_middlewares (the default)
        assert set(sio.rooms(sid)) == {sid, "news"}
        assert await sio.get_session(sid) == {"user": "ada"}
        assert sio.stats["recovery_restored"] == 1 and sio.stats["recovery_missed_packets"] == 21
        await sio.to("news").emit("n", 22)  # the room membership works, with offsets going on
        assert event(await again.recv())[:2] == ["n", 22]

    async def test_nothing_missed_is_still_a_recovery(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await raw.ws.close()
        await seen.gone.wait()
        again = await client()
        assert await connect(again, {"pid": first["pid"], "offset": offset}) == {"sid": first["sid"],
                                                                                 "pid": first["pid"]}
        assert await again.silent()

    async def test_middlewares_run_again_when_told_to(self, sio_app: Any) -> None:
        sio, client = await sio_app(server(skip_middlewares=False))
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await raw.ws.close()
        await seen.gone.wait()
        again = await client()
        assert (await connect(again, {"pid": first["pid"], "offset": offset}))["sid"] == first["sid"]
        assert seen.middleware_runs == 2

    async def test_a_session_is_handed_out_once(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await raw.ws.close()
        await seen.gone.wait()
        again = await client()
        assert (await connect(again, {"pid": first["pid"], "offset": offset}))["sid"] == first["sid"]
        third = await client()  # the same pid while the recovered socket is connected
        reply = await connect(third, {"pid": first["pid"], "offset": offset})
        assert reply["sid"] != first["sid"] and reply["pid"] != first["pid"]
        assert sio.stats["recovery_refused"] == 1

    @pytest.mark.parametrize("how", ["client disconnect", "server disconnect"])
    async def test_a_socketio_disconnect_ends_the_session_for_good(self, sio_app: Any, how: str) -> None:
        sio, client = await sio_app(server())
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        if how == "client disconnect":
            await raw.send("41")
        else:
            await sio.disconnect(first["sid"])
        await seen.gone.wait()
        assert seen.reasons == [how]
        again = await client()
        reply = await connect(again, {"pid": first["pid"], "offset": offset})
        assert reply["sid"] != first["sid"] and reply["pid"] != first["pid"]
        assert seen.connects[-1] == (reply["sid"], False)
        assert sio.stats["recovery_sessions_persisted"] == 0

    async def test_a_ping_timeout_keeps_the_session(self, sio_app: Any) -> None:
        sio, client = await sio_app(sioserver.AsyncServer(ping_interval=0.2, ping_timeout=0.2,
                                                          connection_state_recovery=True))
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await seen.gone.wait()  # no pong is sent: recv() is not called
        assert seen.reasons == ["ping timeout"]
        await sio.to("news").emit("later")
        again = await client()
        assert (await connect(again, {"pid": first["pid"], "offset": offset}))["sid"] == first["sid"]
        assert event(await again.recv())[0] == "later"

    @pytest.mark.parametrize("auth", [
        {"pid": "unknown", "offset": "1"},
        {"offset": "1"},
        "pid-but-no-object",
    ])
    async def test_unknown_or_malformed_recovery_data_is_a_new_connection(self, sio_app: Any, auth: Any) -> None:
        _sio, client = await sio_app(server())
        raw = await client()
        reply = await connect(raw, auth if isinstance(auth, dict) else None)
        assert reply["pid"] and reply["sid"]

    @pytest.mark.parametrize("offset", ["abc", "-1", "99999999999999999999999", "1e3", "1000"])
    async def test_an_offset_that_is_not_held_is_a_new_connection(self, sio_app: Any, offset: str) -> None:
        sio, client = await sio_app(server())
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await raw.ws.close()
        await seen.gone.wait()
        again = await client()
        reply = await connect(again, {"pid": first["pid"], "offset": offset})
        assert reply["sid"] != first["sid"]

    async def test_binary_broadcasts_are_replayed_with_their_attachments(self, sio_app: Any) -> None:
        sio, client = await sio_app(server())
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await raw.ws.close()
        await seen.gone.wait()
        await sio.to("news").emit("blob", b"\x00\x01")
        again = await client()
        await connect(again, {"pid": first["pid"], "offset": offset})
        header = str(await again.recv())
        assert header.startswith('451-["blob",{"_placeholder":true,"num":0},"'), header
        assert await again.recv() == b"\x00\x01"


class TestBounds:
    async def test_after_the_window_the_reconnect_is_a_new_connection(self, sio_app: Any) -> None:
        sio, client = await sio_app(server(max_disconnection_duration=0.3))
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await raw.ws.close()
        await seen.gone.wait()
        assert sio.stats["recovery_sessions"] == 1
        await wait_for(lambda: sio.stats["recovery_sessions_expired"] == 1)  # the pruning timer
        await wait_for(lambda: sio.stats["recovery_buffered_packets"] == 0)
        assert sio.stats["recovery_sessions"] == 0 and sio.stats["recovery_packets_expired"] == 1
        again = await client()
        reply = await connect(again, {"pid": first["pid"], "offset": offset})
        assert reply["sid"] != first["sid"] and reply["pid"] != first["pid"]
        assert seen.connects[-1] == (reply["sid"], False)

    async def test_when_the_missed_packets_are_no_longer_held_the_reconnect_is_new(self, sio_app: Any) -> None:
        sio, client = await sio_app(server(max_packets=5))
        seen = Tracker(sio)
        raw = await client()
        first = await connect(raw)
        await sio.emit("x")
        offset = event(await raw.recv())[-1]
        await raw.ws.close()
        await seen.gone.wait()
        for i in range(6):  # the sixth pushes out the client's offset and the one after it
            await sio.emit("n", i)
        assert sio.stats["recovery_buffered_packets"] == 5 and sio.stats["recovery_packets_dropped"] == 2
        again = await client()
        reply = await connect(again, {"pid": first["pid"], "offset": offset})
        assert reply["sid"] != first["sid"]
        assert sio.stats["recovery_refused"] == 1

    async def test_the_byte_bound(self, sio_app: Any) -> None:
        sio, client = await sio_app(server(max_bytes=1000))
        await connect(await client())
        for _ in range(10):
            await sio.emit("big", "x" * 300)
        assert sio.stats["recovery_buffered_packets"] == 3
        assert 900 < sio.stats["recovery_buffered_bytes"] <= 1000


def opts(*rooms: str, but: tuple[str, ...] = ()) -> BroadcastOptions:
    return BroadcastOptions(rooms=frozenset(rooms), except_rooms=frozenset(but))


class TestMemorySessionStore:
    """The store alone, on a clock the test moves."""

    def make(self, **options: Any) -> tuple[MemorySessionStore, list[float], Counter[str]]:
        now = [100.0]
        stats: Counter[str] = Counter()
        return MemorySessionStore(RecoveryOptions(**options), stats, clock=lambda: now[0]), now, stats

    def keep(self, store: MemorySessionStore, data: list[Any], where: BroadcastOptions, size: int = 10) -> str:
        offset = store.next_offset
        store.keep([*data, offset], where, size)
        return offset

    def test_missed_packets_follow_the_rooms_and_exclusions(self) -> None:
        store, _now, stats = self.make()
        start = self.keep(store, ["a"], opts())
        store.persist(PersistedSession("s1", "p1", ["s1", "r1"], {"k": 1}))
        self.keep(store, ["to r1"], opts("r1"))
        self.keep(store, ["to r2"], opts("r2"))
        self.keep(store, ["all but r1"], opts(but=("r1",)))
        self.keep(store, ["to s1"], opts("s1", "r9"))
        self.keep(store, ["all"], opts())
        restored = store.restore("p1", start)
        assert restored is not None
        assert [m[0] for m in restored.missed_packets] == ["to r1", "to s1", "all"]
        assert [m[1] for m in restored.missed_packets] == ["2", "5", "6"]
        assert (restored.sid, restored.pid, restored.rooms, restored.data) == ("s1", "p1", ["s1", "r1"], {"k": 1})
        assert store.restore("p1", start) is None  # once
        assert stats["recovery_sessions"] == 0 and stats["recovery_restored"] == 1

    def test_sessions_expire_with_the_window(self) -> None:
        store, now, stats = self.make(max_disconnection_duration=10)
        offset = self.keep(store, ["a"], opts())
        store.persist(PersistedSession("s1", "p1", ["s1"], {}))
        now[0] += 10.5
        assert store.restore("p1", offset) is None
        assert stats["recovery_sessions_expired"] == 1 and stats["recovery_packets_expired"] == 1
        assert stats["recovery_buffered_packets"] == 0 and stats["recovery_sessions"] == 0

    def test_the_oldest_session_goes_first_past_max_sessions(self) -> None:
        store, _now, stats = self.make(max_sessions=2)
        offset = self.keep(store, ["a"], opts())
        for i in range(3):
            store.persist(PersistedSession(f"s{i}", f"p{i}", [f"s{i}"], {}))
        assert store.restore("p0", offset) is None
        assert store.restore("p2", offset) is not None
        assert stats["recovery_sessions_expired"] == 1

    def test_an_offset_just_before_the_oldest_kept_packet_still_recovers(self) -> None:
        store, _now, _stats = self.make(max_packets=2)
        first = self.keep(store, ["a"], opts())
        store.persist(PersistedSession("s1", "p1", ["s1"], {}))
        self.keep(store, ["b"], opts())
        self.keep(store, ["c"], opts())  # "a" is dropped: what came after it is all held
        restored = store.restore("p1", first)
        assert restored is not None and [m[0] for m in restored.missed_packets] == ["b", "c"]

    def test_close_lets_go_of_everything(self) -> None:
        store, _now, stats = self.make()
        self.keep(store, ["a"], opts(), size=7)
        store.persist(PersistedSession("s1", "p1", ["s1"], {}))
        store.close()
        assert +stats == Counter({"recovery_sessions_persisted": 1})


def test_an_adapter_that_keeps_no_sessions_is_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from sioserver.server.adapter import Adapter

    sio = sioserver.AsyncServer(adapter=Adapter, connection_state_recovery=True)
    with caplog.at_level("WARNING", logger="sioserver.server"):
        sio.adapter("/")
    assert "keeps no sessions" in caplog.text and "Adapter" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sioserver.server"):
        sioserver.AsyncServer(connection_state_recovery=True).adapter("/")
    assert "keeps no sessions" not in caplog.text


class Polling:
    """A long-polling Engine.IO client written by hand (one session): what it sends and reads is the wire."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.base = f"{url}/socket.io/?EIO=4&transport=polling"
        self.sid = ""

    async def open(self) -> None:
        async with self.http.get(self.base) as resp:
            body = await resp.text()
        assert body.startswith("0{"), body
        self.sid = json.loads(body[1:])["sid"]

    async def post(self, *packets: str) -> None:
        async with self.http.post(f"{self.base}&sid={self.sid}", data="\x1e".join(packets)) as resp:
            assert resp.status == 200, await resp.text()

    async def get(self) -> list[str]:
        async with self.http.get(f"{self.base}&sid={self.sid}") as resp:
            assert resp.status == 200, await resp.text()
            return [p for p in (await resp.text()).split("\x1e") if p != "2"]


async def test_a_slow_consumer_is_not_recovered() -> None:
    """Its replay would be over max_buffered_bytes again: it comes back as a new connection."""
    sio = sioserver.AsyncServer(ping_interval=10, max_buffered_bytes=20_000, connection_state_recovery=True)
    seen = Tracker(sio)
    server = await serving.attached(sio)
    try:
        async with aiohttp.ClientSession() as http:
            first = Polling(http, server.url)
            await first.open()
            await first.post("40")
            reply = json.loads((await first.get())[0][2:])
            await sio.to("news").emit("n", -1)
            offset = event((await first.get())[0])[-1]
            for i in range(40):  # ~40 KB it does not poll for: over max_buffered_bytes
                await sio.to("news").emit("n", i, "x" * 1000)
            await seen.gone.wait()
            assert seen.reasons == ["slow consumer"]
            again = Polling(http, server.url)
            await again.open()
            await again.post("40" + json.dumps({"pid": reply["pid"], "offset": offset}))
            second = json.loads((await again.get())[0][2:])
            assert sio.stats["recovery_sessions_persisted"] == 0
    finally:
        await server.close()
    assert second["sid"] != reply["sid"] and second["pid"] != reply["pid"]


async def test_a_polling_client_that_closes_its_transport_recovers() -> None:
    """The Engine.IO close packet ``1`` is a transport close, not the end of the Socket.IO session."""
    sio = sioserver.AsyncServer(ping_interval=10, connection_state_recovery=True)
    seen = Tracker(sio)
    server = await serving.attached(sio)
    try:
        async with aiohttp.ClientSession() as http:
            first = Polling(http, server.url)
            await first.open()
            await first.post("40")
            reply = json.loads((await first.get())[0][2:])
            await sio.to("news").emit("n", -1)
            offset = event((await first.get())[0])[-1]
            await first.post("1")
            await seen.gone.wait()
            assert seen.reasons == ["transport close"]
            for i in range(3):
                await sio.to("news").emit("n", i)
            again = Polling(http, server.url)
            await again.open()
            await again.post("40" + json.dumps({"pid": reply["pid"], "offset": offset}))
            packets = await again.get()
    finally:
        await server.close()
    assert json.loads(packets[0][2:]) == reply
    assert [event(p)[1] for p in packets[1:]] == [0, 1, 2]


class _FailingAdapter(sioserver.MemoryAdapter):
    how = "raise"

    async def restore_session(self, pid: str, offset: str) -> Any:
        if self.how == "raise":
            raise RuntimeError("store down")
        await asyncio.Event().wait()  # a store that never answers


@pytest.mark.parametrize("how", ["raise", "hang"])
async def test_an_adapter_that_fails_or_hangs_gives_a_new_connection(
        sio_app: Any, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sioserver.server import namespace

    monkeypatch.setattr(namespace, "RESTORE_TIMEOUT", 0.2)
    monkeypatch.setattr(_FailingAdapter, "how", how)
    sio, client = await sio_app(sioserver.AsyncServer(adapter=_FailingAdapter, connection_state_recovery=True))
    seen = Tracker(sio)
    raw = await client()
    first = await connect(raw)
    await sio.emit("x")
    offset = event(await raw.recv())[-1]
    await raw.ws.close()
    await seen.gone.wait()
    again = await client()
    reply = await connect(again, {"pid": first["pid"], "offset": offset})
    assert reply["sid"] != first["sid"] and seen.connects[-1] == (reply["sid"], False)


async def test_a_dynamic_namespace_is_kept_while_it_holds_sessions(sio_app: Any) -> None:
    sio, client = await sio_app(server(max_disconnection_duration=0.5))
    gone = asyncio.Event()
    sio.on("disconnect", lambda sid: gone.set(), namespace=re.compile(r"/dyn-\d+"))
    raw = await client()
    await raw.send("40/dyn-1,")
    reply = json.loads(str(await raw.recv())[len("40/dyn-1,"):])
    await sio.emit("x", namespace="/dyn-1")
    offset = json.loads(str(await raw.recv())[len("42/dyn-1,"):])[-1]
    await raw.ws.close()
    await gone.wait()
    assert "/dyn-1" in sio.manager.get_namespaces()  # its last socket left, but may come back
    again = await client()
    await again.send("40/dyn-1," + json.dumps({"pid": reply["pid"], "offset": offset}))
    assert json.loads(str(await again.recv())[len("40/dyn-1,"):]) == reply
    gone.clear()
    await again.ws.close()
    await gone.wait()
    await wait_for(lambda: "/dyn-1" not in sio.manager.get_namespaces())  # once its session expired
    assert sio.stats["recovery_sessions_expired"] == 1


async def test_each_namespace_recovers_with_its_own_pid(sio_app: Any) -> None:
    sio, client = await sio_app(server())
    gone: list[str] = []
    for nsp in ("/", "/chat"):
        sio.on("connect", lambda sid, environ: None, namespace=nsp)
        sio.on("disconnect", lambda sid, nsp=nsp: gone.append(nsp), namespace=nsp)
    raw = await client()
    main = await connect(raw)
    await raw.send("40/chat,")
    chat = json.loads(str(await raw.recv())[len("40/chat,"):])
    assert chat["pid"] != main["pid"] and chat["sid"] != main["sid"]
    await sio.emit("m", 1)
    await sio.emit("c", 1, namespace="/chat")
    main_offset = event(await raw.recv())[-1]
    chat_offset = json.loads(str(await raw.recv())[len("42/chat,"):])[-1]
    await raw.ws.close()
    await wait_for(lambda: len(gone) == 2)
    await sio.emit("m", 2)
    await sio.emit("c", 2, namespace="/chat")
    again = await client()
    assert await connect(again, {"pid": main["pid"], "offset": main_offset}) == main
    assert event(await again.recv())[:2] == ["m", 2]
    await again.send("40/chat," + json.dumps({"pid": chat["pid"], "offset": chat_offset}))
    assert json.loads(str(await again.recv())[len("40/chat,"):]) == chat
    assert json.loads(str(await again.recv())[len("42/chat,"):])[:2] == ["c", 2]


class _SlowAdapter(sioserver.MemoryAdapter):
    gate: asyncio.Event | None = None

    async def restore_session(self, pid: str, offset: str) -> Any:
        assert self.gate is not None
        await self.gate.wait()
        return await super().restore_session(pid, offset)


async def test_a_client_that_leaves_while_its_session_is_looked_up_can_still_recover(sio_app: Any) -> None:
    _SlowAdapter.gate = asyncio.Event()
    sio, client = await sio_app(sioserver.AsyncServer(adapter=_SlowAdapter, connection_state_recovery=True))
    seen = Tracker(sio)
    raw = await client()
    first = await connect(raw)
    await sio.emit("x")
    offset = event(await raw.recv())[-1]
    await raw.ws.close()
    await seen.gone.wait()
    impatient = await client()
    await impatient.send("40" + json.dumps({"pid": first["pid"], "offset": offset}))
    await impatient.ws.close()  # gone before the adapter answers
    await wait_for(lambda: not sio.eio.sessions)
    _SlowAdapter.gate.set()
    await wait_for(lambda: sio.stats["recovery_sessions_persisted"] == 2)  # put back for the next try
    again = await client()
    assert await connect(again, {"pid": first["pid"], "offset": offset}) == first
    assert seen.connects == [(first["sid"], False), (first["sid"], True)]


def test_options_are_checked() -> None:
    assert RecoveryOptions.parse(None) is None and RecoveryOptions.parse(False) is None
    given = RecoveryOptions(max_packets=3)
    assert RecoveryOptions.parse(given) is given
    with pytest.raises(ConfigurationError, match="max_packets must be >= 1"):
        RecoveryOptions.parse({"max_packets": 0})
