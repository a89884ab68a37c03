"""``python -m sioserver --log-format json``: one JSON object per line, with sid, namespace and reason."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from tests._support.ports import accepts, free_port
from tests._support.procs import ROOT, Process, start_or_fail
from tests._support.wait import wait_until_sync

Record = dict[str, Any]


def records(proc: Process) -> list[Record]:
    """Every line it logged, each of which must be one JSON object (the ready line is plain print())."""
    lines = [line for line in proc.output().splitlines() if not line.startswith("sioserver listening on")]
    return [json.loads(line) for line in lines]


def wait_for(proc: Process, predicate: Callable[[Record], bool]) -> Record:
    found: list[Record] = wait_until_sync(lambda: [r for r in records(proc) if predicate(r)], timeout=10,
                                          what=lambda: f"no such record in:\n{proc.output()}")
    return found[0]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Process]:
    port = free_port()
    proc = Process([sys.executable, "-m", "sioserver", "tests.ops.log_app:sio", "--port", str(port),
                    "--log-format", "json", "--log-level", "DEBUG", "--no-uvloop"], cwd=ROOT,
                   log_path=tmp_path / "server.log", ready=re.compile(rf"^sioserver listening on .*:({port})$"))
    start_or_fail(proc)
    wait_for(proc, lambda r: r["logger"] == "sioserver.engine" and "sioserver at /socket.io" in r["message"])
    # that line comes from the app's startup, before aiohttp listens: wait for the port
    wait_until_sync(lambda: accepts(port), timeout=10, what=f"port {port} listening")
    try:
        yield proc
    finally:
        proc.stop(timeout=10)


async def test_json_lines_with_sid_namespace_and_reason(server: Process) -> None:
    ui = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await ui.connect(server.url, namespaces=["/admin"], auth={"username": "admin", "password": "wrong"},
                         transports=["websocket"])
    record = wait_for(server, lambda r: r["message"].startswith("Admin UI login refused"))
    assert record["level"] == "INFO" and record["logger"] == "sioserver.admin"
    assert record["namespace"] == "/admin" and record["reason"] == "invalid credentials"
    assert isinstance(record["sid"], str) and record["sid"]
    assert record["time"].endswith("Z")


async def test_the_engine_and_server_layers_log_sid_namespace_and_reason(server: Process) -> None:
    async with aiohttp.ClientSession() as http:
        # a connect the app's handler refuses: the server layer, with the namespace and the reason
        refused = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(server.url, auth={"token": "refuse me"}, transports=["websocket"])
        record = wait_for(server, lambda r: r["message"].startswith("connection to / refused"))
        assert (record["logger"], record["namespace"], record["reason"]) == ("sioserver.server", "/", "not you")
        assert record["sid"]
        # a client that breaks the protocol: its Engine.IO sid and the reason
        ws = await http.ws_connect(f"{server.url}/socket.io/?EIO=4&transport=websocket")
        eio_sid = json.loads((await ws.receive_str(timeout=5))[1:])["sid"]
        await ws.send_str("49not a packet")
        record = wait_for(server, lambda r: r.get("sid") == eio_sid and r.get("reason") == "parse error")
        assert record["logger"] == "sioserver.server" and record["level"] == "WARNING"
        await ws.close()
        # a client that never answers a ping (ping_interval=1, ping_timeout=0.5 in log_app)
        ws = await http.ws_connect(f"{server.url}/socket.io/?EIO=4&transport=websocket", autoping=False)
        eio_sid = json.loads((await ws.receive_str(timeout=5))[1:])["sid"]
        record = wait_for(server, lambda r: r.get("sid") == eio_sid and r.get("reason") == "ping timeout")
        assert record["logger"] == "sioserver.engine" and record["message"].startswith(f"session {eio_sid}: no pong")
        closed = wait_for(server, lambda r: r.get("sid") == eio_sid and r["message"].endswith("closed: ping timeout"))
        assert closed["level"] == "DEBUG"
        await ws.close()
