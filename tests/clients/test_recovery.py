"""sioclient's connection state recovery, against sioserver and against Node socket.io 4.8 with
``connectionStateRecovery`` (the servers of tests/interop/recovery, one process each): the client keeps the pid
and the last offset, sends them on reconnect, gets the same sid and every missed broadcast, and tells
``recovered``; after the window it gets a new session.

The transport is dropped the way the JS client's ``socket.io.engine.close()`` does it (a WebSocket close, or the
Engine.IO close packet over polling; no Socket.IO DISCONNECT), when the 6th of 20 room broadcasts arrives.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sioclient

from tests._support import node
from tests._support.procs import Process, python_env, start_or_fail

RECOVERY = Path(__file__).resolve().parents[1] / "interop" / "recovery"
WINDOW_MS = 1000
COUNT = 20
DROP_AT = 6


@pytest.fixture(scope="module")
def servers(interop_node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Process]]:
    logdir = tmp_path_factory.mktemp("recovery-servers")
    argv = {
        "sioserver": [sys.executable, str(RECOVERY / "recovery_app.py")],
        "node": list(node.argv(RECOVERY / "recovery_server.cjs")),
    }
    started: dict[str, Process] = {}
    try:
        for kind, head in argv.items():
            proc = Process([*head, "--port", "0", "--window-ms", str(WINDOW_MS)], log_path=logdir / f"{kind}.log",
                           env=python_env(NODE_PATH=str(interop_node_modules)), name=f"{kind} recovery server")
            started[kind] = start_or_fail(proc)
        yield started
    finally:
        for proc in started.values():
            proc.stop()


class Watcher:
    """A client's view: ticks (with the members count the server saw and the offset), connects, disconnects."""

    def __init__(self, client: sioclient.AsyncClient, drop_at: int | None = None) -> None:
        self.ticks: list[tuple[Any, ...]] = []
        self.connects: list[tuple[str | None, bool]] = []
        self.disconnects: list[str] = []
        self.changed = asyncio.Event()
        self._drops: list[asyncio.Task[None]] = []

        @client.event
        def connect() -> None:
            self.connects.append((client.sid, client.recovered))
            self.changed.set()

        @client.event
        def disconnect(reason: str) -> None:
            self.disconnects.append(reason)
            self.changed.set()

        @client.on("tick")
        def tick(i: int, members: int, offset: str) -> None:
            self.ticks.append((i, members, offset))
            if len(self.ticks) == drop_at:
                engine = client._engine  # the transport, as the JS client's socket.io.engine
                assert engine is not None
                self._drops.append(asyncio.get_running_loop().create_task(engine.close()))
            self.changed.set()

    async def until(self, what: str, predicate: Any, timeout: float = 8.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def user(request: pytest.FixtureRequest) -> dict[str, str]:
    name = f"sioclient-{request.node.name}"
    return {"room": f"room-{name}", "user": name}


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("kind", ["sioserver", "node"])
async def test_a_dropped_transport_recovers_the_session_and_every_missed_broadcast(
        servers: dict[str, Process], kind: str, transport: str, request: pytest.FixtureRequest) -> None:
    client = sioclient.AsyncClient(reconnection_delay=0.2, reconnection_delay_max=0.2, randomization_factor=0)
    seen = Watcher(client, drop_at=DROP_AT)
    auth = user(request)
    await client.connect(servers[kind].url, auth=auth, transports=[transport])
    try:
        first_sid = client.sid
        assert client.recovered is False
        assert await client.call("burst", (auth["room"], COUNT, 20, DROP_AT), timeout=5) == "started"
        await seen.until("20 ticks and a reconnect", lambda: len(seen.ticks) >= COUNT and len(seen.connects) == 2)
        who = await client.call("whoami", timeout=5)
    finally:
        await client.disconnect()
    assert seen.connects == [(first_sid, False), (first_sid, True)]
    assert seen.disconnects[0] == "forced close"
    assert [t[0] for t in seen.ticks] == list(range(COUNT))  # all 20, once, in order
    assert any(t[1] == 0 for t in seen.ticks), "no tick was broadcast while the client was away"
    assert len({t[2] for t in seen.ticks}) == COUNT
    assert who["id"] == first_sid and who["recovered"] is True and who["data"] == {"user": auth["user"]}
    assert sorted(who["rooms"]) == sorted([first_sid, auth["room"]])


@pytest.mark.parametrize("kind", ["sioserver", "node"])
async def test_after_the_window_the_reconnect_gets_a_new_session(
        servers: dict[str, Process], kind: str, request: pytest.FixtureRequest) -> None:
    # the client's own reconnection delay outlasts the server's window: no sleep in the test
    client = sioclient.AsyncClient(reconnection_delay=WINDOW_MS / 1000 + 0.5,
                                   reconnection_delay_max=WINDOW_MS / 1000 + 0.5, randomization_factor=0)
    seen = Watcher(client, drop_at=1)
    auth = user(request)
    await client.connect(servers[kind].url, auth=auth, transports=["websocket"])
    try:
        first_sid = client.sid
        await client.call("burst", (auth["room"], 1, 0), timeout=5)  # the client holds an offset, then drops
        await seen.until("a reconnect", lambda: len(seen.connects) == 2)
        who = await client.call("whoami", timeout=5)
    finally:
        await client.disconnect()
    (_, first_recovered), (second_sid, second_recovered) = seen.connects
    assert first_recovered is False and second_recovered is False
    assert second_sid != first_sid and who["id"] == second_sid and who["recovered"] is False


async def test_the_connect_payload_carries_pid_and_offset_before_the_auth(servers: dict[str, Process],
                                                                           request: pytest.FixtureRequest) -> None:
    """What sioclient sends, seen by the server: the JS client's ``{pid, offset, ...auth}``."""
    client = sioclient.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.1, randomization_factor=0)
    seen = Watcher(client, drop_at=1)
    auth = user(request)
    await client.connect(servers["sioserver"].url, auth=auth, transports=["websocket"])
    try:
        ns = client._namespaces["/"]
        pid = ns.pid
        assert isinstance(pid, str) and ns.offset is None
        await client.call("burst", (auth["room"], 1, 0), timeout=5)
        await seen.until("a reconnect", lambda: len(seen.connects) == 2)
        assert ns.recovery_auth(dict(auth)) == {"pid": pid, "offset": seen.ticks[0][2], **auth}
        assert list(ns.recovery_auth({"pid": "mine"}) or {}) == ["pid", "offset"]  # the auth's keys win, as JS
        assert client.recovered is True and ns.pid == pid
    finally:
        await client.disconnect()
    assert ns.pid is None and client.recovered is False  # a DISCONNECT ends the session for good
