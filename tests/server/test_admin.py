"""sio.instrument(): the Admin UI protocol (@socket.io/admin-ui 0.5), every event the UI relies on.

The UI is played by python-socketio's client connected to ``/admin``, exactly as the UI's own
socket.io-client connects (auth ``{username, password}``, then ``{sessionId}``); the traffic it watches
comes from python-socketio clients on both transports. The UI's own build is driven in
tests/browser/test_admin_ui_browser.py.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio

import sioserver
from tests._support.serving import AppServer, attached

CREDENTIALS = {"username": "admin", "password": "s3cret"}


class Recorder:
    """Every event a client received, in order; ``wait`` returns when a predicate holds (no polling sleep)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()

    def record(self, event: str, *args: Any) -> None:
        self.events.append((event, args))
        self._changed.set()

    def of(self, event: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.events if name == event]

    async def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                result = predicate()
                if result:
                    return result
                self._changed.clear()
                await self._changed.wait()


ADMIN_EVENTS = ("session", "config", "server_stats", "all_sockets", "socket_connected", "socket_updated",
                "socket_disconnected", "room_joined", "room_left", "event_received", "event_sent")


async def admin_client(url: str, auth: Any, recorder: Recorder, transports: list[str] | None = None,
                       ) -> socketio.AsyncClient:
    ui = socketio.AsyncClient(reconnection=False)
    for name in ADMIN_EVENTS:
        ui.on(name, functools.partial(recorder.record, name), namespace="/admin")
    ui.on("connect_error", lambda data: recorder.record("connect_error", data), namespace="/admin")
    await ui.connect(url, namespaces=["/admin"], auth=auth, transports=transports or ["polling", "websocket"],
                     wait_timeout=5)
    return ui


Served = Callable[..., Awaitable[str]]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    servers: list[AppServer] = []

    async def serve(sio: sioserver.AsyncServer) -> str:
        servers.append(await attached(sio))
        return servers[-1].url

    yield serve
    for server in servers:
        await server.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[socketio.AsyncClient]]:
    made: list[socketio.AsyncClient] = []
    yield made
    for client in made:
        if client.connected:
            await client.disconnect()


def app_server(**instrument: Any) -> sioserver.AsyncServer:
    sio = sioserver.AsyncServer(namespaces=["/chat"])

    @sio.on("hello")
    def hello(sid: str, *args: Any) -> str:
        return "hi"

    @sio.on("join", namespace="/chat")
    async def join(sid: str, room: str) -> None:
        await sio.enter_room(sid, room, namespace="/chat")

    @sio.on("part", namespace="/chat")
    async def part(sid: str, room: str) -> None:
        await sio.leave_room(sid, room, namespace="/chat")

    options: dict[str, Any] = {"auth": CREDENTIALS, "server_stats_interval": 0.2, **instrument}
    sio.instrument(**options)
    return sio


def totals(recorder: Recorder) -> dict[tuple[str, str | None], int]:
    """aggregatedEvents of every server_stats so far, summed per (type, subType)."""
    counts: dict[tuple[str, str | None], int] = defaultdict(int)
    for (stats,) in recorder.of("server_stats"):
        for item in stats["aggregatedEvents"]:
            counts[(item["type"], item.get("subType"))] += item["count"]
    return counts


async def test_auth_is_required_and_a_wrong_password_is_refused(served: Served) -> None:
    with pytest.raises(TypeError, match="needs auth"):
        sioserver.AsyncServer().instrument()
    url = await served(app_server())
    recorder = Recorder()
    wrongs = [{"username": "admin", "password": "nope"}, {"username": "root", "password": "s3cret"}, {},
              {"sessionId": "made-up"}, {"username": "admin"}]
    for wrong in wrongs:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await admin_client(url, wrong, recorder)
    # the message the UI shows its login form again for
    assert recorder.events == [("connect_error", ({"message": "invalid credentials"},))] * len(wrongs)


async def test_login_session_config_and_session_id_reuse(served: Served) -> None:
    url = await served(app_server())
    recorder = Recorder()
    ui = await admin_client(url, CREDENTIALS, recorder)
    await recorder.wait(lambda: recorder.of("config") and recorder.of("all_sockets"))
    (session_id,) = recorder.of("session")[0]
    assert isinstance(session_id, str) and len(session_id) >= 16
    (config,) = recorder.of("config")[0]
    assert config == {"supportedFeatures": ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE",
                                            "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]}
    await ui.disconnect()
    # a reload of the UI offers the session id instead of the password
    again = Recorder()
    ui = await admin_client(url, {"sessionId": session_id}, again)
    await again.wait(lambda: again.of("config"))
    assert again.of("session") == []  # no new session for a session login
    await ui.disconnect()


async def test_read_only_and_production_modes(served: Served, clients: list[socketio.AsyncClient]) -> None:
    url = await served(app_server(read_only=True, mode="production"))
    recorder = Recorder()
    ui = await admin_client(url, CREDENTIALS, recorder)
    await recorder.wait(lambda: recorder.of("config"))
    assert recorder.of("config")[0][0] == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
    client = socketio.AsyncClient()
    clients.append(client)
    await client.connect(url, transports=["websocket"])
    sid = client.get_sid("/")
    await ui.emit("_disconnect", ("/", False, sid), namespace="/admin")  # refused: read-only
    await client.emit("hello", 1)
    # production mode: statistics only, no per-socket events
    await recorder.wait(lambda: totals(recorder)[("packetsIn", None)] >= 2)
    assert client.connected
    assert not any(recorder.of(name) for name in ("all_sockets", "socket_connected", "event_received"))
    await ui.disconnect()


async def test_every_event_the_ui_relies_on(served: Served, clients: list[socketio.AsyncClient]) -> None:
    sio = app_server(server_id="node-a")
    url = await served(sio)
    early = socketio.AsyncClient()
    clients.append(early)
    await early.connect(url, namespaces=["/", "/chat"], transports=["websocket"])
    await early.call("join", "lobby", namespace="/chat")  # the handler's return is the ack
    early_chat = early.get_sid("/chat")

    recorder = Recorder()
    ui = await admin_client(url, CREDENTIALS, recorder)
    # all_sockets: every socket already connected, with transport, rooms and handshake
    (sockets,) = (await recorder.wait(lambda: recorder.of("all_sockets")))[0]
    by_id = {s["id"]: s for s in sockets}
    chat = by_id[early_chat]
    assert chat["nsp"] == "/chat" and chat["transport"] == "websocket"
    assert chat["rooms"] == [early_chat, "lobby"]
    assert chat["handshake"]["address"] == "127.0.0.1" and "auth" not in chat["handshake"]
    assert by_id[early.get_sid("/")]["clientId"] == chat["clientId"]  # one Engine.IO client, two sockets
    assert {s["nsp"] for s in sockets} == {"/", "/chat", "/admin"}

    # server_stats: the figures of this server
    stats = (await recorder.wait(lambda: recorder.of("server_stats")))[-1][0]
    assert stats["serverId"] == "node-a" and isinstance(stats["pid"], int) and stats["uptime"] >= 0
    assert stats["clientsCount"] == 2  # early + the UI
    names = {n["name"]: n["socketsCount"] for n in stats["namespaces"]}
    assert names == {"/": 1, "/chat": 1, "/admin": 1}

    # a client that connects on polling and then upgrades (by hand, as engine.io-client does):
    # socket_connected with transport polling, then socket_updated to websocket
    async with aiohttp.ClientSession() as http:
        handshake = await (await http.get(f"{url}/socket.io/?EIO=4&transport=polling")).text()
        eio_sid = json.loads(handshake[1:])["sid"]
        polling = f"{url}/socket.io/?EIO=4&transport=polling&sid={eio_sid}"
        assert await (await http.post(polling, data="40")).text() == "ok"
        reply = await (await http.get(polling)).text()
        raw_sid = json.loads(reply[2:])["sid"]
        connected = await recorder.wait(lambda: [a for a in recorder.of("socket_connected") if a[0]["id"] == raw_sid])
        assert connected[0][0]["transport"] == "polling" and connected[0][0]["nsp"] == "/"
        assert connected[0][0]["clientId"] == eio_sid[:12]
        assert connected[0][1].endswith("Z")  # a JavaScript Date on the wire
        stats = (await recorder.wait(lambda: (s := recorder.of("server_stats")) and s[-1][0]["clientsCount"] == 3
                                     and s))[-1][0]
        assert stats["pollingClientsCount"] == 1
        ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket&sid={eio_sid}")
        await ws.send_str("2probe")
        assert (await ws.receive_str(timeout=5)) == "3probe"
        await ws.send_str("5")
        await recorder.wait(lambda: {"id": raw_sid, "nsp": "/", "transport": "websocket"}
                            in [a[0] for a in recorder.of("socket_updated")])
        await recorder.wait(lambda: (s := recorder.of("server_stats")) and s[-1][0]["pollingClientsCount"] == 0)
        await ws.close()
    await recorder.wait(lambda: [a for a in recorder.of("socket_disconnected") if a[1] == raw_sid])

    late = socketio.AsyncClient()
    clients.append(late)
    await late.connect(url, transports=["websocket"])
    late_sid = late.get_sid("/")

    # events received and sent, with their arguments
    assert await late.call("hello", {"n": 1}) == "hi"
    await recorder.wait(lambda: ("/", late_sid, ["hello", {"n": 1}]) in [a[:3] for a in recorder.of("event_received")])
    await sio.emit("news", {"headline": "x"}, to=late_sid)
    await recorder.wait(lambda: ("/", late_sid, ["news", {"headline": "x"}]) in [a[:3] for a in recorder.of("event_sent")])

    # rooms joined and left
    await early.emit("join", "vip", namespace="/chat")
    await recorder.wait(lambda: ("/chat", "vip", early_chat) in [a[:3] for a in recorder.of("room_joined")])
    await early.emit("part", "vip", namespace="/chat")
    await recorder.wait(lambda: ("/chat", "vip", early_chat) in [a[:3] for a in recorder.of("room_left")])

    # the UI's actions on one socket (filter = its id) ...
    await ui.emit("join", ("/", "team", late_sid), namespace="/admin")
    await recorder.wait(lambda: ("/", "team", late_sid) in [a[:3] for a in recorder.of("room_joined")])
    assert "team" in sio.rooms(late_sid)
    await ui.emit("leave", ("/", "team", late_sid), namespace="/admin")
    await recorder.wait(lambda: ("/", "team", late_sid) in [a[:3] for a in recorder.of("room_left")])
    assert "team" not in sio.rooms(late_sid)
    got: asyncio.Queue[Any] = asyncio.Queue()
    late.on("announce", lambda *args: got.put_nowait(args))
    await ui.emit("emit", ("/", late_sid, "announce", "a", 2), namespace="/admin")
    assert await asyncio.wait_for(got.get(), 5) == ("a", 2)

    # ... and by filter: everyone in a room of a namespace
    await ui.emit("join", ("/chat", "doomed", None), namespace="/admin")  # every socket of /chat
    await recorder.wait(lambda: ("/chat", "doomed", early_chat) in [a[:3] for a in recorder.of("room_joined")])
    gone = asyncio.Event()
    early.on("disconnect", lambda *args: gone.set(), namespace="/chat")
    await ui.emit("_disconnect", ("/chat", False, "doomed"), namespace="/admin")
    await recorder.wait(lambda: [a for a in recorder.of("socket_disconnected")
                                 if a[:3] == ("/chat", early_chat, "server disconnect")])
    await asyncio.wait_for(gone.wait(), 5)
    assert late.connected and early.connected  # the / sockets were not in the filter
    await ui.disconnect()


async def test_aggregated_events_count_exactly(served: Served, clients: list[socketio.AsyncClient]) -> None:
    url = await served(app_server(mode="production"))
    recorder = Recorder()
    ui = await admin_client(url, CREDENTIALS, recorder, transports=["websocket"])
    # the UI's own connection is counted too: wait until its traffic has been reported
    await recorder.wait(lambda: totals(recorder)[("rawConnection", None)] == 1)
    before = totals(recorder)
    # a client whose every byte is known: a WebSocket driven by hand
    # (Socket.IO packets: CONNECT "0", three EVENTs, one EVENT with ack id 1)
    sent = ["0"] + [f'2["note","{p}"]' for p in ("x" * 10, "é" * 7, "y")] + ['21["hello","end"]']
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        assert (await ws.receive_str(timeout=5))[0] == "0"
        await ws.send_str("4" + sent[0])  # the Engine.IO MESSAGE prefix is not counted, as in Node
        assert (await ws.receive_str(timeout=5)).startswith("40{")
        for message in sent[1:]:
            await ws.send_str("4" + message)
        assert await ws.receive_str(timeout=5) == '431["hi"]'  # every message has arrived
        await ws.close()
    # in: the CONNECT, three EVENTs and the call, in UTF-8 bytes as Node's Buffer.byteLength
    after = await recorder.wait(lambda: (t := totals(recorder))[("rawDisconnection", "transport close")] == 1
                                and t)
    assert after[("rawConnection", None)] - before[("rawConnection", None)] == 1
    assert after[("packetsIn", None)] - before[("packetsIn", None)] == len(sent)
    assert after[("bytesIn", None)] - before[("bytesIn", None)] == sum(len(m.encode()) for m in sent)
    await ui.disconnect()


async def test_admin_ui_and_metrics_both_count_every_message(served: Served) -> None:
    """Both on one server: each received MESSAGE reaches the UI's hook and the metrics' log."""
    sio = sioserver.AsyncServer(metrics=True)
    sio.on("hello", lambda sid, *args: "hi")
    sio.instrument(auth=CREDENTIALS, mode="production", server_stats_interval=0.2)
    assert sio.metrics is not None
    assert sio.tap_received not in (None, sio.metrics.received_log.append)  # both get each message
    url = await served(sio)
    recorder = Recorder()
    ui = await admin_client(url, CREDENTIALS, recorder, transports=["websocket"])
    await recorder.wait(lambda: totals(recorder)[("rawConnection", None)] == 1)

    async def received() -> tuple[float, float]:
        async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
            text = await response.text()
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        return (sum(float(v) for k, v in values.items() if k.startswith("sioserver_packets_received_total")),
                float(values["sioserver_bytes_received_total"]))

    before, metrics_before = totals(recorder), await received()
    sent = ["0", '2["note","é€😀"]', '21["hello","end"]']
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        assert (await ws.receive_str(timeout=5))[0] == "0"
        await ws.send_str("4" + sent[0])
        assert (await ws.receive_str(timeout=5)).startswith("40{")
        for message in sent[1:]:
            await ws.send_str("4" + message)
        assert await ws.receive_str(timeout=5) == '431["hi"]'  # every message has arrived
        metrics_after = await received()
        await ws.close()
    after = await recorder.wait(lambda: (t := totals(recorder))[("rawDisconnection", "transport close")] == 1 and t)
    size = sum(len(m.encode()) for m in sent)
    assert after[("packetsIn", None)] - before[("packetsIn", None)] == len(sent)
    assert after[("bytesIn", None)] - before[("bytesIn", None)] == size
    assert (metrics_after[0] - metrics_before[0], metrics_after[1] - metrics_before[1]) == (len(sent), size)
    await ui.disconnect()
