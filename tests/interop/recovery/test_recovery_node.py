"""Connection state recovery with the official client (socket.io-client 4.8 in Node), over WebSocket and over
long-polling, against sioserver (recovery_app.py) and against the reference, Node socket.io 4.8 with
``connectionStateRecovery`` (recovery_server.cjs): every assertion holds for both servers.

The transport is dropped for real (``socket.io.engine.close()``: a WebSocket close frame, or the Engine.IO
close packet ``1`` over polling; no Socket.IO DISCONNECT) when the 6th of a burst of 20 room broadcasts
arrives; the client reconnects by itself 200 ms later, while the burst goes on (the server sends the 7th once it
has seen the socket go, so the drop always falls in the middle of the burst).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support import node
from tests._support.procs import Process, python_env, start_or_fail

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "recovery_client.mjs"
SERVERS = ("sioserver", "node")
TRANSPORTS = ("websocket", "polling")
WINDOW_MS = 1000


def server_argv(kind: str, window_ms: int, skip_middlewares: bool) -> list[str]:
    extra = [] if skip_middlewares else ["--no-skip-middlewares"]
    if kind == "node":
        return [*node.argv(HERE / "recovery_server.cjs", "--port", "0", "--window-ms", str(window_ms)), *extra]
    return [sys.executable, str(HERE / "recovery_app.py"), "--port", "0", "--window-ms", str(window_ms), *extra]


ServerFactory = Callable[..., Process]


@pytest.fixture(scope="module")
def recovery_server(interop_node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """``recovery_server(kind, skip_middlewares=True)``: a running server, one per set of arguments."""
    started: dict[tuple[str, bool], Process] = {}
    logdir = tmp_path_factory.mktemp("recovery")

    def get(kind: str, skip_middlewares: bool = True) -> Process:
        key = (kind, skip_middlewares)
        if key not in started:
            proc = Process(server_argv(kind, WINDOW_MS, skip_middlewares),
                           log_path=logdir / f"{kind}-{skip_middlewares}.log",
                           env=python_env(NODE_PATH=str(interop_node_modules)), name=f"{kind} recovery server")
            started[key] = start_or_fail(proc)
        return started[key]

    yield get
    for proc in started.values():
        proc.stop()


def scenario(server: Process, name: str, transport: str) -> dict[str, Any]:
    done = node.run(CLIENT, server.url, name, "--transport", transport, "--window-ms", str(WINDOW_MS),
                    timeout=40, context=server.context())
    out = done.last()
    if not out.get("ok"):
        pytest.fail(f"{name} over {transport}: {out.get('error')}\n{done.context()}\n{server.context()}",
                    pytrace=False)
    data: dict[str, Any] = out["data"]
    return data


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", SERVERS)
def test_a_transport_dropped_mid_burst_recovers_every_broadcast_once_in_order(
        recovery_server: ServerFactory, kind: str, transport: str) -> None:
    data = scenario(recovery_server(kind), "burst", transport)
    first, again = data["connects"]
    assert first["recovered"] is False and again["recovered"] is True and data["recovered"] is True
    assert again["id"] == first["id"]
    assert data["disconnects"][0] == "forced close"  # the client's name for its own engine.close()
    assert data["values"] == list(range(20))  # all 20, exactly once, in order
    assert data["away"], "no tick was broadcast while the client was away: the drop tested nothing"
    assert data["arities"] == [3]  # (i, members, offset): the offset is the last argument
    assert len(set(data["offsets"])) == 20 and all(isinstance(o, str) for o in data["offsets"])
    who = data["who"]
    assert who["id"] == first["id"] and who["recovered"] is True
    assert len(who["rooms"]) == 2 and first["id"] in who["rooms"]  # its own room and the room it joined
    room = next(r for r in who["rooms"] if r != first["id"])
    assert who["data"] == {"user": room.removeprefix("room-")}  # the session data came back
    assert who["middleware_runs"] == 1 and who["connects"] == 2  # skipMiddlewares; the connect handler ran


@pytest.mark.parametrize("kind", SERVERS)
def test_middlewares_run_again_unless_skipped(recovery_server: ServerFactory, kind: str) -> None:
    data = scenario(recovery_server(kind, skip_middlewares=False), "burst", "websocket")
    assert data["recovered"] is True and data["values"] == list(range(20))
    assert data["who"]["middleware_runs"] == 2


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", SERVERS)
def test_after_the_window_the_reconnect_is_a_new_connection(
        recovery_server: ServerFactory, kind: str, transport: str) -> None:
    data = scenario(recovery_server(kind), "window", transport)
    first, within, after = data["first"], data["within"], data["after"]
    assert first["recovered"] is False
    assert within == {"id": first["id"], "recovered": True}
    assert after["recovered"] is False and after["id"] != first["id"]
    who = data["who"]
    assert who["id"] == after["id"] and who["recovered"] is False
    assert who["middleware_runs"] == 2 and who["connects"] == 3
