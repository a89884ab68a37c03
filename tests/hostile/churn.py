"""Connect/disconnect cycles over mixed transports, for the soak test and ``scripts/soak.py``.

Each cycle is one client life, chosen by its index so runs are reproducible: WebSocket or polling,
an upgrade, namespaces and rooms, a server-side ``call`` left unanswered (a pending ack), and
every way of leaving: a clean DISCONNECT and close, a TCP reset, a reset with a long-poll parked,
a protocol violation the server closes on, a CLOSE packet over polling.

The server must run ``install(sio)`` (in-process) or be ``tests.hostile.app`` with the ``soak``
handlers installed by ``install`` too (``scripts/soak.py`` does it through HOSTILE_FEATURES=soak).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp

from .helpers import Polling, RawWS, open_tcp, request

MODES = (
    "ws_clean",
    "ws_reset_with_pending_ack",
    "polling_clean",
    "polling_reset_with_parked_get",
    "upgrade_then_close",
    "ws_namespace_disconnect",
    "ws_violation",
    "polling_violation",
    "ws_two_namespaces_reset",
    "reset_during_handshake",
)


def install(sio: Any) -> None:
    """Handlers the cycles use: ``join`` (rooms), ``ask`` (the server calls the client back and
    waits for an answer that may never come), ``echo``. Also in ``/chat``."""
    for nsp in ("/", "/chat"):
        _install_ns(sio, nsp)


def _install_ns(sio: Any, nsp: str) -> None:
    async def join(sid: str, *rooms: str) -> list[str]:
        for room in rooms:
            await sio.enter_room(sid, room, namespace=nsp)
        return sorted(sio.rooms(sid, namespace=nsp))

    async def ask(sid: str) -> str:
        await sio.emit("question", "why?", to=sid, namespace=nsp, callback=lambda *a: None)
        return "asked"

    async def echo(sid: str, *args: Any) -> Any:
        return tuple(args)

    for handler in (join, ask, echo):
        sio.on(handler.__name__, handler, namespace=nsp)


async def _ws_session(port: int, nsp: str = "/") -> RawWS:
    ws = await RawWS.connect(port)
    await ws.sio_connect()
    if nsp != "/":
        await ws.sio_connect(nsp)
    return ws


async def _call(ws: RawWS, text: str) -> str:
    ws.send_text(text)
    while True:
        answer = await ws.recv_text()
        if answer.startswith("43"):
            return answer


async def cycle(port: int, i: int) -> str:
    mode = MODES[i % len(MODES)]
    room = f"room-{i % 7}"
    if mode == "ws_clean":
        ws = await _ws_session(port)
        answer = await _call(ws, f'421["join","{room}","all"]')
        rooms = json.loads(answer[3:])[0]
        assert room in rooms and "all" in rooms and len(rooms) == 3, answer  # and its own sid room
        await _call(ws, '422["echo",1]')
        ws.send_text("41")
        await ws.close()
    elif mode == "ws_reset_with_pending_ack":
        ws = await _ws_session(port)
        await _call(ws, f'421["join","{room}"]')
        await _call(ws, '422["ask"]')  # the server now waits for our answer to "question": never
        ws.abort()
    elif mode == "polling_clean":
        poll = await Polling.connect(port)
        try:
            await poll.sio_connect()
            assert (await poll.post(f'421["join","{room}"]')) == (200, "ok")
            await poll.packets()
        finally:
            await poll.close()  # sends the CLOSE packet
    elif mode == "polling_reset_with_parked_get":
        poll = await Polling.connect(port)
        await poll.sio_connect()
        await poll.post('421["ask"]')
        while not any(p.startswith("431") for p in await poll.packets()):
            pass  # the ack, and the server's question (pending: never answered)
        await poll.reset_long_poll(0.02)
    elif mode == "upgrade_then_close":
        poll = await Polling.connect(port)
        await poll.sio_connect()
        ws = await RawWS.connect(port, f"EIO=4&transport=websocket&sid={poll.sid}", read_open=False)
        ws.send_text("2probe")
        assert await ws.recv_text() == "3probe"
        ws.send_text("5")
        await _call(ws, f'421["join","{room}"]')
        await ws.close()
        await poll.http.close()
    elif mode == "ws_namespace_disconnect":
        ws = await _ws_session(port, "/chat")
        await _call(ws, f'42/chat,1["join","{room}"]')
        ws.send_text("41/chat,")
        await _call(ws, '422["echo","x"]')
        await ws.close()
    elif mode == "ws_violation":
        ws = await _ws_session(port)
        ws.send_text('42["connect"]')  # a reserved name: the server closes
        await ws.expect_close()
    elif mode == "polling_violation":
        poll = await Polling.connect(port)
        await poll.sio_connect()
        await poll.post("40")  # duplicate CONNECT: the server closes the session
        await poll.get()  # takes the CLOSE packet, so the sid is forgotten at once
        await poll.http.close()
    elif mode == "ws_two_namespaces_reset":
        ws = await _ws_session(port, "/chat")
        await _call(ws, '42/chat,1["ask"]')
        await _call(ws, f'422["join","{room}"]')
        ws.abort()
    else:  # reset_during_handshake
        reader, writer = await open_tcp(port)
        writer.write(request("GET", "/socket.io/?EIO=4&transport=websocket", port,
                             [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()
    return mode


async def run_cycles(port: int, count: int, concurrency: int = 20, start: int = 0) -> Counter[str]:
    """``count`` cycles, ``concurrency`` at a time; the result counts modes and errors."""
    done: Counter[str] = Counter()
    queue = iter(range(start, start + count))

    async def worker() -> None:
        for i in queue:
            try:
                done[await asyncio.wait_for(cycle(port, i), 10)] += 1
            except (AssertionError, ConnectionError, OSError, TimeoutError, aiohttp.ClientError) as exc:
                done[f"error:{MODES[i % len(MODES)]}:{type(exc).__name__}"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done
